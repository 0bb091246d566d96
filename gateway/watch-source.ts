import { isGrpcServiceError, type Client, type Connection } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import proto, { type temporal } from '@temporalio/proto';
import { isTerminal } from '../domain/request-state.js';
import { workflowIdOf } from './ids.js';
import { VIEW_MEMO_KEY, type RequestView, type StuckInfo } from '../workflows/messages.js';
import { readBatch, timestamp, type Reading } from './history.js';
import { Slots } from './slots.js';
import { NotFoundError } from './types.js';

/** One round of a request's history long-poll: what the new events say, and where the next round starts. */
export interface FollowBatch {
  reading: Reading;
  /** The history is complete: the workflow closed, nothing more will change. */
  closed: boolean;
  nextPageToken: Uint8Array | null;
}

export type Limit = <T>(call: () => Promise<T>) => Promise<T>;

/** What the watcher needs of Temporal; tests give it a fake. */
export interface WatchSource {
  /**
   * The state Temporal has persisted. Throws NotFoundError for an unknown request. Calls that load the server go
   * through `limit` (the watcher bounds them); a query, which waits on a worker, holds none of those slots.
   * `memoOnly`: answer the persisted state even while a workflow task is pending (the caller reads again until it
   * shows the version it waits for), never a query.
   */
  read(requestId: string, limit: Limit, opts?: { memoOnly?: boolean }): Promise<RequestView>;
  /** One history long-poll round from `pageToken` (null: the whole history so far, answered at once). */
  follow(requestId: string, pageToken: Uint8Array | null, signal: AbortSignal): Promise<FollowBatch>;
  /** Resolves when Temporal answers within `deadlineMs`. */
  checkHealth(deadlineMs: number): Promise<void>;
}

const GRPC_NOT_FOUND = 5;
const GRPC_INVALID_ARGUMENT = 3;

/**
 * A pending workflow task on this attempt or later has failed (or timed out) on every attempt before it: the SDK and
 * the server retry it forever, so the request is stuck until an operator fixes the cause (a bug, a non-deterministic
 * deploy, a worker that dies on it). A schedule-to-start timeout of a sticky queue does not count as an attempt.
 */
export const STUCK_ATTEMPTS = 3;
/**
 * Or its second attempt is still pending this long after it was scheduled: the SDK reports a task's failure once
 * and lets its later attempts time out (10 s each), so a task that failed again shows only as one that does not end.
 * A task that failed once for a passing reason (its worker killed) is done within this on a healthy worker.
 */
export const STUCK_RETRY_AGE_MS = 2000;
/** Recent events searched for the first failure of the stuck task. */
const FAILURE_EVENTS_SCANNED = 20;
/** Stuck requests whose cause this process looked up (once each), at most. */
const STUCK_KNOWN_MAX = 1000;
const MAX_CAUSE_CHARS = 500;

/** A request found stuck (once per request per process): the composition root counts it and audits it. */
export interface StuckReport extends StuckInfo {
  requestId: string;
  action: string;
}

/** A query waits for the workflow task in flight; past this, a read answers the persisted memo instead. */
const QUERY_DEADLINE_MS = 5000;
/**
 * Queries in flight at once. Each is a task for a worker (in `npm start`, this very process): unbounded, thousands of
 * waiters arriving on requests without a memo would queue queries on the workers past their deadline.
 */
const MAX_QUERIES = 16;

/**
 * Reads from Temporal. The persisted state is the workflow's memo (DescribeWorkflowExecution, answered by the history
 * service: no worker involved). While a workflow task is pending (a Signal or a timer not yet applied, or a task in
 * flight) the state is about to change: a query then waits for that task and answers the state after it, so a read
 * right after a click shows the click. A view too large for the memo, or a request that has not written one yet, is
 * read by a query too.
 */
export class TemporalWatchSource implements WatchSource {
  private readonly queries = new Slots(MAX_QUERIES);
  /** Causes of the stuck tasks seen, by request: looked up once, reported once. */
  private readonly stuckCauses = new Map<string, Pick<StuckInfo, 'since' | 'cause'>>();

  constructor(
    private readonly client: Client,
    private readonly connection: Connection,
    private readonly query: (requestId: string) => Promise<RequestView>,
    private readonly onStuck: (report: StuckReport) => void = () => {},
  ) {}

  async read(requestId: string, limit: Limit, opts: { memoOnly?: boolean } = {}): Promise<RequestView> {
    let memo: RequestView | null = null;
    let pending = false;
    let stuck: Omit<StuckInfo, 'cause'> | null = null;
    try {
      const res = await limit(() =>
        this.client.workflowService.describeWorkflowExecution({
          namespace: this.client.options.namespace,
          execution: { workflowId: workflowIdOf(requestId) },
        }),
      );
      const payload = res.workflowExecutionInfo?.memo?.fields?.[VIEW_MEMO_KEY] as Payload | undefined;
      memo = payload ? this.decodeView([payload]) : null;
      // A newer request under the same (keyed) workflow id: the one asked for is gone (gateway/ids.ts).
      if (memo && memo.requestId !== requestId) throw new NotFoundError(`request ${requestId} not found`);
      const task = res.pendingWorkflowTask;
      pending = !!task;
      const attempts = task?.attempt ?? 0;
      const scheduled = Date.parse(timestamp(task?.scheduledTime) ?? new Date().toISOString());
      if (attempts >= STUCK_ATTEMPTS || (attempts === 2 && Date.now() - scheduled >= STUCK_RETRY_AGE_MS)) {
        stuck = { since: new Date(scheduled).toISOString(), attempts };
      }
    } catch (err) {
      if (err instanceof NotFoundError) throw err;
      if (isGrpcServiceError(err) && (err.code === GRPC_NOT_FOUND || err.code === GRPC_INVALID_ARGUMENT)) {
        throw new NotFoundError(`request ${requestId} not found`);
      }
      throw err;
    }
    if (memo && !pending) return memo;
    // A notice's catch-up: the task it announced writes the memo when it completes; a query would wait for that
    // task and then for a worker to answer (behind everything else the worker has queued), so read again instead.
    if (memo && opts.memoOnly && !stuck) return memo;
    // A query would wait for a task that does not complete: answer the last persisted state, saying why it is stale.
    if (memo && stuck) {
      const info = await this.stuckInfo(memo, stuck);
      // A decision persisted stands (a later task failing, the archive's say, is the operators' to hear).
      return isTerminal(memo.status) ? memo : { ...memo, stuck: info };
    }
    try {
      return await this.queries.run(() =>
        this.connection.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => this.query(requestId)),
      );
    } catch (err) {
      // No worker to answer (down, or busy past the deadline): the persisted state is still the truth.
      if (memo && !(err instanceof NotFoundError)) return memo;
      throw err;
    }
  }

  /**
   * The first failure of the task that keeps failing, and when it happened (the history records that one; its later
   * attempts are not written), looked up once per request and reported once.
   */
  private async stuckInfo(view: RequestView, stuck: Omit<StuckInfo, 'cause'>): Promise<StuckInfo> {
    const known = this.stuckCauses.get(view.requestId);
    if (known) return { ...known, attempts: stuck.attempts };
    let found: Pick<StuckInfo, 'since' | 'cause'> = { since: stuck.since, cause: 'the workflow task keeps failing' };
    try {
      const res = await this.client.workflowService.getWorkflowExecutionHistoryReverse({
        namespace: this.client.options.namespace,
        execution: { workflowId: workflowIdOf(view.requestId) },
        maximumPageSize: FAILURE_EVENTS_SCANNED,
      });
      found = failureOf(res.history?.events ?? []) ?? found;
    } catch {
      // The cause is a courtesy: the request is stuck either way (looked up again on the next read).
      return { ...found, attempts: stuck.attempts };
    }
    if (this.stuckCauses.size >= STUCK_KNOWN_MAX) this.stuckCauses.delete(this.stuckCauses.keys().next().value!);
    this.stuckCauses.set(view.requestId, found);
    const info = { ...found, attempts: stuck.attempts };
    this.onStuck({ requestId: view.requestId, action: view.action, ...info });
    return info;
  }

  async follow(requestId: string, pageToken: Uint8Array | null, signal: AbortSignal): Promise<FollowBatch> {
    const res = await this.client.connection.withAbortSignal(signal, () =>
      this.client.workflowService.getWorkflowExecutionHistory({
        namespace: this.client.options.namespace,
        execution: { workflowId: workflowIdOf(requestId) },
        nextPageToken: pageToken,
        waitNewEvent: true,
        skipArchival: true,
      }),
    );
    const closed = !res.nextPageToken || res.nextPageToken.length === 0;
    return {
      reading: readBatch(res.history?.events ?? [], (p) => this.decodeView(p)),
      closed,
      nextPageToken: closed ? null : res.nextPageToken!,
    };
  }

  async checkHealth(deadlineMs: number): Promise<void> {
    const { connection } = this;
    await connection.withDeadline(Date.now() + deadlineMs, () => connection.healthService.check({}));
  }

  /** The view a payload holds; null when payload codecs are configured (their decoding is async: query instead). */
  private decodeView(payloads: Payload[] | null | undefined): RequestView | null {
    const converter = this.client.options.loadedDataConverter;
    const payload = payloads?.[0];
    if (!payload || converter.payloadCodecs.length > 0) return null;
    const view = converter.payloadConverter.fromPayload<RequestView>(payload);
    return view && typeof view.version === 'number' && typeof view.requestId === 'string' ? view : null;
  }
}

const { WorkflowTaskFailedCause, TimeoutType } = proto.temporal.api.enums.v1;

/**
 * The newest workflow task failure among `events` (newest first) and its time: "workflow task failed
 * (WORKFLOW_WORKER_UNHANDLED_FAILURE): <message>" or "workflow task timed out (START_TO_CLOSE)".
 */
export function failureOf(events: temporal.api.history.v1.IHistoryEvent[]): Pick<StuckInfo, 'since' | 'cause'> | null {
  for (const e of events) {
    const since = timestamp(e.eventTime) ?? new Date().toISOString();
    const failed = e.workflowTaskFailedEventAttributes;
    if (failed) {
      const kind = WorkflowTaskFailedCause[failed.cause ?? 0]?.replace('WORKFLOW_TASK_FAILED_CAUSE_', '');
      const cause = `workflow task failed (${kind}): ${failed.failure?.message ?? 'no message'}`;
      return { since, cause: cause.slice(0, MAX_CAUSE_CHARS) };
    }
    const timedOut = e.workflowTaskTimedOutEventAttributes;
    if (timedOut) {
      const kind = TimeoutType[timedOut.timeoutType ?? 0]?.replace('TIMEOUT_TYPE_', '');
      return { since, cause: `workflow task timed out (${kind})` };
    }
  }
  return null;
}
