import { ConfigError, loadConfig, temporalAddress } from '../config/env.js';
import { onShutdown } from './process.js';
import { configSecrets, createAuditLog } from '../observability/audit.js';
import { createMetrics } from '../observability/metrics.js';
import { startMetricsServer } from '../observability/metrics-server.js';
import { startTracing } from '../observability/tracing.js';
import { RedisChangeFeed } from '../gateway/events-redis.js';
import { startWorker } from '../worker/run.js';

const log = (msg: string) => console.error(`[worker] ${msg}`);

/** `npm run start:worker`: the worker alone, against TEMPORAL_ADDRESS (scale-out: run as many as needed). */
async function main(): Promise<void> {
  const config = loadConfig();
  const tracing = startTracing(config, 'approval-guard-worker');
  const audit = createAuditLog({ file: config.AUDIT_FILE, secrets: configSecrets(config) });
  const metrics = createMetrics();
  // Workflow-side counters (decisions, expiries, escalations, latency) are recorded here, not in the API.
  const metricsServer =
    config.WORKER_METRICS_PORT === undefined
      ? null
      : await startMetricsServer({ registry: metrics.registry, port: config.WORKER_METRICS_PORT, host: config.HOST });
  if (metricsServer) log(`metrics on ${metricsServer.url}/metrics`);
  // With REDIS_URL, each new state version is announced to the API replicas (they wake their waiters on it).
  const changes = config.REDIS_URL
    ? new RedisChangeFeed({
        url: config.REDIS_URL,
        namespace: config.TEMPORAL_NAMESPACE,
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        publisher: true,
        log,
      })
    : null;
  const worker = await startWorker({
    config,
    metrics,
    audit,
    log,
    tracing,
    ...(changes ? { onStateChange: (c) => changes.publish(c) } : {}),
  });
  log(`polling task queue ${config.TEMPORAL_TASK_QUEUE} on ${temporalAddress(config)}`);
  onShutdown(async () => {
    await worker.shutdown();
    await changes?.close();
    await metricsServer?.close();
    await tracing?.shutdown();
    await audit.close();
  }, log);
  await worker.done;
}

main().catch((err: unknown) => {
  log(err instanceof ConfigError ? err.message : `worker failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
