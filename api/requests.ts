import { randomUUID } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  isGrpcServiceError,
  type Client,
  type WorkflowExecutionInfo,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, type Payload, type SignalDefinition, type UpdateDefinition } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { isTerminal, REFUSAL_REASONS, type RefusalReason } from '../domain/request-state.js';
import { GUARD_SEARCH_ATTRIBUTE_KEYS as sa } from '../temporal/search-attributes.js';
import type { approvalWorkflow } from '../workflows/approval.js';
import * as msg from '../workflows/messages.js';
import { stateQuery, type ApprovalInput, type RequestView } from '../workflows/messages.js';
import { StateWatcher } from './state-watcher.js';

export type Refusal = { ok: false; reason: RefusalReason | 'not_found'; message: string };

export type CommandOutcome = { ok: true; view: RequestView } | { ok: true; view: null; queued: true } | Refusal;

/** A click sent as a Signal: recorded by Temporal (its outcome is asked with the click id), or refused at once. */
export type SentClick = { ok: true; clickId: string } | Refusal;

export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** How long a Slack click waits for the workflow before falling back to a durable signal (Slack allows 3 s). */
const UPDATE_DEADLINE_MS = 2000;

/** The API's only door to Temporal: start, read, watch and message approval workflows. */
export class RequestGateway {
  readonly watcher: StateWatcher;

  constructor(
    private readonly client: Client,
    private readonly taskQueue: string,
  ) {
    this.watcher = new StateWatcher(client, (id) => this.readView(id));
  }

  /** Starts the workflow; `created: false` when an idempotent start found the request already there. */
  async start(input: ApprovalInput, idempotent: boolean): Promise<{ created: boolean; view: RequestView | null }> {
    try {
      await this.client.workflow.start<typeof approvalWorkflow>('approvalWorkflow', {
        taskQueue: this.taskQueue,
        workflowId: input.requestId,
        args: [input],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        typedSearchAttributes: [
          { key: sa.GuardStatus, value: input.plan.personas.length > 0 ? 'awaiting_personas' : 'ready_for_approval' },
          { key: sa.GuardAction, value: input.request.action },
          { key: sa.GuardRequester, value: input.request.meta.requester.id },
          { key: sa.GuardExpiresAt, value: new Date(input.expiresAt) },
          { key: sa.GuardPersonasPending, value: input.plan.personas.map((p) => p.name) },
          ...(input.lineageId ? [{ key: sa.GuardLineageId, value: input.lineageId }] : []),
        ],
      });
      return { created: true, view: null };
    } catch (err) {
      if (idempotent && err instanceof WorkflowExecutionAlreadyStartedError) {
        return { created: false, view: await this.readView(input.requestId) };
      }
      throw err;
    }
  }

  /** Current state; terminal states are immutable, so the watcher caches them. */
  async view(requestId: string): Promise<RequestView> {
    return this.watcher.current(requestId);
  }

  private async readView(requestId: string): Promise<RequestView> {
    const handle = this.client.workflow.getHandle(requestId);
    try {
      return await handle.query(stateQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new NotFoundError(`request ${requestId} not found`);
      throw err;
    }
  }

  /**
   * Sends a command as an Update so the caller learns the outcome at once. If the workflow cannot answer in
   * time (worker down or slow), the same command goes as a Signal: durable, applied when a worker returns,
   * and idempotent through the reducer (a repeated approval is a refused duplicate, not a second vote).
   */
  async command<I>(
    requestId: string,
    update: UpdateDefinition<RequestView, [I]>,
    signal: SignalDefinition<[I]>,
    input: I,
  ): Promise<CommandOutcome> {
    const handle: WorkflowHandle = this.client.workflow.getHandle(requestId);
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), UPDATE_DEADLINE_MS);
    try {
      const view = await this.client.connection.withAbortSignal(deadline.signal, () =>
        handle.executeUpdate(update, { args: [input] }),
      );
      this.watcher.publish(view);
      return { ok: true, view };
    } catch (err) {
      if (deadline.signal.aborted) return this.queueAsSignal(handle, signal, input);
      return this.refusal(requestId, err);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends a click as a Signal: once Temporal has it, it is durable and will be applied (by a worker that
   * may come back later), so the click can be answered at once. Refused here only when the request is gone.
   */
  async sendClick<I>(
    requestId: string,
    signal: SignalDefinition<[msg.Clicked<I>]>,
    input: I,
    replyTo?: msg.ReplyTo,
  ): Promise<SentClick> {
    // A request this process has seen decided stays decided: no need to write a refused click into its history.
    if (this.watcher.decided(requestId)) {
      return { ok: false, reason: 'already_decided', message: 'this request is already decided' };
    }
    const clickId = randomUUID();
    try {
      await this.client.workflow
        .getHandle(requestId)
        .signal(signal, { ...input, clickId, ...(replyTo ? { replyTo } : {}) });
      return { ok: true, clickId };
    } catch (err) {
      return this.refusal(requestId, err);
    }
  }

  private async queueAsSignal<I>(
    handle: WorkflowHandle,
    signal: SignalDefinition<[I]>,
    input: I,
  ): Promise<CommandOutcome> {
    try {
      await handle.signal(signal, input);
      return { ok: true, view: null, queued: true };
    } catch (err) {
      return this.refusal(handle.workflowId, err);
    }
  }

  private async refusal(requestId: string, err: unknown): Promise<Refusal> {
    if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
      const type = err.cause.type as RefusalReason;
      if (REFUSAL_REASONS.includes(type)) return { ok: false, reason: type, message: err.cause.message };
    }
    if (err instanceof WorkflowNotFoundError) {
      // Updates to a closed workflow fail as "not found"; a closed request is a decided one.
      const closed = await this.isClosed(requestId);
      if (closed) return { ok: false, reason: 'already_decided', message: 'this request is already decided' };
      return { ok: false, reason: 'not_found', message: `request ${requestId} not found` };
    }
    // Temporal refuses ids it cannot even look up (too long, bad characters): to the caller that is "no such request".
    if (isGrpcServiceError(err) && err.code === GRPC_INVALID_ARGUMENT) {
      return { ok: false, reason: 'not_found', message: `request ${requestId} not found` };
    }
    throw err;
  }

  private async isClosed(requestId: string): Promise<boolean> {
    try {
      const d = await this.client.workflow.getHandle(requestId).describe();
      return d.status.name !== 'RUNNING';
    } catch {
      return false;
    }
  }

  async isTerminal(requestId: string): Promise<boolean> {
    return isTerminal((await this.view(requestId)).status);
  }

  /** The workflow's input, read from its first history event: what the request was created with. */
  async input(requestId: string): Promise<ApprovalInput> {
    const [first] = await this.events(requestId, 1);
    const payloads = first?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
    return this.decode(payloads)[0] as ApprovalInput;
  }

  /** The whole event history, for operators. */
  history(requestId: string): Promise<temporal.api.history.v1.IHistoryEvent[]> {
    return this.events(requestId);
  }

  /** Payloads from the history, decoded with the client's converter. */
  decode(payloads: Payload[]): unknown[] {
    const converter = this.client.options.loadedDataConverter.payloadConverter;
    return payloads.map((p) => converter.fromPayload(p));
  }

  /** Workflows matching a visibility query (eventually consistent: a just-started one may be missing briefly). */
  async list(query: string, limit: number): Promise<WorkflowExecutionInfo[]> {
    const found: WorkflowExecutionInfo[] = [];
    for await (const info of this.client.workflow.list({ query, pageSize: Math.min(limit, 1000) })) {
      found.push(info);
      if (found.length >= limit) break;
    }
    return found;
  }

  private async events(requestId: string, max = Infinity): Promise<temporal.api.history.v1.IHistoryEvent[]> {
    const events: temporal.api.history.v1.IHistoryEvent[] = [];
    let nextPageToken: Uint8Array | null = null;
    try {
      do {
        const res: temporal.api.workflowservice.v1.IGetWorkflowExecutionHistoryResponse =
          await this.client.workflowService.getWorkflowExecutionHistory({
            namespace: this.client.options.namespace,
            execution: { workflowId: requestId },
            maximumPageSize: Number.isFinite(max) ? max : 0,
            nextPageToken,
          });
        events.push(...(res.history?.events ?? []));
        nextPageToken = res.nextPageToken?.length ? res.nextPageToken : null;
      } while (nextPageToken && events.length < max);
    } catch (err) {
      if ((err as { code?: number }).code === GRPC_NOT_FOUND) throw new NotFoundError(`request ${requestId} not found`);
      throw err;
    }
    return events.slice(0, max);
  }
}

const GRPC_NOT_FOUND = 5;
const GRPC_INVALID_ARGUMENT = 3;
