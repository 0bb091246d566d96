/**
 * `npm run cluster [-- --port N] [--namespace NS]`: a real Temporal cluster (PostgreSQL persistence and SQL
 * visibility) on this machine, for scale-out work and tests; see scripts/cluster-lib.ts. Prints the address and
 * runs until Ctrl-C (SIGINT) or SIGTERM, then stops everything and removes its data.
 */
import { parseArgs } from 'node:util';
import { startCluster, VERSIONS } from './cluster-lib.js';

const log = (msg: string) => console.error(`[cluster] ${msg}`);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { port: { type: 'string' }, namespace: { type: 'string' }, 'retention-sec': { type: 'string' } },
  });
  const cluster = await startCluster({
    ...(values.port ? { port: Number(values.port) } : {}),
    ...(values.namespace ? { namespace: values.namespace } : {}),
    ...(values['retention-sec'] ? { retentionSec: Number(values['retention-sec']) } : {}),
    log,
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    cluster.stop().then(
      () => {
        log('stopped; nothing left running');
        process.exit(0);
      },
      (err: unknown) => {
        log(`stop failed: ${String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  const built = cluster.build.builtSec === null ? 'cached build' : `built in ${cluster.build.builtSec} s`;
  log(
    `Temporal ${VERSIONS.server} (${built}), PostgreSQL ${cluster.postgres.version} on port ${cluster.postgres.port}`,
  );
  log(`HTTP API at http://${cluster.httpAddress}/api/v1/system-info`);
  log(`server pid ${cluster.serverPid}, metrics at ${cluster.metricsUrl}`);
  log(`namespace ${cluster.namespace}; try: TEMPORAL_ADDRESS=${cluster.address} npm run start:worker`);
  log('Ctrl-C stops it all');
  // The one line on stdout: scripts and tests read the address from it.
  console.log(`TEMPORAL_ADDRESS=${cluster.address}`);
}

main().catch((err: unknown) => {
  log(`failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
