import { LogLevel, SocketModeClient, type Logger } from '@slack/socket-mode';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';
import { interactionSchema, type SlackInteractions } from './interactions.js';
import type { ReplayCache } from './replay-cache.js';

/** Slack redelivers an envelope it saw no ack for; one seen within this window is acked again, not acted on. */
const REPLAY_WINDOW_SEC = 300;

export interface SocketModeDeps {
  interactions: SlackInteractions;
  /** The app-level token (`xapp-…`, scope connections:write). */
  appToken: string;
  apiUrl: string | undefined;
  replayCache: ReplayCache;
  metrics: Metrics;
  audit: AuditLog;
  log: (message: string) => void;
}

export interface SocketMode {
  /** Resolves once the first connection is open (Slack said hello); rejects if the token is refused for good. */
  ready: Promise<void>;
  connected(): boolean;
  stop(): Promise<void>;
}

interface Envelope {
  ack: (response?: Record<string, unknown>) => Promise<void>;
  envelope_id: string;
  body: unknown;
}

/** The client's own errors (a dropped socket, a refused connection) go where the service's notes go. */
function socketLogger(log: (msg: string) => void): Logger {
  let level = LogLevel.ERROR;
  const note = (msg: unknown[]) =>
    log(`Slack Socket Mode: ${msg.map((m) => (m instanceof Error ? m.message : String(m))).join(' ')}`);
  return {
    debug: () => {},
    info: () => {},
    warn: (...msg: unknown[]) => {
      if (level !== LogLevel.ERROR) note(msg);
    },
    error: (...msg: unknown[]) => note(msg),
    setLevel: (l: LogLevel) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => {},
  };
}

/**
 * Interactions over Socket Mode (https://api.slack.com/apis/socket-mode): no public URL, the service dials out. The
 * same Bolt app as the HTTP endpoint handles each envelope, so the same handlers answer with the same refusals; the
 * socket is authenticated by the app-level token instead of a signature, and the replay guard keys on the envelope id.
 * The client reconnects by itself when Slack asks (`disconnect`) or the connection drops.
 */
export function startSocketMode(deps: SocketModeDeps): SocketMode {
  const client = new SocketModeClient({
    appToken: deps.appToken,
    logLevel: LogLevel.ERROR,
    logger: socketLogger(deps.log),
    clientOptions: deps.apiUrl ? { slackApiUrl: deps.apiUrl } : {},
  });
  let open = false;
  client.on('connected', () => {
    open = true;
  });
  client.on('disconnected', () => {
    open = false;
  });
  client.on('reconnecting', () => {
    open = false;
    deps.log('Slack Socket Mode: reconnecting');
  });
  client.on('interactive', (envelope: Envelope) => {
    handle(deps, envelope).catch((err: unknown) => deps.log(`Slack Socket Mode: envelope failed: ${String(err)}`));
  });
  const ready = client.start().then(() => undefined);
  ready.catch((err: unknown) => deps.log(`Slack Socket Mode: cannot connect: ${String(err)}`));
  return {
    ready,
    connected: () => open,
    async stop() {
      await client.disconnect();
    },
  };
}

async function handle(deps: SocketModeDeps, { ack, envelope_id: envelopeId, body }: Envelope): Promise<void> {
  // Unchecked is never acted on: with the replay cache away the envelope stays unacked and Slack tells the clicker.
  if (!(await deps.replayCache.firstSeen(`slack-envelope:${envelopeId}`, REPLAY_WINDOW_SEC))) {
    deps.metrics.securityEvents.inc({ type: 'replay' });
    deps.audit.emit({ event: 'security_event', type: 'replay', actor: 'slack-socket-mode', envelopeId });
    return ack();
  }
  const parsed = interactionSchema.safeParse(body);
  if (!parsed.success) {
    deps.log(`Slack Socket Mode: envelope ${envelopeId} is not an interaction we handle; acked and dropped`);
    return ack();
  }
  const answer = await deps.interactions.dispatch(parsed.data as Record<string, unknown>);
  const payload = answer.body && typeof answer.body === 'object' ? (answer.body as Record<string, unknown>) : undefined;
  await ack(payload);
}
