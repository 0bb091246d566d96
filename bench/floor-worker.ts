/**
 * The floor's worker, a process of its own so its CPU and memory are measured like the service's: SDK defaults, the
 * bare workflow only. `FLOOR_TEMPORAL_ADDRESS` and `FLOOR_TASK_QUEUE` say where to poll; SIGTERM stops it.
 */
import { fileURLToPath } from 'node:url';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';

const address = process.env.FLOOR_TEMPORAL_ADDRESS;
const taskQueue = process.env.FLOOR_TASK_QUEUE;

async function main(): Promise<void> {
  if (!address || !taskQueue) throw new Error('FLOOR_TEMPORAL_ADDRESS and FLOOR_TASK_QUEUE are required');
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection,
    taskQueue,
    workflowsPath: fileURLToPath(new URL('./floor-workflow.ts', import.meta.url)),
  });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => worker.shutdown());
  console.error(`[floor] polling ${taskQueue}`);
  await worker.run();
  await connection.close();
}

main().catch((err: unknown) => {
  console.error(`[floor] failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
