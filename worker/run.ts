import { DefaultLogger, NativeConnection, Runtime, type LogLevel, type Worker } from '@temporalio/worker';
import { WebClient } from '@slack/web-api';
import type { Config } from '../config/env.js';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';
import { createGuardWorker, type WorkerDeps } from './worker.js';

export interface RunningWorker {
  worker: Worker;
  /** Settles when the worker stops (after shutdown() or a fatal error). */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

let runtimeInstalled = false;
/** The SDK logs every worker state change at INFO; keep only what an operator needs. */
function installRuntime(level: LogLevel): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger(level) });
  } catch {
    // Already created (a test environment made one first): its logger stays.
  }
}

/** Retries the first connection so a worker started before its Temporal server waits instead of dying. */
async function connectWithRetry(address: string, log: (msg: string) => void): Promise<NativeConnection> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await NativeConnection.connect({ address });
    } catch (err) {
      if (attempt >= 60) throw err;
      if (attempt === 1 || attempt % 10 === 0) log(`waiting for Temporal at ${address}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

export async function startWorker(opts: {
  config: Config;
  metrics: Metrics;
  audit: AuditLog;
  log?: (msg: string) => void;
  /** Pre-bundled workflow code (tests bundle once per suite). */
  workflowBundle?: WorkerDeps['workflowBundle'];
}): Promise<RunningWorker> {
  const { config } = opts;
  const log = opts.log ?? ((m: string) => console.error(`[worker] ${m}`));
  installRuntime(config.LOG_LEVEL === 'debug' || config.LOG_LEVEL === 'trace' ? 'DEBUG' : 'WARN');
  const connection = await connectWithRetry(config.TEMPORAL_ADDRESS ?? `127.0.0.1:${config.TEMPORAL_DEV_PORT}`, log);
  // Temporal owns retries (with backoff and Retry-After): the Slack client itself must not retry.
  const slack = config.SLACK_BOT_TOKEN
    ? new WebClient(config.SLACK_BOT_TOKEN, {
        ...(config.SLACK_API_URL ? { slackApiUrl: config.SLACK_API_URL } : {}),
        retryConfig: { retries: 0 },
        rejectRateLimitedCalls: true,
      })
    : null;
  if (!slack) log('SLACK_BOT_TOKEN is not set: Slack messages are skipped; decisions still work via the API');
  const worker = await createGuardWorker({
    connection,
    config,
    metrics: opts.metrics,
    audit: opts.audit,
    slack,
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : {}),
  });
  const done = worker.run().finally(() => connection.close());
  return {
    worker,
    done,
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}
