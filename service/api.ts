import { ConfigError, loadConfig, temporalAddress } from '../config/env.js';
import { onReloadSignal, onShutdown } from './process.js';
import { configSecrets, createAuditLog } from '../observability/audit.js';
import { createMetrics } from '../observability/metrics.js';
import { startTracing } from '../observability/tracing.js';
import { startApiServer } from './api-server.js';

const log = (msg: string) => console.error(`[api] ${msg}`);

/** `npm run start:api`: the API alone, against TEMPORAL_ADDRESS (scale-out: run as many as needed). */
async function main(): Promise<void> {
  const config = loadConfig();
  const tracing = startTracing(config, 'approval-guard-api');
  const audit = createAuditLog({ file: config.AUDIT_FILE, secrets: configSecrets(config) });
  const api = await startApiServer({
    config,
    metrics: createMetrics(),
    audit,
    logger: { level: config.LOG_LEVEL },
    tracing,
  });
  log(`listening on ${api.url}, Temporal ${temporalAddress(config)}`);
  onReloadSignal(() => api.policy.reload('sighup'), log);
  onShutdown(async () => {
    await api.close();
    await tracing?.shutdown();
    await audit.close();
  }, log);
}

main().catch((err: unknown) => {
  log(err instanceof ConfigError ? err.message : `start-up failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
