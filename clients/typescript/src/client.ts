import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import {
  actionsResponseSchema,
  createdResponseSchema,
  createRequestSchema,
  queuedResponseSchema,
  receiptKeyResponseSchema,
  stateResponseSchema,
  statusResponseSchema,
  type ActionsResponse,
  type CreatedResponse,
  type CreateRequestInput,
  type Outcome,
  type ReceiptKeyResponse,
  type StateResponse,
  type StatusResponse,
} from '../../../domain/api-schemas.js';
import { GuardError, InvalidRequestError, outcomeError, UnavailableError, WaitTimeoutError } from './errors.js';
import { Http, parseAnswer, serverSentEvents, sleep, type HttpOptions, type Refusal } from './http.js';

export type GuardClientOptions = HttpOptions;

/** A created request, with the idempotency key it was created under (send it again to find it again). */
export type CreatedRequest = CreatedResponse & { idempotencyKey: string };

/** A decided request: what the agent may now run, and the signed receipt that says so. */
export type ApprovalOutcome = Omit<StateResponse, 'status' | 'effectiveParams' | 'receipt' | 'overridden'> & {
  status: Outcome;
  effectiveParams: Record<string, unknown>;
  receipt: string | null;
  overridden: boolean;
  token: string;
  idempotencyKey: string;
};

export interface WaitOptions {
  /** Long-poll `GET /api/guard/wait` (default) or the `wait-sse` stream; both reconnect after failures. */
  transport?: 'long-poll' | 'sse';
  /** Give up with WaitTimeoutError after this long; by default wait until the request is decided or expires. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Every state seen while waiting (persona acks, approvals so far, escalation). */
  onState?: (state: StateResponse) => void;
}

export interface RequestApprovalOptions extends WaitOptions {
  /** Wait for the decision (else return as soon as the request exists). */
  wait?: boolean;
  /** Defaults to a random UUID; the same key finds the same request instead of creating another. */
  idempotencyKey?: string;
  /** With `wait`: throw DeniedError / ExpiredError / CancelledError for those outcomes (default true). */
  throwOnRejection?: boolean;
  onCreated?: (created: CreatedRequest) => void;
}

const MAX_POLL_SEC = 25;
/** Consecutive failed reconnections of one wait before giving up (with the backoff, about a minute). */
const MAX_RECONNECTS = 12;
const commandAnswerSchema = z.union([stateResponseSchema, queuedResponseSchema]);

/** Typed client of the approval API: create a request, wait for its decision, read, cancel. */
export class GuardClient {
  private readonly http: Http;

  constructor(opts: GuardClientOptions) {
    this.http = new Http(opts);
  }

  /** `GUARD_URL` and `GUARD_AGENT_KEY` from the environment. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env, opts: Partial<GuardClientOptions> = {}): GuardClient {
    const baseUrl = env.GUARD_URL;
    if (!baseUrl) throw new InvalidRequestError('GUARD_URL is not set', 'missing_config', 0);
    return new GuardClient({ baseUrl, agentKey: env.GUARD_AGENT_KEY || undefined, ...opts });
  }

  /**
   * Creates an approval request and, with `wait: true`, waits for the decision. Unless `throwOnRejection: false`,
   * anything but an approval throws (DeniedError, ExpiredError, CancelledError), so the action cannot run by mistake.
   */
  requestApproval(input: CreateRequestInput, opts: RequestApprovalOptions & { wait: true }): Promise<ApprovalOutcome>;
  requestApproval(input: CreateRequestInput, opts?: RequestApprovalOptions & { wait?: false }): Promise<CreatedRequest>;
  async requestApproval(
    input: CreateRequestInput,
    opts: RequestApprovalOptions = {},
  ): Promise<ApprovalOutcome | CreatedRequest> {
    const created = await this.createRequest(input, opts);
    opts.onCreated?.(created);
    if (!opts.wait) return created;
    const state = await this.waitForDecision(created.token, opts);
    if (state.status !== 'approved' && opts.throwOnRejection !== false) throw outcomeError(state);
    return toOutcome(created, state);
  }

  /** `POST /api/guard/request`, validated here first; retried with one idempotency key, so never duplicated. */
  async createRequest(
    input: CreateRequestInput,
    opts: { idempotencyKey?: string; signal?: AbortSignal } = {},
  ): Promise<CreatedRequest> {
    const parsed = createRequestSchema.safeParse(input);
    if (!parsed.success) {
      const details = parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
      throw new InvalidRequestError(`invalid request: ${z.prettifyError(parsed.error)}`, 'invalid_payload', 0, {
        error: 'invalid_payload',
        details,
      });
    }
    const idempotencyKey = opts.idempotencyKey ?? randomUUID();
    const created = await this.http.call('POST', '/api/guard/request', createdResponseSchema, {
      body: parsed.data,
      headers: { 'idempotency-key': idempotencyKey },
      signal: opts.signal,
    });
    return { ...created, idempotencyKey };
  }

  /** Waits until the request is decided (or expires) and returns its final state, effective params and receipt. */
  async waitForDecision(token: string, opts: WaitOptions = {}): Promise<StateResponse> {
    const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
    let last: StateResponse | null = null;
    let failures = 0;
    const seen = (state: StateResponse) => {
      last = state;
      failures = 0;
      opts.onState?.(state);
    };
    for (;;) {
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) throw new WaitTimeoutError(last);
      const round =
        opts.transport === 'sse'
          ? await this.streamRound(token, remainingMs, seen, opts.signal)
          : await this.pollRound(token, remainingMs, seen, opts.signal);
      if ('decided' in round) return round.decided;
      if ('next' in round) continue;
      failures += 1;
      if (!round.retryable || failures > MAX_RECONNECTS) throw round.error;
      const delayMs = Math.min(round.delayMs ?? this.http.backoff(failures), Math.max(0, deadline - Date.now()));
      await sleep(delayMs, opts.signal);
    }
  }

  /** The current state at once (`POST /api/guard/wait`). */
  currentState(token: string): Promise<StateResponse> {
    return this.http.call('POST', '/api/guard/wait', stateResponseSchema, { body: { token } });
  }

  status(requestId: string): Promise<StatusResponse> {
    return this.http.call('GET', `/api/guard/status?requestId=${encodeURIComponent(requestId)}`, statusResponseSchema);
  }

  /** Cancels an open request; the answer is its new state, or `queued` when the workflow will apply it shortly. */
  cancel(token: string, reason?: string): Promise<z.infer<typeof commandAnswerSchema>> {
    const body = reason === undefined ? { token } : { token, reason };
    return this.http.call('POST', '/api/guard/cancel', commandAnswerSchema, { body });
  }

  /** The actions an agent may request (`GET /api/guard/actions`): quorum, personas, timeout, edits, params schema. */
  actions(): Promise<ActionsResponse> {
    return this.http.call('GET', '/api/guard/actions', actionsResponseSchema);
  }

  /** The public key that signs receipts; pin its `pem` and verify receipts offline with `verifyReceipt`. */
  receiptKey(): Promise<ReceiptKeyResponse> {
    return this.http.call('GET', '/api/guard/receipt-key', receiptKeyResponseSchema);
  }

  /** One long-poll: the server answers at the next change or after the poll bound. */
  private async pollRound(
    token: string,
    remainingMs: number,
    seen: (s: StateResponse) => void,
    signal: AbortSignal | undefined,
  ): Promise<Round> {
    const pollSec = Math.min(MAX_POLL_SEC, Math.ceil(remainingMs / 1000));
    const path = `/api/guard/wait?token=${encodeURIComponent(token)}&timeoutSec=${pollSec}`;
    const result = await this.http.attempt('GET', path, { extraTimeoutMs: pollSec * 1000, signal });
    if (!result.ok) return result;
    const state = parseAnswer(stateResponseSchema, result.json, result.status);
    seen(state);
    return state.terminal ? { decided: state } : { next: true };
  }

  /** One SSE connection, read until the terminal event, the end of the stream or the deadline. */
  private async streamRound(
    token: string,
    remainingMs: number,
    seen: (s: StateResponse) => void,
    signal: AbortSignal | undefined,
  ): Promise<Round> {
    const deadline = Number.isFinite(remainingMs) ? AbortSignal.timeout(remainingMs) : new AbortController().signal;
    let retryMs: number | null = null;
    try {
      const opened = await this.http.stream(
        `/api/guard/wait-sse?token=${encodeURIComponent(token)}`,
        signal ? AbortSignal.any([signal, deadline]) : deadline,
      );
      if (!opened.ok) return opened;
      for await (const event of serverSentEvents(opened.body)) {
        retryMs = event.retryMs;
        if (event.event !== 'state') continue;
        const state = parseAnswer(stateResponseSchema, JSON.parse(event.data), 200);
        seen(state);
        if (state.terminal) return { decided: state };
      }
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (err instanceof GuardError) throw err;
      if (!deadline.aborted) return streamFailure(err, retryMs);
    }
    // The stream ended before an outcome (a proxy's idle timeout, a restarting server): reconnect, and the first
    // event of the new stream is the current state, so nothing is missed.
    return streamFailure(new Error('the event stream ended before the decision'), retryMs);
  }
}

/** One long-poll or stream: decided, undecided (go again at once), or failed (maybe go again after a delay). */
type Round = { decided: StateResponse } | { next: true } | Refusal;

function streamFailure(err: unknown, retryMs: number | null): Refusal {
  const error = new UnavailableError(`event stream interrupted: ${(err as Error).message}`, 'stream_interrupted', 0);
  return { ok: false, error, retryable: true, delayMs: retryMs };
}

function toOutcome(created: CreatedRequest, state: StateResponse): ApprovalOutcome {
  return {
    ...state,
    status: state.status as Outcome,
    effectiveParams: state.effectiveParams ?? {},
    receipt: state.receipt ?? null,
    overridden: state.overridden ?? false,
    token: created.token,
    idempotencyKey: created.idempotencyKey,
  };
}
