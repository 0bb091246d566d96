import type { RefusalReason, Status } from '../domain/request-state.js';
import type {
  AdminDecisionInput,
  ApprovalInput,
  ApproveInput,
  ApproveWithEditsInput,
  CancelInput,
  DenyInput,
  PersonaAckInput,
  ReplyTo,
  RequestView,
} from '../workflows/messages.js';

/**
 * What the HTTP routes and the Slack handlers know of Temporal: this interface, nothing else. The Temporal
 * implementation is `TemporalRequestGateway`; route and Slack tests use an in-memory one.
 */
export interface ViewOptions {
  persisted?: boolean;
}

export interface RequestGateway {
  /** Starts a request; `idempotent` starts find an existing one with the same id instead of failing. */
  start(input: ApprovalInput, opts: { idempotent: boolean }): Promise<StartOutcome>;
  /**
   * The current state. Throws NotFoundError for an unknown (or purged) request. `persisted`: the state Temporal has
   * persisted, without waiting for a workflow task in flight (for a waiter that then follows the request, and so
   * hears what that task changes); otherwise a read right after a click shows the click.
   */
  view(requestId: string, opts?: ViewOptions): Promise<RequestView>;
  /** What the request was created with (its workflow input). Throws NotFoundError. */
  input(requestId: string): Promise<ApprovalInput>;
  /** Sends a command whose caller wants the outcome (API, admin, the edit modal). */
  command<N extends CommandName>(requestId: string, name: N, input: CommandInputs[N]): Promise<CommandOutcome>;
  /** Sends a Slack click: durable once this resolves ok, applied by the workflow (at most once per clickId). */
  click<N extends ClickName>(requestId: string, name: N, input: CommandInputs[N], meta: ClickMeta): Promise<SentClick>;
  /**
   * Resolves with the first view newer than `sinceVersion`; when `timeoutMs` passes first (the state is then still
   * that version), with that version's view once its first Slack post settled (a post changes no version), else null.
   * Rejects (503) when Temporal becomes unreachable meanwhile.
   */
  waitForChange(requestId: string, sinceVersion: number, timeoutMs: number): Promise<RequestView | null>;
  /**
   * Calls `listener` with every newer view (a terminal one last) until the returned function is called. `onError`
   * hears that Temporal became unreachable: the subscription has then ended (the caller answers 503).
   */
  subscribe(requestId: string, listener: (view: RequestView) => void, onError?: (err: Error) => void): () => void;
  /** The request's history as an operator reads it, with its input. Throws NotFoundError. */
  history(requestId: string): Promise<{ input: ApprovalInput; lines: HistoryLine[] }>;
  /** Requests matching a filter, newest first (visibility: eventually consistent). */
  list(filter: RequestFilter, limit: number): Promise<RequestRow[]>;
  /** Open requests of this task queue, for the gauges (at most `max`; `truncated` when there are more). */
  openRequests(max: number): Promise<{ requests: OpenRequestRow[]; truncated: boolean }>;
  /** Resolves when Temporal answers within `deadlineMs`; rejects otherwise (`/readyz`). */
  checkHealth(deadlineMs: number): Promise<void>;
  close(): Promise<void>;
}

export interface CommandInputs {
  personaAck: PersonaAckInput;
  approve: ApproveInput;
  deny: DenyInput;
  approveWithEdits: ApproveWithEditsInput;
  cancel: CancelInput;
  adminDecision: AdminDecisionInput;
}
export type CommandName = keyof CommandInputs;
/** What a Slack button may send. */
export type ClickName = Extract<CommandName, 'personaAck' | 'approve' | 'deny'>;

export interface ClickMeta {
  /** The Slack delivery's own identity: a replayed delivery carries the same id and changes nothing. */
  clickId: string;
  /** Where the clicker is told, privately, that the workflow refused the click. */
  replyTo?: ReplyTo | undefined;
}

export type StartOutcome =
  | { created: true }
  /** An idempotent start found the request: its input, and its state when it could be read. */
  | { created: false; existing: ApprovalInput; view: RequestView };

export type Refusal = { ok: false; reason: RefusalReason | 'not_found'; message: string };
export type CommandOutcome = { ok: true; view: RequestView } | { ok: true; view: null; queued: true } | Refusal;
export type SentClick = { ok: true } | Refusal;

export interface RequestFilter {
  status?: Status | undefined;
  action?: string | undefined;
  requester?: string | undefined;
  lineageId?: string | undefined;
}

export interface RequestRow {
  requestId: string;
  status: string | null;
  action: string | null;
  requester: string | null;
  lineageId: string | null;
  createdAt: string;
  expiresAt: string | null;
  closedAt: string | null;
  workflowStatus: string;
}

export interface OpenRequestRow {
  action: string;
  status: string;
  personasPending: readonly string[];
  startedAt: Date;
}

export interface HistoryLine {
  eventId: number;
  time: string | null;
  type: string;
  summary: string;
}

export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** Another start took the id first (a re-request racing another replica for the same lineage number). */
export class AlreadyStartedError extends Error {
  override name = 'AlreadyStartedError';
}
