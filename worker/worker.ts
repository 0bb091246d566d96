import { NativeConnection, Worker, type InjectedSinks, type WorkerOptions } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import type { WebClient } from '@slack/web-api';
import { fileURLToPath } from 'node:url';
import { createArchiveActivities } from '../activities/archive.js';
import { createPurgeActivities } from '../activities/purge.js';
import { createSlackActivities } from '../activities/slack.js';
import type { Config } from '../config/env.js';
import { redactParams } from '../domain/redaction.js';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';
import { tracingWorkerOptions, type Tracing } from '../observability/tracing.js';
import { SeenFacts } from './seen-facts.js';
import type { GuardSinks } from '../workflows/approval.js';
import type { GuardEventBatch, SlackActivityContract } from '../workflows/messages.js';

export interface WorkerDeps {
  connection: NativeConnection;
  /** A client on the same server and namespace, for the purge activities (list, describe, delete). */
  client: Client;
  config: Pick<
    Config,
    | 'TEMPORAL_NAMESPACE'
    | 'TEMPORAL_TASK_QUEUE'
    | 'RETENTION_ARCHIVE_DIR'
    | 'WORKER_WORKFLOW_THREADS'
    | 'SLACK_UPDATE_QUEUE'
    | 'SLACK_UPDATE_QUEUE_WINDOW_MS'
  >;
  metrics: Metrics;
  audit: AuditLog;
  slack: WebClient | null;
  /** When set, workflows and activities are traced (a pre-built bundle must include WORKFLOW_TRACING_MODULE). */
  tracing?: Tracing | null;
  /** Pre-bundled workflow code (tests bundle once per suite); otherwise bundled from source at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  taskQueue?: string;
  /**
   * Told each time a request reaches a new version (before the server has persisted it): the composition root
   * publishes it on the change feed that wakes the APIs' waiters (gateway/events.ts).
   */
  onStateChange?: ((change: { requestId: string; version: number }) => void) | undefined;
}

export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/** The composition root of the worker: activities get their dependencies here and nowhere else. */
export async function createGuardWorker(deps: WorkerDeps): Promise<Worker> {
  const { config, metrics, audit } = deps;
  const activities = {
    // The workflow calls them through the contract it was typed against (workflows/messages.ts).
    ...(createSlackActivities({
      slack: deps.slack,
      metrics,
      updateQueue: config.SLACK_UPDATE_QUEUE ? { coalesceMs: config.SLACK_UPDATE_QUEUE_WINDOW_MS } : null,
    }) satisfies SlackActivityContract),
    ...createArchiveActivities({ archiveDir: config.RETENTION_ARCHIVE_DIR, metrics, audit }),
    ...createPurgeActivities({ client: deps.client, metrics, audit }),
  };
  const record = eventRecorder(metrics, audit, deps.onStateChange);
  const sinks: InjectedSinks<GuardSinks> = {
    guard: {
      events: {
        fn: (_info, batch) => record(batch),
        callDuringReplay: false,
      },
    },
  };
  const traced = deps.tracing ? tracingWorkerOptions(deps.tracing, { prebuiltBundle: !!deps.workflowBundle }) : null;
  return Worker.create({
    connection: deps.connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: deps.taskQueue ?? config.TEMPORAL_TASK_QUEUE,
    ...(deps.workflowBundle ? { workflowBundle: deps.workflowBundle } : { workflowsPath }),
    activities,
    sinks: { ...sinks, ...traced?.sinks },
    ...(traced ? { interceptors: traced.interceptors } : {}),
    // A worker killed with -9 holds its sticky queue until this expires; after it any worker takes the task.
    // Timers due in that window would fire late by as much, so keep it short.
    stickyQueueScheduleToStartTimeout: '1s',
    // The server tells the worker when more polls would find work: under load this cut the decision → waiting agent
    // p99 from ~400 to ~130 ms against fixed pollers (docs/performance.md).
    workflowTaskPollerBehavior: { type: 'autoscaling' },
    activityTaskPollerBehavior: { type: 'autoscaling' },
    ...(config.WORKER_WORKFLOW_THREADS ? { workflowThreadPoolSize: config.WORKER_WORKFLOW_THREADS } : {}),
    // Requests wait minutes to hours between events, so caching every open one buys little: an evicted one replays
    // its short history on its next event. The SDK's default sizes the cache from the heap limit (~2,300 workflows
    // on a 4 GB heap, ~0.33 MB each); 500 halved the worker's memory with 3,000 open requests.
    maxCachedWorkflows: 500,
  });
}

/**
 * The worker's end of the workflow's `guard.events` sink: announces each version, and records each fact once. The sink
 * does not run on replay, but it does run again when a workflow task is retried (worker/seen-facts.ts).
 */
export function eventRecorder(
  metrics: Metrics,
  audit: AuditLog,
  onStateChange?: WorkerDeps['onStateChange'],
  seen = new SeenFacts(),
): (batch: GuardEventBatch) => void {
  return (batch) => {
    onStateChange?.({ requestId: batch.requestId, version: batch.version });
    const events = seen.fresh(batch.requestId, batch.events);
    if (events.length > 0) recordEvents({ ...batch, events }, metrics, audit);
  };
}

/** Turns the workflow's facts into audit lines and metrics. */
export function recordEvents(batch: GuardEventBatch, metrics: Metrics, audit: AuditLog): void {
  const { requestId, action, traceId } = batch;
  for (const e of batch.events) {
    audit.emit({ event: e.type, requestId, action, ...auditFields(e, batch.redaction), traceId });
    switch (e.type) {
      case 'persona_acked':
        metrics.personaAcks.inc({ action, persona: e.persona });
        break;
      case 'override_applied':
        metrics.paramOverrides.inc({ action, outcome: 'applied' });
        break;
      case 'request_escalated':
        metrics.escalations.inc({ action });
        break;
      case 'notification_failed':
        metrics.slackNotificationFailures.inc({ action });
        break;
      case 'request_approved':
      case 'request_denied':
      case 'request_expired':
      case 'request_cancelled':
        recordOutcome(batch, e.type, metrics);
        break;
    }
  }
}

/** A fact's audit fields: no person behind it means the system; override diffs hide what the plan redacts. */
function auditFields(e: GuardEventBatch['events'][number], redaction: GuardEventBatch['redaction']) {
  const { type: _type, ...fields } = e;
  if (e.type !== 'override_applied') return { actor: 'system', ...fields };
  const keys = Object.keys(e.diff);
  const side = (pick: 'from' | 'to') =>
    redactParams(Object.fromEntries(keys.map((k) => [k, e.diff[k]?.[pick]])), redaction);
  const from = side('from');
  const to = side('to');
  return { ...fields, diff: Object.fromEntries(keys.map((k) => [k, { from: from[k], to: to[k] }])) };
}

const OUTCOMES = {
  request_approved: 'approved',
  request_denied: 'denied',
  request_expired: 'expired',
  request_cancelled: 'cancelled',
} as const;

function recordOutcome(batch: GuardEventBatch, type: keyof typeof OUTCOMES, metrics: Metrics): void {
  const outcome = OUTCOMES[type];
  const counter = {
    approved: metrics.approvals,
    denied: metrics.denies,
    expired: metrics.expired,
    cancelled: metrics.cancelled,
  }[outcome];
  counter.inc({ action: batch.action });
  const seconds = (Date.parse(batch.at) - Date.parse(batch.createdAt)) / 1000;
  metrics.decisionLatency.observe({ action: batch.action, outcome }, Math.max(0, seconds));
}
