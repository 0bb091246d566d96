import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
import { workflowsPath } from '../../worker/worker.js';
import { approveSignal, approveUpdate, stateQuery } from '../../workflows/messages.js';
import { approvalInput, mockActivities, eventRecorder } from './harness.js';
import { createTimeSkippingEnv } from './helpers.js';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;
beforeAll(async () => {
  env = await createTimeSkippingEnv();
  bundle = await bundleWorkflowCode({ workflowsPath });
}, 120_000);
afterAll(async () => env?.teardown());

test.each(['signal', 'update'])('same activation %s', async (kind) => {
  const taskQueue = `tq-${randomUUID()}`;
  const mocks = mockActivities();
  const rec = eventRecorder();
  const mk = () =>
    Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: bundle,
      activities: mocks.activities,
      sinks: rec.sinks,
      maxCachedWorkflows: 0,
    });
  const i = await approvalInput(env);
  const w1 = await mk();
  const handle = await w1.runUntil(async () => {
    const h = await env.client.workflow.start('approvalWorkflow', { taskQueue, workflowId: i.requestId, args: [i] });
    await h.query(stateQuery);
    await new Promise((r) => setTimeout(r, 300));
    return h;
  });
  const now = await env.currentTimeMs();
  await env.sleep(Date.parse(i.expiresAt) - now);
  console.log('slept', new Date(await env.currentTimeMs()).toISOString(), i.expiresAt);
  let up: Promise<unknown> | undefined;
  if (kind === 'signal') await handle.signal(approveSignal, { userId: 'U_ALICE' });
  else up = handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] }).catch((e) => e);
  await new Promise((r) => setTimeout(r, 300));
  const w2 = await mk();
  const res = await w2.runUntil(async () => {
    return Promise.race([handle.result().catch((e) => e), new Promise((r) => setTimeout(() => r('TIMEOUT'), 8000))]);
  });
  require('fs').appendFileSync('/tmp/exp.log', JSON.stringify([kind, JSON.stringify(res).slice(0, 300), up && String(await up), rec.types()])+'\n');
  const hist = await handle.fetchHistory();
  require('fs').appendFileSync('/tmp/exp.log', JSON.stringify(hist.events?.map((e) => [e.eventType, e.eventTime?.seconds?.toString(), e.eventTime?.nanos, e.activityTaskScheduledEventAttributes?.activityType?.name, e.workflowTaskFailedEventAttributes?.failure?.message]))+'\n');
});
