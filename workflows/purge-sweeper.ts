import { log, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { PurgeActivities, PurgePageResult } from '../activities/purge.js';

export interface PurgeSweepInput {
  /** RETENTION_MAX_AGE_SEC: requests closed longer ago than this are purged (once archived). */
  maxAgeSec: number;
  pageSize?: number;
  /** Bounds one run; what is left waits for the next run of the schedule. */
  maxPerRun?: number;
}

export interface PurgeSweepResult {
  cutoff: string;
  purged: number;
  /** Deletions the server had not carried out by the end of the run; the next run counts them. */
  pending: number;
  skipped: number;
  /** True when the run stopped at `maxPerRun` with more pages to go. */
  more: boolean;
}

const purge = proxyActivities<PurgeActivities>({
  startToCloseTimeout: '5m',
  heartbeatTimeout: '1m',
  // Bounded: a failing run ends (and shows as failed) so the next scheduled run is not skipped behind it.
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 5 },
});

/**
 * One sweep of the purge schedule (`guard-purge-sweeper`): deletes approval requests of this task queue that closed
 * more than `maxAgeSec` ago and were archived. Namespace retention cannot go under an hour; this enforces any window.
 */
export async function purgeSweeperWorkflow({
  maxAgeSec,
  pageSize = 100,
  maxPerRun = 1000,
}: PurgeSweepInput): Promise<PurgeSweepResult> {
  const cutoff = new Date(Date.now() - maxAgeSec * 1000).toISOString();
  const { taskQueue } = workflowInfo();
  let nextPageToken: string | null = null;
  let listed = 0;
  let purged = 0;
  let pending = 0;
  let skipped = 0;
  do {
    const page: PurgePageResult = await purge.purgeClosedRequests({ cutoff, taskQueue, pageSize, nextPageToken });
    listed += page.listed;
    purged += page.purged.length;
    pending += page.pending.length;
    skipped += page.skipped.length;
    nextPageToken = page.nextPageToken;
  } while (nextPageToken !== null && listed < maxPerRun);
  if (purged + pending + skipped > 0) log.info('purge sweep', { cutoff, purged, pending, skipped });
  return { cutoff, purged, pending, skipped, more: nextPageToken !== null };
}
