import { ConfigError, loadConfig } from '../config/env.js';
import { onShutdown } from '../dev/lifecycle.js';
import { createAuditLog } from '../observability/audit.js';
import { createMetrics } from '../observability/metrics.js';
import { startWorker } from './run.js';

const log = (msg: string) => console.error(`[worker] ${msg}`);

/** `npm run start:worker`: the worker alone, against TEMPORAL_ADDRESS (scale-out: run as many as needed). */
async function main(): Promise<void> {
  const config = loadConfig();
  const audit = createAuditLog({ file: config.AUDIT_FILE });
  const worker = await startWorker({ config, metrics: createMetrics(), audit, log });
  log(
    `polling task queue ${config.TEMPORAL_TASK_QUEUE} on ${config.TEMPORAL_ADDRESS ?? `127.0.0.1:${config.TEMPORAL_DEV_PORT}`}`,
  );
  onShutdown(async () => {
    await worker.shutdown();
    await audit.close();
  }, log);
  await worker.done;
}

main().catch((err: unknown) => {
  log(err instanceof ConfigError ? err.message : `worker failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
