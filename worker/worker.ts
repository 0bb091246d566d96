import { NativeConnection, Worker, type InjectedSinks, type WorkerOptions } from '@temporalio/worker';
import type { WebClient } from '@slack/web-api';
import { fileURLToPath } from 'node:url';
import { createArchiveActivities } from '../activities/archive.js';
import { createSlackActivities } from '../activities/slack.js';
import type { Config } from '../config/env.js';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';
import type { GuardSinks } from '../workflows/approval.js';
import type { GuardEventBatch } from '../workflows/messages.js';

export interface WorkerDeps {
  connection: NativeConnection;
  config: Pick<Config, 'TEMPORAL_NAMESPACE' | 'TEMPORAL_TASK_QUEUE' | 'RETENTION_ARCHIVE_DIR'>;
  metrics: Metrics;
  audit: AuditLog;
  slack: WebClient | null;
  /** Pre-bundled workflow code (tests bundle once per suite); otherwise bundled from source at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  taskQueue?: string;
}

export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/** The composition root of the worker: activities get their dependencies here and nowhere else. */
export async function createGuardWorker(deps: WorkerDeps): Promise<Worker> {
  const { config, metrics, audit } = deps;
  const activities = {
    ...createSlackActivities({ slack: deps.slack, metrics }),
    ...createArchiveActivities({ archiveDir: config.RETENTION_ARCHIVE_DIR, metrics }),
  };
  const sinks: InjectedSinks<GuardSinks> = {
    guard: { events: { fn: (_info, batch) => recordEvents(batch, metrics, audit), callDuringReplay: false } },
  };
  return Worker.create({
    connection: deps.connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: deps.taskQueue ?? config.TEMPORAL_TASK_QUEUE,
    ...(deps.workflowBundle ? { workflowBundle: deps.workflowBundle } : { workflowsPath }),
    activities,
    sinks,
  });
}

/** Turns the workflow's facts into audit lines and metrics, once per fact (sinks do not run on replay). */
export function recordEvents(batch: GuardEventBatch, metrics: Metrics, audit: AuditLog): void {
  const { requestId, action } = batch;
  for (const e of batch.events) {
    const { type, ...fields } = e;
    audit.emit({ event: type, requestId, action, ...fields });
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
      case 'request_approved':
      case 'request_denied':
      case 'request_expired':
      case 'request_cancelled':
        recordOutcome(batch, e.type, metrics);
        break;
    }
  }
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
