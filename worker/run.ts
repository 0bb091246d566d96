import { DefaultLogger, NativeConnection, Runtime, type LogLevel, type Worker } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import { temporalAddress, type Config } from '../config/env.js';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';
import { TracedWebClient, type Tracing } from '../observability/tracing.js';
import { prepareRetention } from '../temporal/schedules.js';
import { createGuardWorker, type WorkerDeps } from './worker.js';
import { prebuiltBundle } from './workflow-bundles.js';

export interface RunningWorker {
  worker: Worker;
  /** Settles when the worker stops (after shutdown() or a fatal error). */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

let runtimeInstalled = false;
/**
 * One Runtime per process, installed before anything creates the default one: the SDK logs every worker state
 * change at INFO (keep only what an operator needs), and its own metrics go to Prometheus when asked.
 */
function installRuntime(level: LogLevel, metricsAddress: string | null, log: (msg: string) => void): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({
      logger: new DefaultLogger(level),
      // The SDK core (Rust) logs at the same level: its retries while Temporal is away are WARN.
      telemetryOptions: {
        logging: { forward: {}, filter: { core: level, other: 'ERROR' } },
        ...(metricsAddress ? { metrics: { prometheus: { bindAddress: metricsAddress } } } : {}),
      },
    });
  } catch {
    // Already created (a test environment made one first): its logger and metrics stay.
    if (metricsAddress) log(`Temporal SDK metrics not served on ${metricsAddress}: the SDK runtime already exists`);
  }
}

/** The SDK's log level for the service's LOG_LEVEL (the SDK logs every worker state change at INFO). */
function runtimeLevel(level: Config['LOG_LEVEL']): LogLevel {
  if (level === 'debug' || level === 'trace') return 'DEBUG';
  if (level === 'error' || level === 'fatal' || level === 'silent') return 'ERROR';
  return 'WARN';
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
  tracing?: Tracing | null;
  /** Publishes each new state version on the change feed (see WorkerDeps). */
  onStateChange?: WorkerDeps['onStateChange'];
}): Promise<RunningWorker> {
  const { config } = opts;
  const log = opts.log ?? ((m: string) => console.error(`[worker] ${m}`));
  installRuntime(
    runtimeLevel(config.LOG_LEVEL),
    config.TEMPORAL_METRICS_PORT ? `${config.HOST}:${config.TEMPORAL_METRICS_PORT}` : null,
    log,
  );
  // Before connecting: a stale bundle is a deployment error to report at once, not after Temporal answers.
  const workflowBundle = opts.workflowBundle ?? prebuilt(config.WORKFLOW_BUNDLE_DIR, !!opts.tracing, log);
  const address = temporalAddress(config);
  const connection = await connectWithRetry(address, log);
  const clientConnection = await Connection.connect({ address });
  const client = new Client({ connection: clientConnection, namespace: config.TEMPORAL_NAMESPACE });
  // Every worker (not only `npm start`) keeps the namespace retention and the purge schedule right.
  await prepareRetention(clientConnection, config, log);
  // Temporal owns retries (with backoff and Retry-After): the Slack client itself must not retry.
  const slack = config.SLACK_BOT_TOKEN
    ? new TracedWebClient(config.SLACK_BOT_TOKEN, {
        ...(config.SLACK_API_URL ? { slackApiUrl: config.SLACK_API_URL } : {}),
        retryConfig: { retries: 0 },
        rejectRateLimitedCalls: true,
      })
    : null;
  if (!slack) log('SLACK_BOT_TOKEN is not set: Slack messages are skipped; decisions still work via the API');
  const worker = await createGuardWorker({
    connection,
    client,
    config,
    metrics: opts.metrics,
    audit: opts.audit,
    slack,
    tracing: opts.tracing ?? null,
    onStateChange: opts.onStateChange,
    ...(workflowBundle ? { workflowBundle } : {}),
  });
  const done = worker.run().finally(() => Promise.all([connection.close(), clientConnection.close()]));
  return {
    worker,
    done,
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}

/** The bundle of `npm run build:workflows` when WORKFLOW_BUNDLE_DIR names one (a stale one stops the start). */
function prebuilt(dir: string | undefined, traced: boolean, log: (msg: string) => void) {
  if (!dir) return undefined;
  const { bundle, builtAt } = prebuiltBundle(dir, { traced });
  log(`workflow code from ${bundle.codePath} (built ${builtAt}, sources unchanged)`);
  return bundle;
}
