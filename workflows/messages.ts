import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Plan } from '../domain/plan.js';
import type { CreateRequest } from '../domain/request-schema.js';
import type { DomainEvent, Notification, RequestState } from '../domain/request-state.js';

export type { Notification };

/**
 * The approval workflow's messages, shared by the workflow and its callers so names and payloads exist once.
 * Each command is both an Update (API, admin and the edit modal: the caller learns the outcome at once) and a
 * Signal of the same name (Slack clicks: durable once sent, so the click is answered at once; and operator
 * tooling: `temporal workflow signal --name approve --input '{"userId":"U1"}'`).
 */
export interface ApprovalInput {
  requestId: string;
  request: CreateRequest;
  plan: Plan;
  createdAt: string;
  expiresAt: string;
  lineageId: string | null;
  /** Name of the authenticated agent that created it, when agent keys are configured. */
  agent: string | null;
}

export interface SlackRef {
  channel: string;
  ts: string;
}

/** What a query returns: the state plus where the request lives in Slack. */
export interface RequestView extends RequestState {
  slack: SlackRef | null;
  /**
   * Set by the gateway's read, never by the workflow: the request's workflow task keeps failing (or timing out), so
   * this state is the last one persisted and nothing can change it until an operator fixes the cause.
   */
  stuck?: StuckInfo;
}

/** Why a request cannot progress: its workflow task failed `attempts - 1` times in a row since `since`. */
export interface StuckInfo {
  since: string;
  attempts: number;
  cause: string;
}

/**
 * What the Slack activities tell the workflow after a post or an update. `coalesceMs`: with the worker's update
 * queue on, how long to let changes accumulate before the next update (from the worker's config, so it applies to
 * requests in flight). `paramsCut`: the message could not show the params of this payload hash in full; the
 * workflow then posts them in the message's thread (`postParamsThread`), once per payload hash.
 */
export interface UpdateHint {
  coalesceMs?: number;
  paramsCut?: boolean;
}

/** The outcome of posting the request's message: a permanent refusal of every fallback is `failed`, never thrown. */
export type PostOutcome =
  | ({
      slack: 'posted';
      channel: string;
      ts: string;
      permalink?: string;
      fallback?: 'minimal' | 'dm';
      /**
       * How long Slack took to answer the chat.postMessage that posted it, ms: when Slack is that slow, a decision is
       * recorded in a task of its own before its Slack update (workflows/request.ts, `SLOW_SLACK_MS`).
       */
      postMs?: number;
    } & UpdateHint)
  | { slack: 'failed'; error: string }
  | { slack: 'skipped' };

/** What a Slack activity renders from: the request as submitted, its frozen plan and the state to show. */
export interface MessageInput {
  request: CreateRequest;
  plan: Plan;
  state: RequestState;
}

/** Where a clicker is told, privately, that their click was refused: the button's channel and the clicker. */
export interface ReplyTo {
  channel: string;
  user: string;
}

export interface RefusalNotice {
  replyTo: ReplyTo;
  reason: string;
  message: string;
}

/**
 * The Slack activities as the workflow calls them (PLAN.md contract "Slack notification outcome"); the worker
 * registers `createSlackActivities(...)`, which implements them.
 */
export interface SlackActivityContract {
  postRequestMessage(input: MessageInput): Promise<PostOutcome>;
  updateRequestMessage(input: MessageInput & { ref: SlackRef }): Promise<UpdateHint | void>;
  /** Posts the full (redacted as configured) params in the message's thread. */
  postParamsThread(input: MessageInput & { ref: SlackRef }): Promise<void>;
  postEscalationNotice(input: MessageInput & { ref: SlackRef | null }): Promise<void>;
  tellRefusal(notice: RefusalNotice): Promise<void>;
}

export type PersonaAckInput = { persona: string; userId: string };
export type ApproveInput = { userId: string; seenPayloadHash?: string };
export type DenyInput = { userId: string; reason?: string };
export type ApproveWithEditsInput = { userId: string; changes: Record<string, unknown> };
/** `via`: `admin` when an operator cancels through the admin route (default `api`: the requester). */
export type CancelInput = { actor: string; reason?: string; via?: 'api' | 'admin' };
/** `breakGlass`: decide past the personas and the quorum (else an approval counts as the operator's own). */
export type AdminDecisionInput = { decision: 'approve' | 'deny'; actor: string; reason?: string; breakGlass?: boolean };

export const personaAckUpdate = defineUpdate<RequestView, [Addressed<PersonaAckInput>]>('personaAck');
export const approveUpdate = defineUpdate<RequestView, [Addressed<ApproveInput>]>('approve');
export const denyUpdate = defineUpdate<RequestView, [Addressed<DenyInput>]>('deny');
export const approveWithEditsUpdate = defineUpdate<RequestView, [Addressed<ApproveWithEditsInput>]>('approveWithEdits');
export const cancelUpdate = defineUpdate<RequestView, [Addressed<CancelInput>]>('cancel');
export const adminDecisionUpdate = defineUpdate<RequestView, [Addressed<AdminDecisionInput>]>('adminDecision');

/**
 * A Signal sent for a Slack click names itself with a click id, derived from the Slack delivery (a replayed
 * delivery has the same id, and the workflow applies an id at most once), and says where to tell the clicker of a
 * refusal (an ephemeral message, sent by an activity).
 */
export type Clicked<I> = Addressed<I> & { clickId?: string; replyTo?: ReplyTo };

/** Every command may name the request it is for; the workflow refuses one for another request (not_found). */
export type Addressed<I> = I & { requestId?: string };

export const personaAckSignal = defineSignal<[Clicked<PersonaAckInput>]>('personaAck');
export const approveSignal = defineSignal<[Clicked<ApproveInput>]>('approve');
export const denySignal = defineSignal<[Clicked<DenyInput>]>('deny');
export const approveWithEditsSignal = defineSignal<[Clicked<ApproveWithEditsInput>]>('approveWithEdits');
export const cancelSignal = defineSignal<[Clicked<CancelInput>]>('cancel');
export const adminDecisionSignal = defineSignal<[Clicked<AdminDecisionInput>]>('adminDecision');

export const stateQuery = defineQuery<RequestView>('state');

/** The memo key under which the workflow keeps its latest view (null when too large for a memo). */
export const VIEW_MEMO_KEY = 'view';
/** Views of larger requests (big params) stay out of the memo, which Temporal keeps in its visibility store. */
export const VIEW_MEMO_MAX_CHARS = 16_384;

/**
 * What the memo holds for a view: the view, or null when it is too large (readers then query the workflow). The API
 * writes the first one at the start, so a request is readable before any worker has run it.
 */
export function memoView(view: RequestView): RequestView | null {
  return JSON.stringify(view).length <= VIEW_MEMO_MAX_CHARS ? view : null;
}

/** Facts the workflow reports through a sink (not replayed) for audit lines and metrics. */
export interface GuardEventBatch {
  requestId: string;
  action: string;
  createdAt: string;
  at: string;
  /** The state's version after these facts: the worker announces it to the APIs (gateway/events.ts). */
  version: number;
  /** The trace the facts belong to (the request's, or the Slack click's for an Update), when tracing is on. */
  traceId: string | null;
  /** The plan's redaction: audit lines hide these params' values (override diffs). */
  redaction: Plan['redaction'];
  events: Array<DomainEvent | { type: 'request_created'; actor: string }>;
}
