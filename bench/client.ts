/**
 * The agent's and Slack's side of the load: real HTTP on loopback (fetch keeps connections alive), signed Slack
 * clicks, long-poll and Server-Sent Events waiters. Each call says how long it took.
 */
import { blockActionPayload, formBody, INTERACTIONS_PATH, signSlackRequest } from '../dev/slack-signing.js';

export interface Created {
  token: string;
  requestId: string;
  expiresAt: string;
  /** The hash of the params as created: an approval's decision block carries it, as the Slack message's does. */
  payloadHash: string;
}

/** What a waiter learns: the state, and when (wall clock, comparable with the service's ISO times). */
export interface WaitAnswer {
  status: string;
  terminal: boolean;
  version: number;
  decidedAt: string | null;
  escalated: boolean;
  at: number;
}

export const BENCH_CHANNEL = 'C_BENCH';
export const APPROVER = 'U_BENCH_APPROVER';
const REQUEST_TIMEOUT_MS = 30_000;

function requestBody(action: string, n: number) {
  return {
    action,
    params: { database: 'orders', steps: n % 10, note: 'load-sim' },
    meta: {
      origin: { repo: 'acme/bench', branch: 'main', run_id: `bench-${n}` },
      requester: { id: 'U_BENCH_AGENT', source: 'agent', display: 'load-sim' },
      justification: 'load harness request',
    },
  };
}

export class GuardClient {
  /**
   * `messagePosted`: resolves once the request's message is in Slack. A click waits for it, as an approver can only
   * click a button Slack shows (without it, against a service whose Slack the harness cannot see, a click may come
   * first and be decided in the request's first workflow task).
   */
  constructor(
    readonly baseUrl: string,
    private readonly signingSecret: string,
    private readonly messagePosted: ((requestId: string) => Promise<void>) | null = null,
  ) {}

  /** POST /api/guard/request; resolves with the created request and the latency in ms. */
  async create(action: string, n: number): Promise<{ created: Created; ms: number }> {
    const t0 = performance.now();
    const res = await fetch(`${this.baseUrl}/api/guard/request`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(requestBody(action, n)),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    const ms = performance.now() - t0;
    if (res.status !== 200) throw new Error(`create ${action}: ${res.status} ${text.slice(0, 200)}`);
    return { created: JSON.parse(text) as Created, ms };
  }

  /**
   * A signed `approve` click as Slack delivers it, once the message is in Slack; resolves when the endpoint
   * acknowledges, with the latency (from the click's sending).
   */
  async click(req: Created, actionId = 'approve', userId = APPROVER): Promise<{ ms: number; sentAt: number }> {
    await this.messagePosted?.(req.requestId);
    const blockId = `decide:${req.payloadHash}`;
    const payload = blockActionPayload({ actionId, value: req.requestId, userId, channelId: BENCH_CHANNEL, blockId });
    const body = formBody(payload);
    const headers = signSlackRequest(this.signingSecret, body);
    const sentAt = Date.now();
    const t0 = performance.now();
    const res = await fetch(`${this.baseUrl}${INTERACTIONS_PATH}`, {
      method: 'POST',
      headers: { ...headers },
      body,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    const ms = performance.now() - t0;
    const ack = safeJson(text) as { ok?: boolean; error?: string } | undefined;
    if (res.status !== 200 || ack?.ok !== true)
      throw new Error(`click ${actionId}: ${res.status} ${text.slice(0, 200)}`);
    return { ms, sentAt };
  }

  /** GET /api/guard/wait: one long-poll, answered at the next change or after `timeoutSec`. */
  async longPoll(token: string, timeoutSec: number): Promise<WaitAnswer> {
    const res = await fetch(
      `${this.baseUrl}/api/guard/wait?token=${encodeURIComponent(token)}&timeoutSec=${timeoutSec}`,
      {
        signal: AbortSignal.timeout(timeoutSec * 1000 + REQUEST_TIMEOUT_MS),
      },
    );
    const text = await res.text();
    const at = Date.now();
    if (res.status !== 200) throw new Error(`wait: ${res.status} ${text.slice(0, 200)}`);
    return answer(JSON.parse(text), at);
  }

  /** Long-polls until the request is terminal, at most `rounds` times. */
  async waitTerminal(token: string, timeoutSec: number, rounds: number): Promise<WaitAnswer> {
    for (let i = 0; i < rounds; i++) {
      const a = await this.longPoll(token, timeoutSec);
      if (a.terminal) return a;
    }
    throw new Error(`not terminal after ${rounds} long-polls`);
  }

  /** GET /api/guard/wait-sse; null when the service has no such route. */
  async openStream(token: string, timeoutMs: number): Promise<StateStream | null> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    const res = await fetch(`${this.baseUrl}/api/guard/wait-sse?token=${encodeURIComponent(token)}`, {
      signal: abort.signal,
    });
    if (res.status === 404) {
      clearTimeout(timer);
      await res.text();
      return null;
    }
    if (res.status !== 200 || !res.body) throw new Error(`wait-sse: ${res.status}`);
    return new StateStream(res.body, () => {
      clearTimeout(timer);
      abort.abort();
    });
  }
}

/** The `event: state` messages of one SSE response, read as they arrive. */
export class StateStream {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffer = '';

  constructor(
    body: ReadableStream<Uint8Array>,
    private readonly abort: () => void,
  ) {
    this.reader = body.getReader();
  }

  /** The next state event, or null when the stream ended. */
  async next(): Promise<WaitAnswer | null> {
    for (;;) {
      const cut = this.buffer.indexOf('\n\n');
      if (cut >= 0) {
        const block = this.buffer.slice(0, cut);
        this.buffer = this.buffer.slice(cut + 2);
        const data = stateData(block);
        if (data !== null) return answer(JSON.parse(data), Date.now());
        continue;
      }
      const { value, done } = await this.reader.read();
      if (done) return null;
      this.buffer += this.decoder.decode(value, { stream: true });
    }
  }

  close(): void {
    this.abort();
    this.reader.cancel().catch(() => undefined);
  }
}

function stateData(block: string): string | null {
  const lines = block.split('\n');
  if (!lines.includes('event: state')) return null;
  return lines
    .filter((l) => l.startsWith('data: '))
    .map((l) => l.slice(6))
    .join('\n');
}

function answer(body: Record<string, unknown>, at: number): WaitAnswer {
  return {
    status: String(body.status),
    terminal: body.terminal === true,
    version: Number(body.version),
    decidedAt: typeof body.decidedAt === 'string' ? body.decidedAt : null,
    escalated: body.escalated === true,
    at,
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
