import { isGrpcServiceError, type Client, type Connection } from '@temporalio/client';
import { workflowIdOf } from './ids.js';
import type { Payload } from '@temporalio/common';
import { VIEW_MEMO_KEY, type RequestView } from '../workflows/messages.js';
import { readBatch, type Reading } from './history.js';
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
   */
  read(requestId: string, limit: Limit): Promise<RequestView>;
  /** One history long-poll round from `pageToken` (null: the whole history so far, answered at once). */
  follow(requestId: string, pageToken: Uint8Array | null, signal: AbortSignal): Promise<FollowBatch>;
  /** Resolves when Temporal answers within `deadlineMs`. */
  checkHealth(deadlineMs: number): Promise<void>;
}

const GRPC_NOT_FOUND = 5;
const GRPC_INVALID_ARGUMENT = 3;

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

  constructor(
    private readonly client: Client,
    private readonly connection: Connection,
    private readonly query: (requestId: string) => Promise<RequestView>,
  ) {}

  async read(requestId: string, limit: Limit): Promise<RequestView> {
    let memo: RequestView | null = null;
    let pending = false;
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
      pending = !!res.pendingWorkflowTask;
    } catch (err) {
      if (err instanceof NotFoundError) throw err;
      if (isGrpcServiceError(err) && (err.code === GRPC_NOT_FOUND || err.code === GRPC_INVALID_ARGUMENT)) {
        throw new NotFoundError(`request ${requestId} not found`);
      }
      throw err;
    }
    if (memo && !pending) return memo;
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
