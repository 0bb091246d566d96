import type { ErrorResponse, StateResponse } from '../../../domain/api-schemas.js';

/** A refusal or failure of the approval service, with its stable error code (`policy_denied`, `not_found`...). */
export class GuardError extends Error {
  /**
   * The class's own name (`PolicyDeniedError`...), so a subclass needs no more than its declaration. A bundle that
   * minifies this client must keep class names (esbuild `keepNames`).
   */
  override name = this.constructor.name;
  constructor(
    message: string,
    readonly code: string,
    /** HTTP status; 0 when the service could not be reached. */
    readonly status: number,
    readonly body: ErrorResponse | null = null,
  ) {
    super(message);
  }
}

/** The policy refuses the action outright (403 `policy_denied`): no human will be asked. */
export class PolicyDeniedError extends GuardError {}

/** Still limited after the client's retries, or told to wait longer than it may (429). */
export class RateLimitedError extends GuardError {
  constructor(
    message: string,
    code: string,
    status: number,
    body: ErrorResponse | null,
    readonly retryAfterSec: number | null,
  ) {
    super(message, code, status, body);
  }
}

export class UnauthorizedError extends GuardError {}

/**
 * 409 `idempotency_conflict`: the Idempotency-Key names a request made with another action, params or origin (the
 * answer's `detail` says which). Send the same request to find it again, or another key for a new one.
 */
export class IdempotencyConflictError extends GuardError {}

export class InvalidRequestError extends GuardError {}

export class NotFoundError extends GuardError {}

/** The service (or Temporal behind it) stayed unreachable through the client's retries. */
export class UnavailableError extends GuardError {}

/** The request was decided, and not with an approval. `outcome` holds the final state, receipt included. */
export class OutcomeError extends GuardError {
  constructor(
    message: string,
    code: string,
    readonly outcome: StateResponse,
  ) {
    super(message, code, 200);
  }
}

export class DeniedError extends OutcomeError {}

export class ExpiredError extends OutcomeError {}

export class CancelledError extends OutcomeError {}

/** The wait bound passed with the request still open; wait again with the same token (or idempotency key). */
export class WaitTimeoutError extends GuardError {
  constructor(readonly last: StateResponse | null) {
    super('no decision within the wait bound', 'wait_timeout', 0);
  }
}

/** The typed error for an error answer of the API. */
export function errorFromAnswer(status: number, body: ErrorResponse | null, retryAfterSec: number | null): GuardError {
  const code = body?.error ?? `http_${status}`;
  const detail = body?.detail ?? body?.message;
  const message = `${status} ${code}${detail ? `: ${detail}` : ''}`;
  if (code === 'policy_denied') return new PolicyDeniedError(message, code, status, body);
  if (code === 'idempotency_conflict') return new IdempotencyConflictError(message, code, status, body);
  if (status === 429) return new RateLimitedError(message, code, status, body, retryAfterSec);
  if (status === 401) return new UnauthorizedError(message, code, status, body);
  if (status === 404) return new NotFoundError(message, code, status, body);
  if (status === 400) return new InvalidRequestError(message, code, status, body);
  if (status >= 500) return new UnavailableError(message, code, status, body);
  return new GuardError(message, code, status, body);
}

/** The error a decided, unapproved request raises when the caller asked for approval or an error. */
export function outcomeError(state: StateResponse): OutcomeError {
  const by = state.decidedBy ? ` by ${state.decidedBy}` : '';
  const why = state.reason ? `: ${state.reason}` : '';
  const message = `request ${state.requestId} ${state.status}${by}${why}`;
  if (state.status === 'denied') return new DeniedError(message, 'denied', state);
  if (state.status === 'expired') return new ExpiredError(message, 'expired', state);
  return new CancelledError(message, 'cancelled', state);
}
