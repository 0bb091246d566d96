/**
 * What every worker makes true of its namespace at start (runbook section 11, SPEC section 7): the namespace retention
 * follows RETENTION_MAX_AGE_SEC, and the purge schedule of its task queue exists with the configured interval.
 * Both are idempotent, so any number of workers may start at once.
 */
import {
  Client,
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  type Connection,
  type ScheduleUpdateOptions,
} from '@temporalio/client';
import type { Config } from '../config/env.js';
import type { PurgeSweepInput } from '../workflows/purge-sweeper.js';
import { setNamespaceRetention } from './namespace.js';

export const PURGE_SWEEPER_WORKFLOW_TYPE = 'purgeSweeperWorkflow';

/**
 * `guard-purge-sweeper` on the default task queue. A sweeper only sweeps its own task queue (that is where its
 * worker runs), so deployments sharing a namespace on other queues each get their own schedule.
 */
export function purgeScheduleId(taskQueue: string): string {
  return taskQueue === 'approval-guard' ? 'guard-purge-sweeper' : `guard-purge-sweeper-${taskQueue}`;
}

type RetentionConfig = Pick<
  Config,
  'TEMPORAL_NAMESPACE' | 'TEMPORAL_TASK_QUEUE' | 'RETENTION_MAX_AGE_SEC' | 'RETENTION_SWEEP_INTERVAL_SEC'
>;

export async function prepareRetention(connection: Connection, config: RetentionConfig, log: (msg: string) => void) {
  await applyNamespaceRetention(connection, config, log);
  await ensurePurgeSchedule(new Client({ connection, namespace: config.TEMPORAL_NAMESPACE }), config, log);
}

/**
 * Temporal refuses a retention under an hour, so it is clamped (the sweeper still enforces the shorter window). A
 * refusal (a locked-down cluster where only operators may update namespaces) is logged, not fatal.
 */
async function applyNamespaceRetention(connection: Connection, config: RetentionConfig, log: (msg: string) => void) {
  const wanted = config.RETENTION_MAX_AGE_SEC;
  try {
    const applied = await setNamespaceRetention(connection, config.TEMPORAL_NAMESPACE, wanted);
    if (applied !== wanted) {
      log(
        `warning: RETENTION_MAX_AGE_SEC=${wanted} is under Temporal's 1 h floor; namespace retention set to ${applied}s (the purge sweeper still uses the shorter window)`,
      );
    }
  } catch (err) {
    log(`warning: could not set the retention of namespace ${config.TEMPORAL_NAMESPACE}: ${(err as Error).message}`);
  }
}

/** Creates the purge schedule, or updates it when its interval, window or target differ from the config. */
export async function ensurePurgeSchedule(
  client: Client,
  config: RetentionConfig,
  log: (msg: string) => void,
): Promise<'created' | 'updated' | 'unchanged'> {
  const scheduleId = purgeScheduleId(config.TEMPORAL_TASK_QUEUE);
  const desired = purgeSchedule(config);
  try {
    await client.schedule.create({ scheduleId, ...desired });
    log(`created schedule ${scheduleId} (every ${config.RETENTION_SWEEP_INTERVAL_SEC}s)`);
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  const handle = client.schedule.getHandle(scheduleId);
  const current = await handle.describe();
  const now = {
    everyMs: current.spec.intervals?.[0]?.every,
    taskQueue: current.action.taskQueue,
    workflowType: current.action.workflowType,
    args: current.action.args,
    overlap: current.policies.overlap,
  };
  const want = {
    everyMs: config.RETENTION_SWEEP_INTERVAL_SEC * 1000,
    taskQueue: desired.action.taskQueue,
    workflowType: desired.action.workflowType,
    args: desired.action.args,
    overlap: desired.policies.overlap,
  };
  if (JSON.stringify(now) === JSON.stringify(want) && current.spec.intervals?.length === 1) return 'unchanged';
  // An operator's pause (`temporal schedule toggle --pause`) survives worker restarts.
  await handle.update((prev) => ({ ...desired, state: { paused: prev.state.paused, note: prev.state.note } }));
  log(`updated schedule ${scheduleId} (every ${config.RETENTION_SWEEP_INTERVAL_SEC}s)`);
  return 'updated';
}

function purgeSchedule(config: RetentionConfig) {
  const args: [PurgeSweepInput] = [{ maxAgeSec: config.RETENTION_MAX_AGE_SEC }];
  return {
    spec: { intervals: [{ every: config.RETENTION_SWEEP_INTERVAL_SEC * 1000 }] },
    action: {
      type: 'startWorkflow' as const,
      workflowType: PURGE_SWEEPER_WORKFLOW_TYPE,
      workflowId: purgeScheduleId(config.TEMPORAL_TASK_QUEUE),
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      args,
      // A run stuck without a worker must not hold the schedule (SKIP) forever.
      workflowExecutionTimeout: '30m',
    },
    // Runs never pile up: a sweep still running when the next is due makes that one skip.
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1m' },
    state: {},
  } satisfies ScheduleUpdateOptions;
}
