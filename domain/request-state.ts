import type { Plan } from './plan.js';
import type { CreateRequest } from './request-schema.js';
import { canonicalJson, payloadHash } from './payload-hash.js';

/**
 * The request state machine (SPEC section 2) as pure functions. The workflow applies it to Updates and
 * Signals alike; the API and tests use it directly. No clock: callers pass `now`.
 */
export const STATUSES = [
  'awaiting_personas',
  'ready_for_approval',
  'approved',
  'denied',
  'expired',
  'cancelled',
] as const;
export type Status = (typeof STATUSES)[number];
export const TERMINAL_STATUSES: readonly Status[] = ['approved', 'denied', 'expired', 'cancelled'];
export const isTerminal = (status: Status): boolean => TERMINAL_STATUSES.includes(status);
/** The request's first Slack post has settled: posted, failed or skipped (it changes no version). */
export const postSettled = (state: Pick<RequestState, 'notification'>): boolean =>
  state.notification.slack !== 'pending';
export const OPEN_STATUSES: readonly Status[] = STATUSES.filter((s) => !isTerminal(s));
/** A new request waits for its personas first, if the plan requires any. */
export const initialStatus = (plan: Pick<Plan, 'personas'>): Status =>
  plan.personas.length > 0 ? 'awaiting_personas' : 'ready_for_approval';

export interface Approval {
  userId: string;
  at: string;
  /** The payload hash the approver saw: an edit voids approvals given to an older one. */
  payloadHash: string;
}

export interface PersonaAck {
  acked: boolean;
  by: string | null;
  at: string | null;
}

export interface OverrideRecord {
  by: string;
  at: string;
  diff: Record<string, { from: unknown; to: unknown }>;
  payloadHash: string;
}

/**
 * Whether a human was told, and where (SPEC section 10): `pending` until the first post attempt settles; `posted`
 * with the message's permalink and, when the rich message was refused, the fallback that went out instead;
 * `failed` when nothing could be posted; `skipped` when no bot token or channel is configured.
 */
export type Notification =
  | { slack: 'pending' }
  | { slack: 'posted'; permalink?: string; fallback?: 'minimal' | 'dm' }
  | { slack: 'failed'; error: string }
  | { slack: 'skipped' };

export interface RequestState {
  requestId: string;
  action: string;
  status: Status;
  requesterId: string;
  effectiveParams: Record<string, unknown>;
  payloadHash: string;
  personaState: Record<string, PersonaAck>;
  approvals: Approval[];
  voidedApprovals: Approval[];
  minApprovals: number;
  escalated: boolean;
  escalatedAt: string | null;
  overrides: OverrideRecord[];
  createdAt: string;
  expiresAt: string;
  decidedAt: string | null;
  decidedBy: string | null;
  reason: string | null;
  /**
   * How the decision was made: `slack` (clicks and the edit modal), `admin` (an operator's admin route), `api` (the
   * requester's cancel, or the service's own expiry timer). Null while open.
   */
  decidedVia: DecisionVia | null;
  /** An operator decided past the quorum or the personas (admin break-glass). */
  breakGlass: boolean;
  /** A receipt of the decision expires this long after it (the plan's receiptTtlSec). */
  receiptTtlSec: number;
  notification: Notification;
  /** Bumped on every transition; waiters compare it to learn that something changed. */
  version: number;
}

export const DECISION_VIAS = ['slack', 'api', 'admin'] as const;
export type DecisionVia = (typeof DECISION_VIAS)[number];

export type Command =
  | { type: 'persona_ack'; persona: string; userId: string }
  | { type: 'approve'; userId: string; seenPayloadHash?: string | undefined }
  | { type: 'deny'; userId: string; reason?: string | undefined }
  | { type: 'override'; userId: string; changes: Record<string, unknown> }
  | { type: 'cancel'; actor: string; reason?: string | undefined; via?: DecisionVia | undefined }
  /**
   * An operator's decision. A denial is final at once; an approval counts as the operator's own (personas first,
   * then the quorum) unless `breakGlass` decides past both.
   */
  | {
      type: 'admin_decision';
      decision: 'approve' | 'deny';
      actor: string;
      reason?: string | undefined;
      breakGlass?: boolean | undefined;
    }
  | { type: 'escalate' }
  | { type: 'expire' }
  /**
   * The outcome of posting the Slack message; told in any status (a request may be decided before Slack answers).
   * It bumps the version only when the post failed.
   */
  | { type: 'notify'; notification: Notification };

export const REFUSAL_REASONS = [
  'already_decided',
  'not_authorized',
  'not_ready',
  'duplicate',
  'self_approval',
  'stale_payload',
  'unknown_persona',
  'already_acked',
  'overrides_not_allowed',
  'invalid_key',
  'no_change',
  'limit_exceeded',
  'diff_size_exceeded',
  'schema_validation',
  'not_applicable',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export type DomainEvent =
  | { type: 'persona_acked'; persona: string; actor: string }
  | { type: 'approval_recorded'; actor: string; approvals: number; minApprovals: number }
  | { type: 'override_applied'; actor: string; diff: OverrideRecord['diff'] }
  | { type: 'request_approved'; actor: string }
  | { type: 'request_denied'; actor: string; reason: string | null }
  | { type: 'request_escalated'; minApprovals: number }
  | { type: 'request_expired' }
  | { type: 'request_cancelled'; actor: string; reason: string | null }
  | { type: 'notification_failed'; error: string };

export type Transition =
  { ok: true; state: RequestState; events: DomainEvent[] } | { ok: false; reason: RefusalReason; message: string };

export interface InitialStateInput {
  requestId: string;
  request: CreateRequest;
  plan: Plan;
  createdAt: string;
  expiresAt: string;
}

export function initialState({ requestId, request, plan, createdAt, expiresAt }: InitialStateInput): RequestState {
  return {
    requestId,
    action: request.action,
    status: initialStatus(plan),
    requesterId: request.meta.requester.id,
    effectiveParams: request.params,
    payloadHash: payloadHash(request.params),
    personaState: Object.fromEntries(plan.personas.map((p) => [p.name, { acked: false, by: null, at: null }])),
    approvals: [],
    voidedApprovals: [],
    minApprovals: plan.minApprovals,
    escalated: false,
    escalatedAt: null,
    overrides: [],
    createdAt,
    expiresAt,
    decidedAt: null,
    decidedBy: null,
    reason: null,
    decidedVia: null,
    breakGlass: false,
    receiptTtlSec: plan.receiptTtlSec,
    notification: { slack: 'pending' },
    version: 1,
  };
}

const refuse = (reason: RefusalReason, message: string): Transition => ({ ok: false, reason, message });

/** Applies one command. Refusals change nothing; every accepted command bumps `version` (but see `notify`). */
export function reduce(state: RequestState, plan: Plan, command: Command, now: string): Transition {
  if (command.type === 'notify') return notify(state, command.notification);
  if (isTerminal(state.status)) return refuse('already_decided', `request is already ${state.status}`);
  switch (command.type) {
    case 'persona_ack':
      return ackPersona(state, plan, command, now);
    case 'approve':
      return approve(state, plan, command, now);
    case 'deny':
      if (!plan.approvers.includes(command.userId)) return refuse('not_authorized', 'you are not an approver');
      return decide(state, 'denied', command.userId, command.reason ?? null, now);
    case 'override':
      return applyOverride(state, plan, command, now);
    case 'cancel':
      return decide(state, 'cancelled', command.actor, command.reason ?? null, now, { via: command.via ?? 'api' });
    case 'admin_decision':
      return adminDecision(state, command, now);
    case 'escalate':
      return escalate(state, plan, now);
    case 'expire':
      return decide(state, 'expired', 'system', null, now, { via: 'api' });
  }
}

/**
 * The post settled. Only a failure is news a waiter must hear (nobody was told: a new version wakes it); a posted or
 * skipped message is the normal course and shows in the next read, without waking anyone.
 */
function notify(state: RequestState, notification: Notification): Transition {
  if (canonicalJson(notification) === canonicalJson(state.notification)) {
    return refuse('not_applicable', `notification is already ${notification.slack}`);
  }
  if (notification.slack !== 'failed') return { ok: true, state: { ...state, notification }, events: [] };
  const events: DomainEvent[] = [{ type: 'notification_failed', error: notification.error }];
  return { ok: true, state: bump({ ...state, notification }), events };
}

function ackPersona(
  state: RequestState,
  plan: Plan,
  { persona, userId }: { persona: string; userId: string },
  now: string,
): Transition {
  const def = plan.personas.find((p) => p.name === persona);
  const current = state.personaState[persona];
  if (!def || !current) return refuse('unknown_persona', `persona '${persona}' is not required for this request`);
  const allowed = def.members.length > 0 ? def.members : plan.approvers;
  if (!allowed.includes(userId)) return refuse('not_authorized', `you may not acknowledge for ${persona}`);
  if (current.acked) return refuse('already_acked', `${persona} was already acknowledged by ${current.by}`);
  const personaState = { ...state.personaState, [persona]: { acked: true, by: userId, at: now } };
  const allAcked = Object.values(personaState).every((p) => p.acked);
  const next = bump({ ...state, personaState, status: allAcked ? 'ready_for_approval' : state.status });
  return { ok: true, state: next, events: [{ type: 'persona_acked', persona, actor: userId }] };
}

function checkApprover(state: RequestState, plan: Plan, userId: string): Transition | null {
  if (!plan.approvers.includes(userId)) return refuse('not_authorized', 'you are not an approver for this action');
  if (userId === state.requesterId && !plan.allowSelfApproval) {
    return refuse('self_approval', 'you may not approve your own request');
  }
  if (state.status === 'awaiting_personas') {
    const pending = Object.entries(state.personaState).filter(([, p]) => !p.acked);
    return refuse('not_ready', `waiting for persona acknowledgement: ${pending.map(([n]) => n).join(', ')}`);
  }
  return null;
}

function approve(
  state: RequestState,
  plan: Plan,
  { userId, seenPayloadHash }: { userId: string; seenPayloadHash?: string | undefined },
  now: string,
): Transition {
  const refused = checkApprover(state, plan, userId);
  if (refused) return refused;
  if (state.approvals.some((a) => a.userId === userId)) return refuse('duplicate', 'you have already approved');
  if (seenPayloadHash !== undefined && seenPayloadHash !== state.payloadHash) {
    return refuse('stale_payload', 'the parameters changed since you looked; review them again');
  }
  return recordApproval(state, { userId, at: now, payloadHash: state.payloadHash }, now, []);
}

function recordApproval(
  state: RequestState,
  approval: Approval,
  now: string,
  prior: DomainEvent[],
  how: DecidedHow = { via: 'slack' },
): Transition {
  const approvals = [...state.approvals, approval];
  const events: DomainEvent[] = [
    ...prior,
    {
      type: 'approval_recorded',
      actor: approval.userId,
      approvals: approvals.length,
      minApprovals: state.minApprovals,
    },
  ];
  const next = bump({ ...state, approvals });
  if (approvals.length < state.minApprovals) return { ok: true, state: next, events };
  const decided = decide(next, 'approved', approval.userId, null, now, how);
  return decided.ok
    ? { ...decided, state: { ...decided.state, version: next.version }, events: [...events, ...decided.events] }
    : decided;
}

function adminDecision(
  state: RequestState,
  command: Extract<Command, { type: 'admin_decision' }>,
  now: string,
): Transition {
  const { actor, decision, breakGlass = false } = command;
  const reason = command.reason ?? null;
  const admin = { via: 'admin' as const, breakGlass };
  if (decision === 'deny' || breakGlass) {
    return decide(state, decision === 'deny' ? 'denied' : 'approved', actor, reason, now, admin);
  }
  if (state.status === 'awaiting_personas') {
    const pending = Object.entries(state.personaState).filter(([, p]) => !p.acked);
    return refuse(
      'not_ready',
      `waiting for persona acknowledgement: ${pending.map(([n]) => n).join(', ')} (breakGlass decides anyway)`,
    );
  }
  if (state.approvals.some((a) => a.userId === actor)) return refuse('duplicate', `${actor} has already approved`);
  return recordApproval(state, { userId: actor, at: now, payloadHash: state.payloadHash }, now, [], admin);
}

interface DecidedHow {
  via: DecisionVia;
  breakGlass?: boolean;
}

function decide(
  state: RequestState,
  status: Status,
  actor: string,
  reason: string | null,
  now: string,
  how: DecidedHow = { via: 'slack' },
): Transition {
  const next = bump({
    ...state,
    status,
    decidedAt: now,
    decidedBy: actor,
    reason,
    decidedVia: how.via,
    breakGlass: how.breakGlass ?? false,
  });
  const event: DomainEvent =
    status === 'approved'
      ? { type: 'request_approved', actor }
      : status === 'denied'
        ? { type: 'request_denied', actor, reason }
        : status === 'cancelled'
          ? { type: 'request_cancelled', actor, reason }
          : { type: 'request_expired' };
  return { ok: true, state: next, events: [event] };
}

function escalate(state: RequestState, plan: Plan, now: string): Transition {
  if (!plan.escalation) return refuse('not_applicable', 'this action has no escalation');
  if (state.escalated) return refuse('not_applicable', 'already escalated');
  const minApprovals = Math.max(state.minApprovals, plan.escalation.minApprovals ?? 0);
  const next = bump({ ...state, escalated: true, escalatedAt: now, minApprovals });
  return { ok: true, state: next, events: [{ type: 'request_escalated', minApprovals }] };
}

export interface OverrideCheck {
  ok: boolean;
  reason?: RefusalReason;
  message?: string;
  /** Field-level errors for the modal, keyed by override key. */
  fieldErrors?: Record<string, string>;
  diff?: OverrideRecord['diff'];
}

/**
 * Override governance (SPEC section 2), in order: allowed → keys → changed-key limit → size limit.
 * The JSON Schema check needs a validator with code generation, so the caller passes it in.
 */
export function checkOverride(
  state: RequestState,
  plan: Plan,
  changes: Record<string, unknown>,
  validateSchema?: (params: Record<string, unknown>) => Record<string, string> | null,
): OverrideCheck {
  if (!plan.overrides.allowed) return { ok: false, reason: 'overrides_not_allowed', message: 'edits are not allowed' };
  const badKeys = Object.keys(changes).filter((k) => !plan.overrides.keys.includes(k));
  if (badKeys.length > 0) {
    return {
      ok: false,
      reason: 'invalid_key',
      message: `not editable: ${badKeys.join(', ')}`,
      fieldErrors: Object.fromEntries(badKeys.map((k) => [k, 'this key may not be edited'])),
    };
  }
  const diff: OverrideRecord['diff'] = {};
  for (const [key, to] of Object.entries(changes)) {
    const from = state.effectiveParams[key];
    if (canonicalJson(from) !== canonicalJson(to)) diff[key] = { from: from ?? null, to };
  }
  const changed = Object.keys(diff);
  if (changed.length === 0) return { ok: false, reason: 'no_change', message: 'nothing was changed' };
  if (changed.length > plan.overrides.maxKeys) {
    return { ok: false, reason: 'limit_exceeded', message: `at most ${plan.overrides.maxKeys} keys may change` };
  }
  const chars = changed.reduce((n, k) => n + valueLength(diff[k]?.to), 0);
  if (chars > plan.overrides.maxChars) {
    return {
      ok: false,
      reason: 'diff_size_exceeded',
      message: `new values total ${chars} characters, more than ${plan.overrides.maxChars}`,
    };
  }
  const fieldErrors = validateSchema?.({ ...state.effectiveParams, ...changes }) ?? null;
  if (fieldErrors) return { ok: false, reason: 'schema_validation', message: 'edits fail the schema', fieldErrors };
  return { ok: true, diff };
}

function valueLength(value: unknown): number {
  return typeof value === 'string' ? value.length : canonicalJson(value).length;
}

function applyOverride(
  state: RequestState,
  plan: Plan,
  { userId, changes }: { userId: string; changes: Record<string, unknown> },
  now: string,
): Transition {
  const refused = checkApprover(state, plan, userId);
  if (refused) return refused;
  const check = checkOverride(state, plan, changes);
  if (!check.ok || !check.diff) return refuse(check.reason ?? 'invalid_key', check.message ?? 'edit refused');
  const effectiveParams = { ...state.effectiveParams, ...changes };
  const hash = payloadHash(effectiveParams);
  const edited: RequestState = {
    ...state,
    effectiveParams,
    payloadHash: hash,
    approvals: [],
    voidedApprovals: [...state.voidedApprovals, ...state.approvals],
    overrides: [...state.overrides, { by: userId, at: now, diff: check.diff, payloadHash: hash }],
  };
  const applied: DomainEvent = { type: 'override_applied', actor: userId, diff: check.diff };
  return recordApproval(edited, { userId, at: now, payloadHash: hash }, now, [applied]);
}

function bump(state: RequestState): RequestState {
  return { ...state, version: state.version + 1 };
}
