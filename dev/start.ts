import { Connection } from '@temporalio/client';
import { startApiServer } from '../api/server.js';
import { ConfigError, loadConfig, type Config } from '../config/env.js';
import { createAuditLog } from '../observability/audit.js';
import { createMetrics } from '../observability/metrics.js';
import {
  registerSearchAttributes,
  setNamespaceRetention,
  startDevServer,
  type DevServer,
} from '../temporal/dev-server.js';
import { GUARD_SEARCH_ATTRIBUTES } from '../temporal/search-attributes.js';
import { startWorker } from '../worker/run.js';
import { onReloadSignal, onShutdown } from './lifecycle.js';

const log = (msg: string) => console.error(`[guard] ${msg}`);

/** `npm start`: the embedded Temporal dev server (unless TEMPORAL_ADDRESS is set), the worker and the API. */
async function main(): Promise<void> {
  const config = loadConfig();
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
  const resolved: Config = { ...config, TEMPORAL_ADDRESS: address };
  await applyRetention(resolved);

  const metrics = createMetrics();
  const audit = createAuditLog({ file: config.AUDIT_FILE });
  const worker = await startWorker({ config: resolved, metrics, audit });
  const api = await startApiServer({ config: resolved, metrics, audit });

  log(`API          ${api.url}`);
  log(`Temporal     ${address} (namespace ${config.TEMPORAL_NAMESPACE}, task queue ${config.TEMPORAL_TASK_QUEUE})`);
  if (devServer?.uiUrl) log(`Temporal UI  ${devServer.uiUrl}`);
  log(`Metrics      ${api.url}/metrics`);
  log(`Policy       ${config.POLICY_PATH} (${api.policy.loaded?.hash.slice(0, 12)})`);

  onReloadSignal(() => api.policy.reload('sighup'), log);
  onShutdown(async () => {
    await api.close();
    await worker.shutdown();
    await audit.close();
    await devServer?.stop();
  }, log);
  void worker.done.catch((err: unknown) => {
    log(`worker stopped: ${String(err)}`);
    process.kill(process.pid, 'SIGTERM');
  });
}

/** Namespace retention follows RETENTION_MAX_AGE_SEC; Temporal refuses less than an hour, so it is clamped. */
async function applyRetention(config: Config): Promise<void> {
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  try {
    const applied = await setNamespaceRetention(connection, config.TEMPORAL_NAMESPACE, config.RETENTION_MAX_AGE_SEC);
    if (applied !== config.RETENTION_MAX_AGE_SEC) {
      log(
        `warning: RETENTION_MAX_AGE_SEC=${config.RETENTION_MAX_AGE_SEC} is under Temporal's 1 h floor; namespace retention set to ${applied}s (the purge sweeper still uses the shorter window)`,
      );
    }
  } finally {
    await connection.close();
  }
}

main().catch((err: unknown) => {
  log(err instanceof ConfigError ? err.message : `start-up failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
