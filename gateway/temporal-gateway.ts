import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  isGrpcServiceError,
  type Client,
  type Connection,
  type WorkflowExecutionInfo,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, type Payload } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { initialState, initialStatus, REFUSAL_REASONS, type RefusalReason } from '../domain/request-state.js';
import { GUARD_SEARCH_ATTRIBUTE_KEYS as sa } from '../temporal/search-attributes.js';
import type { approvalWorkflow } from '../workflows/approval.js';
import * as msg from '../workflows/messages.js';
import { readableHistory, startInput, type HistoryEvent } from './history.js';
import { workflowIdOf } from './ids.js';
import {
  AlreadyStartedError,
  NotFoundError,
  type ClickMeta,
  type ClickName,
  type CommandInputs,
  type CommandName,
  type CommandOutcome,
  type OpenRequestRow,
  type Refusal,
  type RequestFilter,
  type RequestGateway,
  type RequestRow,
  type SentClick,
  type StartOutcome,
  type ViewOptions,
} from './types.js';
import { APPROVAL_WORKFLOW_TYPE, openRequestsQuery, requestsQuery } from './visibility.js';
import { TemporalWatchSource, type StuckReport } from './watch-source.js';
import { StateWatcher, type WatcherOptions, type WatcherStats } from './watcher.js';

/** How long a command waits for the workflow before falling back to a durable Signal (Slack allows 3 s in all). */
const UPDATE_DEADLINE_MS = 2000;
const LIST_PAGE_SIZE = 1000;
const OPEN_LIST_DEADLINE_MS = 5000;
const GRPC_NOT_FOUND = 5;
/** The view a request starts with: what its workflow's first view will be (workflows/request.ts). */
function firstView(input: msg.ApprovalInput): msg.RequestView {
  return { ...initialState(input), slack: null };
}

/** The memo field naming the request a workflow holds (its id differs from the workflow's for keyed requests). */
const REQUEST_ID_MEMO_KEY = 'requestId';
const GRPC_INVALID_ARGUMENT = 3;

/** Each command is an Update (the caller learns the outcome) and a Signal of the same name (durable fallback). */
const MESSAGES = {
  personaAck: { update: msg.personaAckUpdate, signal: msg.personaAckSignal },
  approve: { update: msg.approveUpdate, signal: msg.approveSignal },
  deny: { update: msg.denyUpdate, signal: msg.denySignal },
  approveWithEdits: { update: msg.approveWithEditsUpdate, signal: msg.approveWithEditsSignal },
  cancel: { update: msg.cancelUpdate, signal: msg.cancelSignal },
  adminDecision: { update: msg.adminDecisionUpdate, signal: msg.adminDecisionSignal },
} as const;

const alreadyDecided = (): Refusal => ({
  ok: false,
  reason: 'already_decided',
  message: 'this request is already decided',
});
const notFound = (requestId: string): Refusal => ({
  ok: false,
  reason: 'not_found',
  message: `request ${requestId} not found`,
});

/** The only code that speaks to Temporal about approval requests: start, read, watch, message and list them. */
export class TemporalRequestGateway implements RequestGateway {
  private readonly watcher: StateWatcher;

  /** `retentionMs`: the purge window; nothing decided longer ago is answered from this process's memory. */
  constructor(
    private readonly client: Client,
    private readonly connection: Connection,
    private readonly taskQueue: string,
    watcher: WatcherOptions = {},
    onStuck?: (report: StuckReport) => void,
  ) {
    const source = new TemporalWatchSource(client, connection, (id) => this.query(id), onStuck);
    this.watcher = new StateWatcher(source, watcher);
  }

  async start(input: msg.ApprovalInput, opts: { idempotent: boolean }): Promise<StartOutcome> {
    try {
      await this.client.workflow.start<typeof approvalWorkflow>(APPROVAL_WORKFLOW_TYPE, {
        taskQueue: this.taskQueue,
        workflowId: workflowIdOf(input.requestId),
        args: [input],
        // Listings name the request, which differs from the workflow id for keyed requests (gateway/ids.ts).
        // The first view too: the request reads the same before any worker has run it.
        memo: { [REQUEST_ID_MEMO_KEY]: input.requestId, [msg.VIEW_MEMO_KEY]: msg.memoView(firstView(input)) },
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        typedSearchAttributes: [
          { key: sa.GuardStatus, value: initialStatus(input.plan) },
          { key: sa.GuardAction, value: input.request.action },
          { key: sa.GuardRequester, value: input.request.meta.requester.id },
          { key: sa.GuardExpiresAt, value: new Date(input.expiresAt) },
          { key: sa.GuardPersonasPending, value: input.plan.personas.map((p) => p.name) },
          ...(input.lineageId ? [{ key: sa.GuardLineageId, value: input.lineageId }] : []),
        ],
      });
      return { created: true };
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      if (!opts.idempotent) throw new AlreadyStartedError(`request ${input.requestId} exists`);
      // The key's request, whatever its generation: the one that holds the workflow id now.
      const existing = await this.inputOf(workflowIdOf(input.requestId));
      return { created: false, existing, view: await this.view(existing.requestId) };
    }
  }

  /** Current state; terminal states are immutable, so the watcher caches them. */
  view(requestId: string, opts: ViewOptions = {}): Promise<msg.RequestView> {
    return this.watcher.current(requestId, opts);
  }

  async input(requestId: string): Promise<msg.ApprovalInput> {
    const input = await this.inputOf(workflowIdOf(requestId));
    if (input.requestId !== requestId) throw new NotFoundError(`request ${requestId} not found`);
    return input;
  }

  private async inputOf(workflowId: string): Promise<msg.ApprovalInput> {
    const [first] = await this.events(workflowId, 1);
    const input = startInput(first, (p) => this.decode(p));
    if (!input) throw new NotFoundError(`request ${workflowId} has no input`);
    return input;
  }

  /**
   * Sends a command as an Update so the caller learns the outcome at once. If the workflow cannot answer in
   * time (worker down or slow), the same command goes as a Signal: durable, applied when a worker returns,
   * and idempotent through the reducer (a repeated approval is a refused duplicate, not a second vote).
   */
  async command<N extends CommandName>(requestId: string, name: N, input: CommandInputs[N]): Promise<CommandOutcome> {
    const { update, signal } = MESSAGES[name];
    const handle: WorkflowHandle = this.client.workflow.getHandle(workflowIdOf(requestId));
    // The workflow refuses a command addressed to another request than it holds (a purged keyed request's successor).
    const addressed = { ...input, requestId };
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), UPDATE_DEADLINE_MS);
    try {
      const view = await this.client.connection.withAbortSignal(deadline.signal, () =>
        handle.executeUpdate(update as typeof msg.approveUpdate, { args: [addressed as msg.ApproveInput] }),
      );
      this.watcher.publish(view);
      return { ok: true, view };
    } catch (err) {
      if (deadline.signal.aborted) return this.queueAsSignal(handle, signal as typeof msg.approveSignal, addressed);
      return this.refusal(requestId, err);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends a click as a Signal: once Temporal has it, it is durable and will be applied (by a worker that may
   * come back later), so the click can be answered at once. Refused here only when the request is gone or known
   * decided (no need to write a refused click into a decided request's history).
   */
  async click<N extends ClickName>(
    requestId: string,
    name: N,
    input: CommandInputs[N],
    meta: ClickMeta,
  ): Promise<SentClick> {
    if (this.watcher.decided(requestId)) return alreadyDecided();
    const payload = {
      ...input,
      requestId,
      clickId: meta.clickId,
      ...(meta.replyTo ? { replyTo: meta.replyTo } : {}),
    };
    try {
      const handle = this.client.workflow.getHandle(workflowIdOf(requestId));
      await handle.signal(MESSAGES[name].signal as typeof msg.approveSignal, payload);
      return { ok: true };
    } catch (err) {
      return this.refusal(requestId, err);
    }
  }

  waitForChange(requestId: string, sinceVersion: number, timeoutMs: number): Promise<msg.RequestView | null> {
    return this.watcher.waitForChange(requestId, sinceVersion, timeoutMs);
  }

  subscribe(requestId: string, listener: (view: msg.RequestView) => void, onError?: (err: Error) => void): () => void {
    return this.watcher.subscribe(requestId, listener, onError);
  }

  /** How many waiters follow a request in this process; a closed stream must leave none behind. */
  listenerCount(requestId: string): number {
    return this.watcher.listenerCount(requestId);
  }

  /** What the watcher holds and has read (tests, the waiters benchmark). */
  watcherStats(): WatcherStats {
    return this.watcher.stats();
  }

  /** The embedded server's supervisor saw it die: open waiters are answered 503 now, not at the next health check. */
  reportOutage(reason: string): void {
    this.watcher.reportOutage(reason);
  }

  async history(requestId: string) {
    const events = await this.events(workflowIdOf(requestId));
    const decode = (p: Payload[]) => this.decode(p);
    const input = startInput(events[0], decode);
    if (!input || input.requestId !== requestId) throw new NotFoundError(`request ${requestId} not found`);
    return { input, lines: readableHistory(events, decode) };
  }

  async list(filter: RequestFilter, limit: number): Promise<RequestRow[]> {
    const query = requestsQuery(this.taskQueue, filter);
    const found: RequestRow[] = [];
    for await (const info of this.client.workflow.list({ query, pageSize: Math.min(limit, LIST_PAGE_SIZE) })) {
      found.push(requestRow(info));
      if (found.length >= limit) break;
    }
    return found;
  }

  openRequests(max: number): Promise<{ requests: OpenRequestRow[]; truncated: boolean }> {
    const query = openRequestsQuery(this.taskQueue);
    return this.client.connection.withDeadline(Date.now() + OPEN_LIST_DEADLINE_MS, async () => {
      const requests: OpenRequestRow[] = [];
      for await (const wf of this.client.workflow.list({ query, pageSize: LIST_PAGE_SIZE })) {
        if (requests.length >= max) return { requests, truncated: true };
        requests.push({
          action: wf.typedSearchAttributes.get(sa.GuardAction) ?? 'unknown',
          status: wf.typedSearchAttributes.get(sa.GuardStatus) ?? 'unknown',
          personasPending: wf.typedSearchAttributes.get(sa.GuardPersonasPending) ?? [],
          startedAt: wf.startTime,
        });
      }
      return { requests, truncated: false };
    });
  }

  async checkHealth(deadlineMs: number): Promise<void> {
    const { connection } = this;
    await connection.withDeadline(Date.now() + deadlineMs, () => connection.healthService.check({}));
  }

  async close(): Promise<void> {
    this.watcher.close();
  }

  private async query(requestId: string): Promise<msg.RequestView> {
    try {
      const view = await this.client.workflow.getHandle(workflowIdOf(requestId)).query(msg.stateQuery);
      if (view.requestId !== requestId) throw new NotFoundError(`request ${requestId} not found`);
      return view;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError || isInvalidId(err)) {
        throw new NotFoundError(`request ${requestId} not found`);
      }
      throw err;
    }
  }

  private async queueAsSignal(
    handle: WorkflowHandle,
    signal: typeof msg.approveSignal,
    input: unknown,
  ): Promise<CommandOutcome> {
    try {
      await handle.signal(signal, input as msg.Clicked<msg.ApproveInput>);
      return { ok: true, view: null, queued: true };
    } catch (err) {
      return this.refusal(handle.workflowId, err);
    }
  }

  private async refusal(requestId: string, err: unknown): Promise<Refusal> {
    if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
      const type = err.cause.type as RefusalReason;
      if (REFUSAL_REASONS.includes(type)) return { ok: false, reason: type, message: err.cause.message };
      if (err.cause.type === 'not_found') return notFound(requestId);
    }
    // Updates to a closed workflow fail as "not found"; a closed request is a decided one.
    if (err instanceof WorkflowNotFoundError)
      return (await this.isClosed(requestId)) ? alreadyDecided() : notFound(requestId);
    // Temporal refuses ids it cannot even look up (too long, bad characters): to the caller that is "no such request".
    if (isInvalidId(err)) return notFound(requestId);
    throw err;
  }

  private async isClosed(requestId: string): Promise<boolean> {
    try {
      const d = await this.client.workflow.getHandle(workflowIdOf(requestId)).describe();
      if (d.memo?.[REQUEST_ID_MEMO_KEY] !== undefined && d.memo[REQUEST_ID_MEMO_KEY] !== requestId) return false;
      return d.status.name !== 'RUNNING';
    } catch {
      return false;
    }
  }

  private decode(payloads: Payload[]): unknown[] {
    const converter = this.client.options.loadedDataConverter.payloadConverter;
    return payloads.map((p) => converter.fromPayload(p));
  }

  private async events(requestId: string, max = Infinity): Promise<HistoryEvent[]> {
    const events: HistoryEvent[] = [];
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
      const code = (err as { code?: number }).code;
      if (code === GRPC_NOT_FOUND || isInvalidId(err)) throw new NotFoundError(`request ${requestId} not found`);
      throw err;
    }
    return events.slice(0, max);
  }
}

function isInvalidId(err: unknown): boolean {
  return isGrpcServiceError(err) && err.code === GRPC_INVALID_ARGUMENT;
}

function requestRow(info: WorkflowExecutionInfo): RequestRow {
  const attrs = info.typedSearchAttributes;
  const named = info.memo?.[REQUEST_ID_MEMO_KEY];
  return {
    requestId: typeof named === 'string' ? named : info.workflowId,
    status: attrs.get(sa.GuardStatus) ?? null,
    action: attrs.get(sa.GuardAction) ?? null,
    requester: attrs.get(sa.GuardRequester) ?? null,
    lineageId: attrs.get(sa.GuardLineageId) ?? null,
    createdAt: info.startTime.toISOString(),
    expiresAt: attrs.get(sa.GuardExpiresAt)?.toISOString() ?? null,
    closedAt: info.closeTime?.toISOString() ?? null,
    workflowStatus: info.status.name,
  };
}
