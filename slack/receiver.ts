import type { App, Receiver, ReceiverEvent } from '@slack/bolt';

export interface AckResult {
  status: number;
  body: unknown;
}

/**
 * Bolt ships no Fastify receiver: this one lets the Fastify route (which keeps the raw body and verifies
 * the signature itself) hand a parsed payload to Bolt and get back whatever the listener acked with.
 */
export class FastifyReceiver implements Receiver {
  private app: App | null = null;

  init(app: App): void {
    this.app = app;
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  async dispatch(body: Record<string, unknown>, ackTimeoutMs = 2800): Promise<AckResult> {
    if (!this.app) throw new Error('receiver not initialised by a Bolt App');
    let settle: (r: AckResult) => void = () => {};
    const acked = new Promise<AckResult>((resolve) => (settle = resolve));
    const event: ReceiverEvent = {
      body,
      ack: async (response?: unknown) => settle({ status: 200, body: response ?? '' }),
    };
    const processed = this.app.processEvent(event).then(
      () => settle({ status: 200, body: '' }),
      () => settle({ status: 200, body: '' }),
    );
    const timer = setTimeout(() => settle({ status: 200, body: '' }), ackTimeoutMs);
    try {
      return await acked;
    } finally {
      clearTimeout(timer);
      void processed;
    }
  }
}
