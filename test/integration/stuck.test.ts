/**
 * Issue 15 item 1: a workflow task that keeps failing surfaces instead of retrying silently. A request whose worker
 * throws on every activation (a bad deploy, here a worker on the request's task queue with broken workflow code) is
 * answered at once with `stuck` by `status` and `wait` (it used to hold 30 s for a query no worker answers), counted
 * once in `requests_stuck_total` and audited once as `request_stuck`; once the good worker is back the request
 * resumes where it was and is decided.
 */
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { eventually } from '../helpers/eventually.js';
import { startWorker } from '../../worker/run.js';
import { createMetrics } from '../../observability/metrics.js';
import { startHarness, workflowBundle, type Harness } from './harness.js';
import { waitForMessage } from './slack-support.js';

const brokenPath = fileURLToPath(new URL('../fixtures/workflows/broken.ts', import.meta.url));
const noop = () => {};
const quiet = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop };

let h: Harness;
let broken: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  [h, broken] = await Promise.all([startHarness(), bundleWorkflowCode({ workflowsPath: brokenPath, logger: quiet })]);
}, 60_000);

afterAll(async () => {
  await h?.close();
});

/** A worker with the broken code on the harness's task queue, until `stop` is called. */
async function brokenWorker(): Promise<{ stop(): Promise<void> }> {
  const connection = await NativeConnection.connect({ address: h.config.TEMPORAL_ADDRESS! });
  const worker = await Worker.create({
    connection,
    namespace: h.config.TEMPORAL_NAMESPACE,
    taskQueue: h.config.TEMPORAL_TASK_QUEUE,
    workflowBundle: broken,
    // No cache: every task replays the (failing) code, as a freshly deployed worker does.
    maxCachedWorkflows: 0,
  });
  const running = worker.run();
  return {
    async stop() {
      worker.shutdown();
      await running;
      await connection.close();
    },
  };
}

const stuckLines = (requestId: string) =>
  h.audit.lines().filter((l) => l.event === 'request_stuck' && l.requestId === requestId);

test('a request whose workflow task keeps failing is answered at once as stuck, counted and audited once, and resumes once fixed', async () => {
  const created = await h.create('simple');
  await waitForMessage(h, created.requestId);
  // The bad deploy: the good worker goes, the broken one takes the queue; the next event (a click) runs on it.
  await h.worker.shutdown();
  const bad = await brokenWorker();
  let good: Awaited<ReturnType<typeof startWorker>> | null = null;
  try {
    const click = await h.click('approve', created.requestId, 'U_ALICE');
    expect(click.status).toBe(200);

    const stuck = await eventually(
      async () => {
        const started = Date.now();
        const res = await h.get(`/api/guard/status?requestId=${created.requestId}`);
        expect(Date.now() - started).toBeLessThan(3000);
        return res.status === 200 && res.body.stuck ? res.body : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'status to say stuck' },
    );
    expect(stuck).toMatchObject({ status: 'ready_for_approval', approvalsCount: 0 });
    expect(stuck.stuck.attempts).toBeGreaterThanOrEqual(2);
    expect(stuck.stuck.cause).toContain('broken deploy');
    // Since the first failure: the click's task, not a later attempt.
    expect(Date.parse(stuck.stuck.since)).toBeGreaterThanOrEqual(click.sent.sentAt - 1000);
    expect(Date.parse(stuck.stuck.since)).toBeLessThanOrEqual(click.sent.sentAt + 5000);

    // The agent's wait says so too, at once when asked for the state now, and within its bound otherwise.
    const now = await h.get(`/api/guard/wait?token=${encodeURIComponent(created.token)}&timeoutSec=0`);
    expect(now.body).toMatchObject({
      status: 'ready_for_approval',
      terminal: false,
      stuck: { cause: stuck.stuck.cause },
    });
    const held = Date.now();
    const bounded = await h.get(`/api/guard/wait?token=${encodeURIComponent(created.token)}&timeoutSec=1`);
    expect(Date.now() - held).toBeLessThan(4000);
    expect(bounded.body.stuck).toBeDefined();

    // Found on many reads, told once.
    expect(stuckLines(created.requestId)).toEqual([
      expect.objectContaining({ actor: 'system', action: 'simple', cause: stuck.stuck.cause }),
    ]);
    const counted = await h.metrics.registry.getSingleMetricAsString('requests_stuck_total');
    expect(counted).toMatch(/requests_stuck_total\{action="simple"\} 1\b/);

    // Fixed: the good worker back, the queued click applies and the request is approved.
    await bad.stop();
    good = await startWorker({
      config: h.config,
      metrics: createMetrics(),
      audit: { emit: noop, close: async () => {} },
      workflowBundle: await workflowBundle(),
      log: noop,
    });
    const done = await eventually(
      async () => {
        const res = await h.get(`/api/guard/status?requestId=${created.requestId}`);
        return res.body.status === 'approved' ? res.body : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the request to resume and be approved' },
    );
    expect(done.stuck).toBeUndefined();
    expect(done.approvers).toEqual(['U_ALICE']);
  } finally {
    await good?.shutdown();
    await bad.stop().catch(noop);
  }
}, 90_000);
