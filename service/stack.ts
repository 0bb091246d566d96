import { startApiServer } from './api-server.js';
import { ConfigError, loadConfig, type Config } from '../config/env.js';
import { LocalChangeFeed, type ChangeFeed } from '../gateway/events.js';
import { RedisChangeFeed } from '../gateway/events-redis.js';
import { configSecrets, createAuditLog } from '../observability/audit.js';
import { createMetrics } from '../observability/metrics.js';
import { startTracing } from '../observability/tracing.js';
import { startDevServer, type DevServer } from '../temporal/dev-server.js';
import { registerSearchAttributes } from '../temporal/namespace.js';
import { GUARD_SEARCH_ATTRIBUTES } from '../temporal/search-attributes.js';
import { startWorker } from '../worker/run.js';
import { onReloadSignal, onShutdown } from './process.js';

const log = (msg: string) => console.error(`[guard] ${msg}`);

export interface RunningStack {
  config: Config;
  apiUrl: string;
}

/**
 * The whole service in this process: the embedded Temporal dev server (unless TEMPORAL_ADDRESS is set), the worker
 * and the API, stopped together on SIGINT/SIGTERM. `configOverrides` win over the environment (`npm run dev:slack`
 * points Slack at its fake this way); `onStop` runs after everything else has stopped.
 */
export async function startAll(
  configOverrides: Record<string, string> = {},
  onStop: () => Promise<void> = async () => {},
): Promise<RunningStack> {
  const config = loadConfig({ ...process.env, ...configOverrides });
  const tracing = startTracing(config, 'approval-guard');
  let devServer: DevServer | null = null;
  let address = config.TEMPORAL_ADDRESS;
  if (address) {
    await registerSearchAttributes(address, config.TEMPORAL_NAMESPACE, GUARD_SEARCH_ATTRIBUTES);
  } else {
    devServer = await startDevServer({
      dbFile: config.TEMPORAL_DEV_DB,
      port: config.TEMPORAL_DEV_PORT,
      uiPort: config.TEMPORAL_UI_PORT,
      namespace: config.TEMPORAL_NAMESPACE,
      searchAttributes: GUARD_SEARCH_ATTRIBUTES,
      killStale: true,
    });
    address = devServer.address;
  }
  // The worker sets the namespace retention and ensures the purge schedule as it starts.
  const resolved: Config = { ...config, TEMPORAL_ADDRESS: address };

  const metrics = createMetrics();
  const audit = createAuditLog({ file: config.AUDIT_FILE, secrets: configSecrets(config) });
  // The worker tells the API of every new state version: in memory, or through Redis when replicas share it.
  const changes: ChangeFeed = config.REDIS_URL
    ? new RedisChangeFeed({
        url: config.REDIS_URL,
        namespace: config.TEMPORAL_NAMESPACE,
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        publisher: true,
        log,
      })
    : new LocalChangeFeed();
  const onStateChange = (c: { requestId: string; version: number }) => changes.publish(c);
  const worker = await startWorker({ config: resolved, metrics, audit, tracing, onStateChange });
  const api = await startApiServer({ config: resolved, metrics, audit, tracing, changes });

  log(`API          ${api.url}`);
  log(`Temporal     ${address} (namespace ${config.TEMPORAL_NAMESPACE}, task queue ${config.TEMPORAL_TASK_QUEUE})`);
  if (devServer?.uiUrl) log(`Temporal UI  ${devServer.uiUrl}`);
  log(`Metrics      ${api.url}/metrics`);
  log(`Policy       ${config.POLICY_PATH} (${api.policy.loaded?.hash.slice(0, 12)})`);

  onReloadSignal(() => api.policy.reload('sighup'), log);
  onShutdown(async () => {
    await api.close();
    await worker.shutdown();
    await changes.close();
    await tracing?.shutdown();
    await audit.close();
    await devServer?.stop();
    await onStop();
  }, log);
  void worker.done.catch((err: unknown) => {
    log(`worker stopped: ${String(err)}`);
    process.kill(process.pid, 'SIGTERM');
  });
  return { config: resolved, apiUrl: api.url };
}

/** A bad configuration prints only its message; anything else its stack. */
export function failStartup(err: unknown): never {
  log(err instanceof ConfigError ? err.message : `start-up failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
}
