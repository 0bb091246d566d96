import {
  ApplicationFailure,
  log,
  proxySinks,
  sleep,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
  type Sinks,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import { trace } from '@opentelemetry/api';
import {
  initialState,
  isTerminal,
  postSettled,
  reduce,
  type Command,
  type Notification,
  type RefusalReason,
  type RequestState,
} from '../domain/request-state.js';
import { GUARD_SEARCH_ATTRIBUTE_KEYS as sa } from '../temporal/search-attributes.js';
import { run } from './activities.js';
import * as msg from './messages.js';

export interface GuardSinks extends Sinks {
  guard: { events(batch: msg.GuardEventBatch): void };
}

const { guard } = proxySinks<GuardSinks>();

/**
 * Click ids a request remembers: a request gets a handful of clicks, so this is generous, and an id is never
 * forgotten while the request lives (a replayed delivery must not count twice). Clicks past it are refused.
 */
export const MAX_CLICK_IDS = 1_000;
/**
 * Slack took at least this long to take the request's post: its decision is recorded in a task of its own, before
 * the Slack update (`afterDecisionRecorded`). Real Slack takes tens to hundreds of ms; a Slack-compatible endpoint
 * next to the worker answers in a few.
 */
export const SLOW_SLACK_MS = 50;
const MAX_CLICK_ID_CHARS = 200;

type Outcome = { ok: true } | { ok: false; reason: RefusalReason; message: string };

/**
 * One approval request as the workflow holds it: the reducer's state plus what only the workflow knows (where the
 * message lives in Slack, which clicks were seen, side effects still in flight). Every handler goes through here,
 * so each accepted command is recorded (search attributes, memo) and reported (sink) the same way.
 */
export class ApprovalRequest {
  state: RequestState;
  slackRef: msg.SlackRef | null = null;
  private readonly clickIds = new Set<string>();
  /** Payload hashes whose full params were posted in the message's thread. */
  readonly paramsThreaded = new Set<string>();
  /** Side effects the request must not end before (refusal and escalation notices). */
  private inFlight = 0;
  /** The view the memo holds, as JSON. */
  private memoJson: string;
  /**
   * True when the decision's side effects (the final Slack update, the archive) wait for a task of their own: set when
   * Slack took SLOW_SLACK_MS or more to take the post. A task's commands (the memo and search attributes that say
   * "approved") reach the server only when the task completes, and a task that runs local activities completes after
   * the last of them: in the deciding task, the Slack update holds the waiting agent for Slack's answer (tens to
   * hundreds of ms, up to the local attempt's 5 s when Slack is slow). Splitting costs a timer and a workflow task
   * (3–30 % more CPU and 6–7 database operations per approval in the runs measured; docs/performance.md, "The
   * decision before Slack"), so it is done when it saves more than that: a message to update on a slow Slack.
   */
  splitsDecision = false;
  /** Set once decided, when split: resolves in the workflow task after the one that recorded the decision. */
  private decisionRecorded: Promise<void> | null = null;

  constructor(readonly input: msg.ApprovalInput) {
    this.state = initialState(input);
    // The API's start memo holds the first view already (gateway/temporal-gateway.ts).
    this.memoJson = JSON.stringify(workflowInfo().memo?.[msg.VIEW_MEMO_KEY] ?? null);
  }

  get plan() {
    return this.input.plan;
  }

  get decided(): boolean {
    return isTerminal(this.state.status);
  }

  /** True once the first post attempt settled (posted, failed or skipped). */
  get postSettled(): boolean {
    return postSettled(this.state);
  }

  get idle(): boolean {
    return this.inFlight === 0;
  }

  view(): msg.RequestView {
    return { ...this.state, slack: this.slackRef };
  }

  /**
   * A message names the request it is for: under a keyed workflow id a newer request may live than the one a caller
   * knew (gateway/ids.ts), and a message for the one before must never reach it. Unaddressed messages (operator
   * tooling) are for whoever lives here.
   */
  isFor(requestId: unknown): boolean {
    return requestId === undefined || requestId === this.state.requestId;
  }

  /** An Update (or its validator) for another request than this one. */
  checkAddress(requestId: unknown): void {
    if (!this.isFor(requestId)) throw refusal('not_found', `request ${String(requestId)} not found`);
  }

  /** An Update: applies the command, or throws the refusal to the caller. */
  apply(command: Command): msg.RequestView {
    const outcome = this.attempt(command, nowIso());
    if (!outcome.ok) throw refusal(outcome.reason, outcome.message);
    return this.view();
  }

  /** An Update's validator: refuses without writing anything into the history. */
  validate(command: Command): void {
    if (this.overdue()) throw refusal('already_decided', 'request expired');
    const t = reduce(this.state, this.plan, command, nowIso());
    if (!t.ok) throw refusal(t.reason, t.message);
  }

  /**
   * A Signal (a Slack click, operator tooling). A click id is applied at most once: a delivery Slack or an API
   * replays after a restart carries the same id and changes nothing. A refused click is told to its clicker.
   */
  click(
    command: Command,
    { clickId, replyTo, requestId }: { clickId?: unknown; replyTo?: unknown; requestId?: unknown },
  ): void {
    const to = asReplyTo(replyTo);
    if (!this.isFor(requestId)) {
      const message = 'the request this button was for no longer exists';
      if (to) this.track(run('tellRefusal', { replyTo: to, reason: 'not_found', message }));
      return;
    }
    const id =
      typeof clickId === 'string' && clickId.length > 0 && clickId.length <= MAX_CLICK_ID_CHARS ? clickId : null;
    if (id !== null && this.clickIds.has(id)) {
      log.info('click already applied', { clickId: id });
      return;
    }
    let outcome: Outcome;
    if (id !== null && this.clickIds.size >= MAX_CLICK_IDS) {
      outcome = { ok: false, reason: 'limit_exceeded', message: `this request took its ${MAX_CLICK_IDS} clicks` };
    } else {
      if (id !== null) this.clickIds.add(id);
      outcome = this.attempt(command, nowIso());
    }
    if (outcome.ok) return;
    log.info('signal refused', { command: command.type, reason: outcome.reason });
    if (to) this.track(run('tellRefusal', { replyTo: to, reason: outcome.reason, message: outcome.message }));
  }

  /** A timer's command, stamped with its deadline; a refusal (already decided) is simply nothing to do. */
  fire(command: Command, at: string): boolean {
    return this.attempt(command, at).ok;
  }

  notify(notification: Notification): void {
    this.attempt({ type: 'notify', notification }, nowIso());
  }

  /** Resolves in the workflow task after the deciding one: a 1 ms timer ends that task first. One per request. */
  afterDecisionRecorded(): Promise<void> {
    return (this.decisionRecorded ??= sleep(1));
  }

  /** Runs a side effect the request waits for before it ends; its failure is logged, never fatal. */
  track(effect: Promise<unknown>): void {
    this.inFlight += 1;
    void effect
      .catch((err: unknown) => log.warn('notice failed', { error: String(err) }))
      .finally(() => (this.inFlight -= 1));
  }

  report(events: msg.GuardEventBatch['events']): void {
    guard.events({
      requestId: this.input.requestId,
      action: this.input.request.action,
      createdAt: this.input.createdAt,
      at: nowIso(),
      version: this.state.version,
      // The span the workflow tracing interceptors made active: the request's run, or the Update/Signal's handler.
      traceId: trace.getActiveSpan()?.spanContext().traceId ?? null,
      redaction: this.plan.redaction,
      events,
    });
  }

  private attempt(command: Command, at: string): Outcome {
    // A decision and the expiry timer can land in the same workflow task, and the SDK applies the message first:
    // past expiresAt the request is expired, whatever arrives.
    if (command.type !== 'expire' && command.type !== 'notify' && this.overdue()) {
      this.attempt({ type: 'expire' }, this.input.expiresAt);
    }
    const t = reduce(this.state, this.plan, command, at);
    if (!t.ok) return t;
    const news = t.state.version !== this.state.version;
    this.state = t.state;
    this.record(news);
    this.report(t.events);
    return { ok: true };
  }

  private overdue(): boolean {
    return !this.decided && Date.now() >= Date.parse(this.input.expiresAt);
  }

  /**
   * Every new version goes into the memo as the whole view (null when too large: readers then query), so the
   * history carries each new state, a Signal's or a timer's too: API replicas wake their waiters without a query,
   * and the Temporal UI shows it. A change without a new version (the post settled) waits for the next one: nobody
   * is woken for it. Search attributes are written only when they change. Each write is a history event and a
   * visibility update.
   */
  private record(news: boolean): void {
    const changed = searchAttributeChanges(this.state);
    if (changed.length > 0) upsertSearchAttributes(changed);
    const memo = msg.memoView(this.view());
    const json = JSON.stringify(memo);
    // A change without a new version (the first post settled: its permalink, or its failure to reach anyone) is
    // written too, once: the memo is what readers see without asking a worker.
    if (!news && json === this.memoJson) return;
    this.memoJson = json;
    upsertMemo({ [msg.VIEW_MEMO_KEY]: memo });
  }
}

function searchAttributeChanges(state: RequestState): SearchAttributeUpdatePair[] {
  const current = workflowInfo().typedSearchAttributes;
  const pending = isTerminal(state.status)
    ? []
    : Object.entries(state.personaState)
        .filter(([, p]) => !p.acked)
        .map(([name]) => name);
  const pairs: SearchAttributeUpdatePair[] = [];
  if (current.get(sa.GuardStatus) !== state.status) pairs.push({ key: sa.GuardStatus, value: state.status });
  const shown = current.get(sa.GuardPersonasPending) ?? [];
  if (shown.join('\n') !== pending.join('\n')) pairs.push({ key: sa.GuardPersonasPending, value: pending });
  return pairs;
}

function refusal(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

/** A Signal's `replyTo`, if well formed (anyone with Temporal access can send a Signal). */
function asReplyTo(value: unknown): msg.ReplyTo | null {
  const r = value as Partial<msg.ReplyTo> | null | undefined;
  return r && typeof r.channel === 'string' && typeof r.user === 'string' && r.channel && r.user
    ? { channel: r.channel, user: r.user }
    : null;
}

export function nowIso(): string {
  return new Date().toISOString();
}
