/**
 * What became of a Slack click, learnt as a person would: a refusal in Slack's answer itself, or, for a click
 * Temporal recorded, the request's state (the click's effect) and the notice the workflow posts to a refused
 * clicker (`chat.postEphemeral`). Used by the integration tests and the dev walkthrough.
 */
import { refusalText } from '../domain/refusal-text.js';
import { REFUSAL_REASONS, type RequestState } from '../domain/request-state.js';
import type { FakeSlackCall } from './fake-slack.js';

/** A click's fate: applied (and the request's status and version after it) or refused (and why). */
export interface ClickResult {
  ok: boolean;
  status?: string;
  version?: number;
  error?: string;
  text?: string;
}

/** Who clicked which button of which request, and when: what recognises the click's effect and its notice. */
export interface SentClick {
  actionId: string;
  requestId: string;
  userId: string;
  channelId: string;
  /** `Date.now()` before the click was sent. */
  sentAt: number;
}

/** Where a click's verdict shows: the workflow's state (a query), and the calls the fake Slack received. */
export interface ClickJudge {
  readState(requestId: string): Promise<RequestState & { version: number }>;
  ephemerals(): FakeSlackCall[] | Promise<FakeSlackCall[]>;
}

/**
 * A query is answered after the workflow task that applied the Signals sent before it, so the state read after
 * Slack's answer shows the click's effect if it was applied. If it does not, the click was refused, and the
 * workflow's notice to the clicker says why (its text names the reason).
 */
export async function clickVerdict(
  judge: ClickJudge,
  click: SentClick,
  ackBody: unknown,
  before?: RequestState | null,
): Promise<ClickResult> {
  const ack = (typeof ackBody === 'string' ? JSON.parse(ackBody) : ackBody) as ClickResult;
  if (!(ack.ok && ack.status === 'received')) return ack;
  const state = await judge.readState(click.requestId);
  if (applied(state, click, before ?? null)) return { ok: true, status: state.status, version: state.version };
  const notice = await waitFor(async () =>
    (await judge.ephemerals()).find(
      (c) => c.args.user === click.userId && c.args.channel === click.channelId && c.at >= click.sentAt,
    ),
  );
  const text = String(notice.args.text);
  const error = [...REFUSAL_REASONS, 'not_found'].find((reason) => refusalText(reason) === text);
  return { ok: false, ...(error ? { error } : {}), text };
}

/**
 * True when the state shows what this click does, done by its clicker: absent from the state read just before the
 * click when there is one (`before`), else done after the click was sent (an earlier click of the same clicker
 * still being applied then passes for this one: read `before` when clicks follow each other unjudged).
 */
function applied(state: RequestState, { actionId, userId, sentAt }: SentClick, before: RequestState | null): boolean {
  const done = effectOf(actionId, userId);
  if (before) return done(state) !== null && done(before) === null;
  const at = done(state);
  return at !== null && Date.parse(at) >= sentAt;
}

/** When the state shows the clicker's act (null: it does not). */
function effectOf(actionId: string, userId: string): (state: RequestState) => string | null {
  const persona = /^persona_ack:(.+)$/.exec(actionId)?.[1];
  if (persona) return (s) => (s.personaState[persona]?.by === userId ? s.personaState[persona].at : null);
  if (actionId === 'approve') return (s) => s.approvals.find((a) => a.userId === userId)?.at ?? null;
  if (actionId === 'deny') return (s) => (s.status === 'denied' && s.decidedBy === userId ? s.decidedAt : null);
  throw new Error(`no verdict for a click on ${actionId}`);
}

async function waitFor<T>(find: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`a refused click got no notice within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
