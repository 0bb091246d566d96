import {
  ActivityFailure,
  ApplicationFailure,
  TimeoutFailure,
  proxyActivities,
  proxyLocalActivities,
  sleep,
  type ActivityOptions,
  type LocalActivityOptions,
} from '@temporalio/workflow';
import type { ArchiveActivities } from '../activities/archive.js';
import type { SlackActivityContract } from './messages.js';

type Activities = SlackActivityContract & ArchiveActivities;
type Name = keyof Activities;

/**
 * Every side effect runs first as a **local activity**: in the worker, inside the workflow task that asked for it,
 * its result recorded with that task's completion. That saves the server an activity task (schedule, dispatch,
 * start, complete) and the workflow task that would take its result: with Slack answering, a request costs two
 * workflow tasks (start and decision) instead of five, and three on a slow Slack, where the decision's Slack update
 * and archive get a task of their own (`ApprovalRequest.splitsDecision`; docs/performance.md). A local activity holds
 * its workflow task, and with it every message and timer of the request, so it gets one attempt of at most 5 s; if
 * that fails for a reason retrying might fix (Slack down, rate limited, slow), the call goes on as a normal activity
 * with the long budget below, and the request is free meanwhile. A permanent failure is final either way.
 */
const LOCAL: LocalActivityOptions = {
  startToCloseTimeout: '5s',
  // One attempt: any retry goes to the normal activity. Local retries would hold the workflow task (a 429's
  // Retry-After is waited for in the worker, or by timers, past any schedule-to-close: measured, SDK 1.24).
  retry: { maximumAttempts: 1 },
};

/** Slack being down for a while must not lose the message: retried with backoff for up to an hour. */
const SLACK: ActivityOptions = {
  startToCloseTimeout: '15s',
  scheduleToCloseTimeout: '1h',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30s' },
};

/** A refusal told minutes late helps nobody: a few retries, then give up. */
const NOTICES: ActivityOptions = {
  startToCloseTimeout: '10s',
  scheduleToCloseTimeout: '2m',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '10s' },
};

/** Retried without limit: a request stays open (so unpurgeable) until its record is archived. */
const ARCHIVE: ActivityOptions = {
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '5m' },
};

const local = proxyLocalActivities<Activities>(LOCAL);
const remote = {
  slack: proxyActivities<Activities>(SLACK),
  notices: proxyActivities<Activities>(NOTICES),
  archive: proxyActivities<Activities>(ARCHIVE),
};
const remoteFor = (name: Name): Activities =>
  name === 'tellRefusal' ? remote.notices : name === 'archiveRequest' ? remote.archive : remote.slack;

/**
 * Runs an activity locally, and as a normal activity if the local attempt failed for a reason worth retrying. Not an
 * `async` function: every promise the workflow code makes costs a stack trace in the SDK (docs/performance.md,
 * "Fewer promises per approval"), and the common path (the local attempt succeeds) needs only the SDK's own.
 */
export function run<K extends Name>(
  name: K,
  input: Parameters<Activities[K]>[0],
): Promise<Awaited<ReturnType<Activities[K]>>> {
  type Result = Awaited<ReturnType<Activities[K]>>;
  const call = (proxy: Activities) => (proxy[name] as (i: typeof input) => Promise<Result>)(input);
  return call(local).catch(async (err: unknown): Promise<Result> => {
    if (!worthRetrying(err)) throw err;
    // Rate limited: the normal activity's first attempt waits the Retry-After too (a timer, not the worker).
    const delay = retryAfterMs(err);
    if (delay) await sleep(delay);
    return call(remoteFor(name));
  });
}

/**
 * A local activity that timed out or failed retryably; not one the activity called permanent, nor a cancellation.
 * (A local activity's failure arrives as the activity's own failure, not wrapped in an ActivityFailure.)
 */
function worthRetrying(err: unknown): boolean {
  const failure = err instanceof ActivityFailure ? err.cause : err;
  if (failure instanceof ApplicationFailure) return !failure.nonRetryable;
  return failure instanceof TimeoutFailure;
}

/** How long a rate-limited local attempt asked to wait (a local failure carries it in its details only). */
function retryAfterMs(err: unknown): number | null {
  if (!(err instanceof ApplicationFailure)) return null;
  const detail = err.details?.[0] as { retryAfterMs?: unknown } | undefined;
  return typeof detail?.retryAfterMs === 'number' && detail.retryAfterMs > 0 ? detail.retryAfterMs : null;
}
