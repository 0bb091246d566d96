import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  log,
  patched,
  proxyActivities,
  proxySinks,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  type SignalDefinition,
  type Sinks,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair, UpdateDefinition } from '@temporalio/common';
import { trace } from '@opentelemetry/api';
import { isTerminal, initialState, reduce, type Command, type RequestState } from '../domain/request-state.js';
import type { SlackActivities } from '../activities/slack.js';
import type { ArchiveActivities } from '../activities/archive.js';
import * as msg from './messages.js';
import { GUARD_SEARCH_ATTRIBUTE_KEYS as sa } from '../temporal/search-attributes.js';

export interface GuardSinks extends Sinks {
  guard: { events(batch: msg.GuardEventBatch): void };
}

const { guard } = proxySinks<GuardSinks>();

const slack = proxyActivities<SlackActivities>({
  startToCloseTimeout: '15s',
  scheduleToCloseTimeout: '1h',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30s' },
});

// A refusal told minutes late helps nobody: a few retries, then give up.
const notices = proxyActivities<Pick<SlackActivities, 'tellRefusal'>>({
  startToCloseTimeout: '10s',
  scheduleToCloseTimeout: '2m',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '10s' },
});

const CLICK_OUTCOMES_KEPT = 100;
/** Changes of the command sequence; histories recorded before them replay the old way (`patched()`). */
const TIMERS_FROM_START = 'timers-from-start';
const ARCHIVE_BESIDE_FINAL_UPDATE = 'archive-beside-final-update';
const REFUSAL_NOTICE = 'refusal-notice';
const VIEW_MEMO = 'view-memo';
/** Views of larger requests (big params) stay out of the memo, which Temporal keeps in its visibility store. */
const VIEW_MEMO_MAX_CHARS = 16_384;

const archive = proxyActivities<ArchiveActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '5m' },
});

/**
 * One approval request (workflow id = request id). The policy's plan is frozen in the input; timers drive
 * escalation and expiry; Updates and Signals carry persona acks and decisions through one reducer.
 */
export async function approvalWorkflow(input: msg.ApprovalInput): Promise<msg.RequestView> {
  const { plan, request } = input;
  let state: RequestState = initialState(input);
  let slackRef: msg.SlackRef | null = null;
  let slackPostFailed = false;
  let escalationNotice: Promise<void> = Promise.resolve();
  const view = (): msg.RequestView => ({ ...state, slack: slackRef });

  const report = (events: msg.GuardEventBatch['events']) =>
    guard.events({
      requestId: input.requestId,
      action: request.action,
      createdAt: input.createdAt,
      at: nowIso(),
      // The span the workflow tracing interceptors made active: the request's run, or the Update/Signal's handler.
      traceId: trace.getActiveSpan()?.spanContext().traceId ?? null,
      redaction: plan.redaction,
      events,
    });

  /**
   * Every state change shows in the search attributes and, as the whole view, in the memo: the history then
   * carries each new state (a Signal's or a timer's too), so API replicas wake their waiters without a query,
   * and the Temporal UI shows the current state. A view too large for a memo leaves it empty (readers query).
   */
  const recordTransition = () => {
    upsertStatus(state);
    if (!patched(VIEW_MEMO)) return;
    const v = view();
    upsertMemo({ [msg.VIEW_MEMO_KEY]: JSON.stringify(v).length <= VIEW_MEMO_MAX_CHARS ? v : null });
  };

  // A decision and the expiry timer can land in the same workflow task, and the SDK applies the message first:
  // past expiresAt the request is expired, whatever arrives.
  const overdue = () => !isTerminal(state.status) && Date.now() >= Date.parse(input.expiresAt);
  const apply = (command: Command, at = nowIso()): msg.RequestView => {
    if (command.type !== 'expire' && overdue()) apply({ type: 'expire' }, input.expiresAt);
    const t = reduce(state, plan, command, at);
    if (!t.ok) throw ApplicationFailure.create({ type: t.reason, message: t.message, nonRetryable: true });
    state = t.state;
    recordTransition();
    report(t.events);
    return view();
  };
  const validate = (command: Command) => {
    if (overdue()) {
      throw ApplicationFailure.create({ type: 'already_decided', message: 'request expired', nonRetryable: true });
    }
    const t = reduce(state, plan, command, nowIso());
    if (!t.ok) throw ApplicationFailure.create({ type: t.reason, message: t.message, nonRetryable: true });
  };
  // Verdicts of the latest Signals that carried a click id, for the clickOutcome query (tools, tests, operators).
  const clicks = new Map<string, msg.ClickOutcome>();
  // Private notices of refused clicks still being sent; the request does not end before they are.
  const refusalNotices: Array<Promise<void>> = [];
  const fromSignal = (command: Command, click: { clickId?: unknown; replyTo?: unknown }) => {
    let outcome: msg.ClickOutcome;
    try {
      outcome = { ok: true, version: apply(command).version };
    } catch (err) {
      const failure = err as ApplicationFailure;
      log.info('signal refused', { command: command.type, reason: failure.type });
      outcome = { ok: false, reason: failure.type ?? 'refused', message: failure.message };
      const replyTo = asReplyTo(click.replyTo);
      if (replyTo && patched(REFUSAL_NOTICE)) {
        const notice = { replyTo, reason: outcome.reason, message: outcome.message };
        refusalNotices.push(
          notices.tellRefusal(notice).catch((e: unknown) => log.warn('refusal notice failed', { error: String(e) })),
        );
      }
    }
    if (typeof click.clickId !== 'string') return;
    clicks.set(click.clickId, outcome);
    if (clicks.size > CLICK_OUTCOMES_KEPT) clicks.delete(clicks.keys().next().value as string);
  };

  // Before the handlers: an Update that arrived with the start is applied as soon as its handler is set.
  report([{ type: 'request_created', actor: input.agent ?? request.meta.requester.id }]);
  bind(msg.personaAckUpdate, msg.personaAckSignal, (i) => ({ type: 'persona_ack', ...i }));
  bind(msg.approveUpdate, msg.approveSignal, (i) => ({ type: 'approve', ...i }));
  bind(msg.denyUpdate, msg.denySignal, (i) => ({ type: 'deny', ...i }));
  bind(msg.approveWithEditsUpdate, msg.approveWithEditsSignal, (i) => ({ type: 'override', ...i }));
  bind(msg.cancelUpdate, msg.cancelSignal, (i) => ({ type: 'cancel', ...i }));
  bind(msg.adminDecisionUpdate, msg.adminDecisionSignal, (i) => ({ type: 'admin_decision', ...i }));
  setHandler(msg.stateQuery, view);
  setHandler(msg.clickOutcomeQuery, (clickId: string) => ({ outcome: clicks.get(clickId) ?? null, view: view() }));

  function bind<I>(
    update: UpdateDefinition<msg.RequestView, [I]>,
    signal: SignalDefinition<[msg.Clicked<I>]>,
    toCommand: (input: I) => Command,
  ) {
    setHandler(update, (i: I) => apply(toCommand(i)), { validator: (i: I) => validate(toCommand(i)) });
    setHandler(signal, ({ clickId, replyTo, ...i }: msg.Clicked<I>) =>
      fromSignal(toCommand(i as I), { clickId, replyTo }),
    );
  }

  const slackDone = syncSlackMessage();

  await runTimers();

  if (patched(ARCHIVE_BESIDE_FINAL_UPDATE)) {
    // The archive needs the message's address, not the final render: both go out in the deciding task.
    await condition(() => slackRef !== null || slackPostFailed);
    await Promise.all([slackDone, escalationNotice, archive.archiveRequest({ input, final: view() })]);
  } else {
    await slackDone;
    await escalationNotice;
    await archive.archiveRequest({ input, final: view() });
  }
  upsertSearchAttributes([{ key: sa.GuardArchived, value: true }]);
  await Promise.all(refusalNotices);
  await condition(allHandlersFinished);
  return view();

  /**
   * Waits for a decision; fires escalation once at expiresAt − escalateBeforeSec, then expiry. Each is stamped with
   * its deadline, not the workflow clock: a new worker answering a query replays a fired timer before any task
   * commits it, with the clock of the last completed task, and that view must equal the one later committed.
   */
  async function runTimers(): Promise<void> {
    const expiresAtMs = Date.parse(input.expiresAt);
    const escalateAtMs = plan.escalation ? expiresAtMs - plan.escalation.escalateBeforeSec * 1000 : null;
    const escalate = () => {
      const t = reduce(state, plan, { type: 'escalate' }, new Date(escalateAtMs as number).toISOString());
      if (!t.ok) return;
      state = t.state;
      recordTransition();
      report(t.events);
      escalationNotice = notifyEscalation();
    };
    if (patched(TIMERS_FROM_START)) {
      // Both timers start with the request: the expiry does not inherit the escalation's lateness.
      const escalation =
        escalateAtMs === null ? null : waitUntilDecidedOr(escalateAtMs).then((decided) => decided || escalate());
      const decided = await waitUntilDecidedOr(expiresAtMs);
      await escalation;
      if (!decided) apply({ type: 'expire' }, input.expiresAt);
      return;
    }
    if (escalateAtMs !== null && !(await waitUntilDecidedOr(escalateAtMs))) escalate();
    if (!(await waitUntilDecidedOr(expiresAtMs))) apply({ type: 'expire' }, input.expiresAt);
  }

  /** Resolves true as soon as the request is decided, false when `deadlineMs` passes first. */
  async function waitUntilDecidedOr(deadlineMs: number): Promise<boolean> {
    const remaining = deadlineMs - Date.now();
    if (remaining <= 0) return isTerminal(state.status);
    return condition(() => isTerminal(state.status), remaining);
  }

  async function notifyEscalation(): Promise<void> {
    await condition(() => slackRef !== null || slackPostFailed);
    await slack.postEscalationNotice({ request, plan, state, ref: slackRef }).catch((err: unknown) => {
      log.error('escalation notice failed', { error: String(err) });
    });
  }

  /**
   * Keeps the Slack message equal to the state: posts it once, then renders the latest state whenever the
   * version moved. A burst of changes becomes one update, and Slack being down never blocks a decision.
   */
  async function syncSlackMessage(): Promise<void> {
    const shown = state;
    let posted: msg.PostOutcome;
    try {
      posted = await slack.postRequestMessage({ request, plan, state: shown });
    } catch (err) {
      slackPostFailed = true;
      log.error('posting the Slack message failed', { error: String(err) });
      return;
    }
    // Histories recorded before PostOutcome carry `{channel, ts}` or null: `ts` tells a post either way.
    if (!posted || !('ts' in posted)) {
      slackPostFailed = true;
      return;
    }
    const ref: msg.SlackRef = { channel: posted.channel, ts: posted.ts };
    slackRef = ref;
    let coalesceMs = posted.coalesceMs ?? 0;
    // The post shows the state it was given; anything that changed while Slack answered is rendered next.
    let rendered = shown.version;
    while (!(isTerminal(state.status) && rendered === state.version)) {
      await condition(() => state.version !== rendered);
      // The worker's update queue asks for a pause so a burst becomes one update; a decision goes out at once.
      if (coalesceMs > 0 && !isTerminal(state.status)) await condition(() => isTerminal(state.status), coalesceMs);
      const snapshot = state;
      try {
        const hint = (await slack.updateRequestMessage({
          request,
          plan,
          state: snapshot,
          ref,
        })) as msg.UpdateHint | void;
        coalesceMs = hint ? (hint.coalesceMs ?? 0) : 0;
      } catch (err) {
        log.error('updating the Slack message failed', { error: String(err) });
      }
      rendered = snapshot.version;
    }
  }
}

/** A Signal's `replyTo`, if well formed (anyone with Temporal access can send a Signal). */
function asReplyTo(value: unknown): msg.ReplyTo | null {
  const r = value as Partial<msg.ReplyTo> | null | undefined;
  return r && typeof r.channel === 'string' && typeof r.user === 'string' && r.channel && r.user
    ? { channel: r.channel, user: r.user }
    : null;
}

function nowIso(): string {
  return new Date().toISOString();
}

function upsertStatus(state: RequestState): void {
  const pending = Object.entries(state.personaState)
    .filter(([, p]) => !p.acked)
    .map(([name]) => name);
  const pairs: SearchAttributeUpdatePair[] = [
    { key: sa.GuardStatus, value: state.status },
    { key: sa.GuardPersonasPending, value: isTerminal(state.status) ? [] : pending },
  ];
  upsertSearchAttributes(pairs);
}
