/**
 * The floor: what Temporal itself costs for the same shape of work, on the same server in the same run, without the
 * API. A start (≈ create), one Signal (≈ a Slack click, answered once Temporal has it), one Update (the same answered
 * with the workflow's outcome), and the full loop start → Update → result (≈ an approval).
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { decideUpdate, noteSignal, type floorWorkflow } from './floor-workflow.js';
import { perSecond, runPool, summarize, type PoolResult, type Summary } from './stats.js';

export interface FloorPhase {
  latency: Summary | null;
  perSec: number;
  pool: PoolResult;
}

export class Floor {
  private constructor(
    private readonly connection: Connection,
    private readonly client: Client,
    private readonly taskQueue: string,
  ) {}

  static async connect(address: string, taskQueue: string): Promise<Floor> {
    const connection = await Connection.connect({ address });
    return new Floor(connection, new Client({ connection, namespace: 'default' }), taskQueue);
  }

  private start(id: string) {
    return this.client.workflow.start<typeof floorWorkflow>('floorWorkflow', {
      taskQueue: this.taskQueue,
      workflowId: id,
    });
  }

  /** `count` starts at `concurrency`; returns the ids, each waiting for its Update. */
  async starts(count: number, concurrency: number, deadlineMs: number): Promise<FloorPhase & { ids: string[] }> {
    const ids: string[] = [];
    const ms: number[] = [];
    const pool = await runPool(count, concurrency, deadlineMs, async () => {
      const id = `floor-${randomUUID()}`;
      const t0 = performance.now();
      await this.start(id);
      ms.push(performance.now() - t0);
      ids.push(id);
    });
    return { ids, latency: summarize(ms), perSec: perSecond(pool.done, pool.wallMs), pool };
  }

  /** One Signal to each of `ids` (recorded, the workflow goes on waiting). */
  async signals(ids: string[], concurrency: number, deadlineMs: number): Promise<FloorPhase> {
    const ms: number[] = [];
    const pool = await runPool(ids.length, concurrency, deadlineMs, async (i) => {
      const handle = this.client.workflow.getHandle(ids[i]!);
      const t0 = performance.now();
      await handle.signal(noteSignal, 'seen');
      ms.push(performance.now() - t0);
    });
    return { latency: summarize(ms), perSec: perSecond(pool.done, pool.wallMs), pool };
  }

  /** One Update to each of `ids`, which completes its workflow. */
  async updates(ids: string[], concurrency: number, deadlineMs: number): Promise<FloorPhase> {
    const ms: number[] = [];
    const pool = await runPool(ids.length, concurrency, deadlineMs, async (i) => {
      const handle = this.client.workflow.getHandle(ids[i]!);
      const t0 = performance.now();
      await handle.executeUpdate(decideUpdate, { args: ['approve'] });
      ms.push(performance.now() - t0);
    });
    return { latency: summarize(ms), perSec: perSecond(pool.done, pool.wallMs), pool };
  }

  /** The whole loop per iteration: start, Update, result. */
  async loops(count: number, concurrency: number, deadlineMs: number): Promise<FloorPhase> {
    const ms: number[] = [];
    const pool = await runPool(count, concurrency, deadlineMs, async () => {
      const t0 = performance.now();
      const handle = await this.start(`floor-${randomUUID()}`);
      await handle.executeUpdate(decideUpdate, { args: ['approve'] });
      await handle.result();
      ms.push(performance.now() - t0);
    });
    return { latency: summarize(ms), perSec: perSecond(pool.done, pool.wallMs), pool };
  }

  /** One loop (start → Update → result) with the time of each step, for open-loop arrivals. */
  async timedLoop(id: string): Promise<{ startMs: number; updateMs: number; loopMs: number }> {
    const t0 = performance.now();
    const handle = await this.start(id);
    const t1 = performance.now();
    await handle.executeUpdate(decideUpdate, { args: ['approve'] });
    const t2 = performance.now();
    await handle.result();
    return { startMs: t1 - t0, updateMs: t2 - t1, loopMs: performance.now() - t0 };
  }

  /** One bare Signal to a started floor workflow; its latency. */
  async timedSignal(id: string): Promise<number> {
    const t0 = performance.now();
    await this.client.workflow.getHandle(id).signal(noteSignal, 'seen');
    return performance.now() - t0;
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
