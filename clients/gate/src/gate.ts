import { createHash, type KeyObject } from 'node:crypto';
import { canonicalJson, payloadHash } from '../../../domain/payload-hash.js';
import {
  applyEffectiveParams,
  mapParams,
  type GateDecision,
  type ToolCall,
  type Unreachable,
} from '../../../domain/tool-gate.js';
import {
  checkReceipt,
  GuardError,
  InvalidRequestError,
  PolicyDeniedError,
  RateLimitedError,
  UnauthorizedError,
  UnavailableError,
  WaitTimeoutError,
  type CreatedRequest,
  type GuardClient,
  type ReceiptClaims,
  type StateResponse,
} from '../../typescript/src/index.js';
import type { ClaimStore } from './claims.js';

export type GatedDecision = Extract<GateDecision, { kind: 'action' }>;

export interface GateOptions {
  /** null when GUARD_URL is not set: every gated call is then treated as the service being unreachable. */
  client: GuardClient | null;
  /** The key receipts are checked against: the pinned PEM, or the service's `GET /api/guard/receipt-key`. */
  receiptKey: () => Promise<string | KeyObject>;
  claims: ClaimStore;
  origin: { repo: string; branch?: string };
  requester: string;
}

export interface GateCall {
  call: ToolCall;
  decision: GatedDecision;
  /** The call as people read it: `github/create_issue`, `Bash`. */
  label: string;
  /** Used when the rule sets no justification. */
  justification: string;
  /** How long to wait for the decision before answering "pending, call again". */
  waitMs: number;
  signal?: AbortSignal;
  /** Every undecided state seen while waiting (for progress notifications). */
  onState?: (state: StateResponse) => void;
}

export type GateOutcome =
  | {
      kind: 'approved';
      /** The arguments to run with: the call's own, with an approver's edits applied. */
      arguments: Record<string, unknown>;
      edited: boolean;
      state: StateResponse;
      claims: ReceiptClaims;
      message: string;
    }
  | { kind: 'refused'; state: StateResponse; message: string }
  | { kind: 'pending'; requestId: string; message: string }
  | { kind: 'unreachable'; fallback: Unreachable; message: string }
  | { kind: 'error'; message: string };

/** Generations tried for one call: a conflicting or stale request moves on to the next, a few times at most. */
const MAX_GENERATIONS = 4;

/**
 * One gated call: create (or find again) the request derived from the call, wait for the decision within the
 * budget, and only for an approval whose receipt verifies for exactly the arguments to run, say so. Never throws for
 * anything the service answers: every outcome is a message the agent can act on.
 */
export async function runGate(opts: GateOptions, req: GateCall): Promise<GateOutcome> {
  const { decision } = req;
  if (!opts.client) return unreachable(req, 'GUARD_URL is not set');
  const base = baseKey(req.call, decision.action, opts.origin.repo);
  const deadline = Date.now() + req.waitMs;
  for (let attempt = 0; attempt < MAX_GENERATIONS; attempt++) {
    const generation = await opts.claims.current(base);
    const idempotencyKey = `gate-${base}-${generation}`;
    let created: CreatedRequest;
    try {
      created = await opts.client.createRequest(requestInput(opts, req), { idempotencyKey, signal: req.signal });
    } catch (err) {
      if (err instanceof GuardError && err.code === 'idempotency_conflict') {
        // The rule's mapping changed since that request: it no longer describes this call.
        await opts.claims.claim(base, generation, 'idempotency_conflict');
        continue;
      }
      return createFailure(req, err);
    }
    let state: StateResponse;
    try {
      state = isTerminal(created.status)
        ? await opts.client.currentState(created.token)
        : await opts.client.waitForDecision(created.token, {
            timeoutMs: Math.max(0, deadline - Date.now()),
            signal: req.signal,
            onState: (s) => (s.terminal ? undefined : req.onState?.(s)),
          });
    } catch (err) {
      if (err instanceof WaitTimeoutError) return pending(req, created, err.last);
      if (err instanceof UnavailableError) return unreachable(req, err.message, created.requestId);
      return { kind: 'error', message: `${req.label}: not run: ${describeError(err)}` };
    }
    if (!(await opts.claims.claim(base, generation, `${state.status} ${state.requestId}`))) continue;
    if (state.status !== 'approved') return { kind: 'refused', state, message: refusalMessage(req, state) };
    const outcome = await approved(opts, req, state);
    if (outcome !== 'stale') return outcome;
  }
  return { kind: 'error', message: `${req.label}: not run: no usable approval after ${MAX_GENERATIONS} requests` };
}

async function approved(opts: GateOptions, req: GateCall, state: StateResponse): Promise<GateOutcome | 'stale'> {
  const { decision, call } = req;
  const effective = state.effectiveParams ?? {};
  const args = applyEffectiveParams(decision.mapping, call, effective);
  // The receipt must cover exactly what will run: the params of the arguments about to be sent, not the agent's.
  const params = mapParams(decision.mapping, { ...call, arguments: args });
  let key: string | KeyObject;
  try {
    key = await opts.receiptKey();
  } catch (err) {
    return { kind: 'error', message: `${req.label}: not run: cannot get the receipt key: ${describeError(err)}` };
  }
  const check = checkReceipt(state.receipt ?? '', key, {
    requestId: state.requestId,
    action: decision.action,
    payloadHash: payloadHash(params),
  });
  // An approval nobody acted on before its receipt expired: ask the humans again.
  if (!check.ok && check.problem === 'expired') return 'stale';
  if (!check.ok) {
    const message = `${req.label}: not run: request ${state.requestId} was approved, but its receipt does not verify for these arguments (${check.message})`;
    return { kind: 'error', message };
  }
  const edited = canonicalJson(args) !== canonicalJson(call.arguments);
  const edits = edited ? ', arguments edited by an approver' : '';
  const message = `Approved ${decidedHow(state, state.approvers)} (request ${state.requestId}${edits}).`;
  return { kind: 'approved', arguments: args, edited, state, claims: check.claims, message };
}

function requestInput(opts: GateOptions, req: GateCall) {
  return {
    action: req.decision.action,
    params: req.decision.params,
    meta: {
      origin: opts.origin,
      requester: { id: opts.requester, source: 'agent' as const },
      justification: (req.decision.justification ?? req.justification).slice(0, 4000),
    },
  };
}

/** Same server, tool, arguments, action and origin → the same key, in every process, with nothing stored. */
export function baseKey(call: ToolCall, action: string, repo: string): string {
  const identity = {
    v: 1,
    server: call.server ?? null,
    tool: call.tool,
    arguments: call.arguments,
    cwd: call.cwd ?? null,
    action,
    repo,
  };
  return createHash('sha256').update(canonicalJson(identity)).digest('hex').slice(0, 40);
}

const TERMINAL = new Set(['approved', 'denied', 'expired', 'cancelled']);
const isTerminal = (status: string) => TERMINAL.has(status);

function createFailure(req: GateCall, err: unknown): GateOutcome {
  if (err instanceof UnavailableError) return unreachable(req, err.message);
  const what = `${req.label}: not run`;
  if (err instanceof PolicyDeniedError) {
    const detail = err.body?.detail ?? err.message;
    return {
      kind: 'error',
      message: `${what}: the approval service refuses action '${req.decision.action}': ${detail}`,
    };
  }
  if (err instanceof InvalidRequestError) {
    return { kind: 'error', message: `${what}: the approval service refused the request: ${describeError(err)}` };
  }
  if (err instanceof UnauthorizedError) {
    return { kind: 'error', message: `${what}: the approval service refused this agent's key (GUARD_AGENT_KEY)` };
  }
  if (err instanceof RateLimitedError) {
    const after = err.retryAfterSec === null ? '' : `; try again in ${err.retryAfterSec} s`;
    return { kind: 'error', message: `${what}: too many approval requests${after}` };
  }
  return { kind: 'error', message: `${what}: ${describeError(err)}` };
}

function describeError(err: unknown): string {
  if (!(err instanceof GuardError)) return (err as Error).message;
  const details = (err.body?.details ?? []).flatMap((d) => {
    const { path, message } = (d ?? {}) as { path?: unknown; message?: unknown };
    return path === undefined ? [] : [`${String(path)}: ${String(message)}`];
  });
  const detail = err.body?.detail ?? err.body?.message;
  return [err.code, detail, details.length ? details.join('; ') : null].filter(Boolean).join(': ');
}

function unreachable(req: GateCall, why: string, requestId?: string): GateOutcome {
  const fallback = req.decision.unreachable;
  const request = requestId ? ` (request ${requestId} stays open)` : '';
  const message =
    fallback === 'allow'
      ? `The approval service cannot be reached (${why}); the policy lets ${req.label} run without approval then.`
      : `${req.label} needs human approval (action ${req.decision.action}), but the approval service cannot be ` +
        `reached (${why})${request}, so it was not run. Try again later, or ask the user.`;
  return { kind: 'unreachable', fallback, message };
}

function pending(req: GateCall, created: CreatedRequest, last: StateResponse | null): GateOutcome {
  const status = last?.status ?? created.status;
  const count = last ? `, ${last.approvalsCount} of ${last.minApprovals} approvals` : '';
  const message =
    `${req.label} was not run yet: it is waiting for human approval in Slack (request ${created.requestId}, ` +
    `${status}${count}, expires ${created.expiresAt}). Make exactly the same call again to keep waiting for this ` +
    'request; do not work around it.';
  return { kind: 'pending', requestId: created.requestId, message };
}

/** `in Slack by U_ALICE`, or `by operator admin (break-glass)`: how the decision was made, and by whom. */
function decidedHow(state: StateResponse, who: string[]): string {
  const names = who.join(', ');
  if (state.decidedVia === 'admin')
    return `by operator ${names || 'unknown'}${state.breakGlass ? ' (break-glass)' : ''}`;
  const place = state.decidedVia === 'api' ? 'through the API' : 'in Slack';
  return names ? `${place} by ${names}` : place;
}

/** Denied, expired or cancelled: what happened and who decided, so the agent does not try again blindly. */
export function refusalMessage(req: GateCall, state: StateResponse): string {
  const request = `request ${state.requestId}, action ${state.action}`;
  const why = state.reason ? `: "${state.reason}"` : '';
  const by = state.decidedBy ? ` by ${state.decidedBy}` : '';
  const what =
    state.status === 'denied'
      ? `was denied ${decidedHow(state, state.decidedBy ? [state.decidedBy] : [])}${why}`
      : state.status === 'expired'
        ? `expired without a decision (nobody approved it before ${state.expiresAt})`
        : `was cancelled${by}${why}`;
  return (
    `${req.label} was not run: the approval (${request}) ${what}. Do not retry the same call; ` +
    'change course or ask the user. Calling it again sends a new approval request.'
  );
}
