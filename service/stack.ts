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
  // Told when the embedded server dies: open waiters are answered 503 at once, not at the next health check.
  let onOutage = (_reason: string): void => {};
  const { devServer, address } = await startTemporal(config, (reason) => onOutage(reason));
  // The worker sets the namespace retention and ensures the purge schedule as it starts.
  const resolved: Config = { ...config, TEMPORAL_ADDRESS: address };

  const metrics = createMetrics();
  const audit = createAuditLog({ file: config.AUDIT_FILE, secrets: configSecrets(config) });
  const changes = changeFeed(config);
  const onStateChange = (c: { requestId: string; version: number }) => changes.publish(c);
  const worker = await startWorker({ config: resolved, metrics, audit, tracing, onStateChange });
  const api = await startApiServer({ config: resolved, metrics, audit, tracing, changes });
  onOutage = (reason) => api.gateway.reportOutage(reason);

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

/**
 * The Temporal server to use: TEMPORAL_ADDRESS as given, else the embedded dev server, supervised: restarted on the
 * same port and database file whenever it dies (the worker and the API reconnect by themselves).
 */
async function startTemporal(
  config: Config,
  onOutage: (reason: string) => void,
): Promise<{ devServer: DevServer | null; address: string }> {
  if (config.TEMPORAL_ADDRESS) {
    await registerSearchAttributes(config.TEMPORAL_ADDRESS, config.TEMPORAL_NAMESPACE, GUARD_SEARCH_ATTRIBUTES);
    return { devServer: null, address: config.TEMPORAL_ADDRESS };
  }
  const devServer = await startDevServer({
    dbFile: config.TEMPORAL_DEV_DB,
    port: config.TEMPORAL_DEV_PORT,
    uiPort: config.TEMPORAL_UI_PORT,
    namespace: config.TEMPORAL_NAMESPACE,
    searchAttributes: GUARD_SEARCH_ATTRIBUTES,
    killStale: true,
    supervise: { log, onDown: onOutage },
  });
  return { devServer, address: devServer.address };
}

/** The worker tells the API of every new state version: in memory, or through Redis when replicas share it. */
function changeFeed(config: Config): ChangeFeed {
  if (!config.REDIS_URL) return new LocalChangeFeed();
  return new RedisChangeFeed({
    url: config.REDIS_URL,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    publisher: true,
    log,
  });
}

/** A bad configuration prints only its message; anything else its stack. */
export function failStartup(err: unknown): never {
  log(err instanceof ConfigError ? err.message : `start-up failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
}
