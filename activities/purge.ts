import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, isGrpcServiceError, type Client } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';

export interface PurgeDeps {
  /** A client on the worker's namespace: the activity lists, describes and deletes through it. */
  client: Client;
  metrics: Metrics;
  audit: AuditLog;
}

export interface PurgePageInput {
  /** ISO time: requests closed before it are due. */
  cutoff: string;
  /** Only requests of this deployment (its task queue) are swept. */
  taskQueue: string;
  pageSize: number;
  /** Base64 visibility page token from the previous page, null for the first. */
  nextPageToken: string | null;
  /** How long to wait for the server to carry out the deletions of this page (it deletes asynchronously). */
  confirmTimeoutMs?: number;
}

export interface PurgePageResult {
  listed: number;
  /** Deleted and confirmed gone: counted in purged_requests_total. */
  purged: string[];
  /** Deletion requested but not yet carried out by the server: the next sweep requests and counts it again. */
  pending: string[];
  /** Listed but left alone after a second look, with why (e.g. `not_archived`, `gone`). */
  skipped: Array<{ workflowId: string; reason: SkipReason }>;
  nextPageToken: string | null;
}

export type SkipReason = 'gone' | 'running' | 'not_archived' | 'not_due' | 'not_ours';

export const APPROVAL_WORKFLOW_TYPE = 'approvalWorkflow';
const GRPC_NOT_FOUND = 5;

/**
 * The visibility filter for archived approval requests of `taskQueue` that closed before `cutoff`. Archived means
 * completed: the approval workflow completes only once its archive line is written (workflows/approval.ts); a run
 * that closed any other way (terminated, reset, failed, cancelled by hand) was not archived and is never purged.
 */
export function purgeQuery(cutoff: string, taskQueue: string): string {
  if (taskQueue.includes("'")) throw new Error(`task queue name ${taskQueue} cannot be quoted in a visibility query`);
  return [
    `ExecutionStatus = 'Completed'`,
    `WorkflowType = '${APPROVAL_WORKFLOW_TYPE}'`,
    `TaskQueue = '${taskQueue}'`,
    `CloseTime < '${new Date(cutoff).toISOString()}'`,
  ].join(' AND ');
}

export function createPurgeActivities({ client, metrics, audit }: PurgeDeps) {
  const namespace = client.options.namespace;
  return {
    /**
     * One page of the sweep: lists due requests, checks each again by describe (visibility is eventually
     * consistent and this must never delete an unarchived request), deletes, and counts each once the server has
     * carried the deletion out. Keyset pagination, so deleting the page just read does not shift the next one.
     */
    async purgeClosedRequests(input: PurgePageInput): Promise<PurgePageResult> {
      const res = await client.workflowService.listWorkflowExecutions({
        namespace,
        query: purgeQuery(input.cutoff, input.taskQueue),
        pageSize: input.pageSize,
        ...(input.nextPageToken ? { nextPageToken: Buffer.from(input.nextPageToken, 'base64') } : {}),
      });
      const result: PurgePageResult = { listed: 0, purged: [], pending: [], skipped: [], nextPageToken: null };
      const requested: Run[] = [];
      for (const execution of res.executions ?? []) {
        const workflowId = execution.execution?.workflowId;
        const runId = execution.execution?.runId;
        if (!workflowId || !runId) continue;
        result.listed++;
        const skip = await whyNotPurge(client, workflowId, runId, input);
        if (skip) result.skipped.push({ workflowId, reason: skip });
        else if (await deleteRun(client, namespace, { workflowId, runId })) requested.push({ workflowId, runId });
        else result.skipped.push({ workflowId, reason: 'gone' });
        Context.current().heartbeat();
      }
      const { gone, pending } = await awaitDeletion(client, requested, input.confirmTimeoutMs ?? 60_000);
      for (const { workflowId, runId } of gone) {
        result.purged.push(workflowId);
        metrics.purgedRequests.inc();
        audit.emit({ event: 'request_purged', requestId: workflowId, actor: 'system', runId });
      }
      result.pending = pending.map((r) => r.workflowId);
      const token = res.nextPageToken;
      result.nextPageToken = token && token.length > 0 ? Buffer.from(token).toString('base64') : null;
      return result;
    },
  };
}

interface Run {
  workflowId: string;
  runId: string;
}

/**
 * DeleteWorkflowExecution only queues the deletion; the run stays describable (and listed) for a while. Counting at
 * the request would count a run again at every sweep until the server gets to it, so a purge counts once gone.
 */
async function awaitDeletion(client: Client, runs: Run[], timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  const gone: Run[] = [];
  let pending = runs;
  while (pending.length > 0) {
    const still: Run[] = [];
    for (const run of pending) {
      if (await exists(client, run)) still.push(run);
      else gone.push(run);
    }
    pending = still;
    Context.current().heartbeat();
    if (pending.length === 0 || Date.now() >= deadline) break;
    await sleep(500);
  }
  return { gone, pending };
}

async function exists(client: Client, { workflowId, runId }: Run): Promise<boolean> {
  try {
    await client.workflow.getHandle(workflowId, runId).describe();
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

/** The describe double-check: null when the run is still closed, archived, of our type and queue, and due. */
async function whyNotPurge(
  client: Client,
  workflowId: string,
  runId: string,
  { cutoff, taskQueue }: PurgePageInput,
): Promise<SkipReason | null> {
  let d;
  try {
    d = await client.workflow.getHandle(workflowId, runId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return 'gone';
    throw err;
  }
  if (d.status.name === 'RUNNING') return 'running';
  if (d.type !== APPROVAL_WORKFLOW_TYPE || d.taskQueue !== taskQueue) return 'not_ours';
  if (d.status.name !== 'COMPLETED') return 'not_archived';
  if (!d.closeTime || d.closeTime.getTime() >= Date.parse(cutoff)) return 'not_due';
  return null;
}

/** False when the run was already gone (another sweep, or the namespace retention, got there first). */
async function deleteRun(client: Client, namespace: string, workflowExecution: Run): Promise<boolean> {
  try {
    await client.workflowService.deleteWorkflowExecution({ namespace, workflowExecution });
    return true;
  } catch (err) {
    if (isGrpcServiceError(err) && err.code === GRPC_NOT_FOUND) return false;
    throw err;
  }
}

export type PurgeActivities = ReturnType<typeof createPurgeActivities>;
