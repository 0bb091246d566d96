import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import type { ApprovalInput, RequestView } from '../../workflows/messages.js';
import { approveUpdate, stateQuery } from '../../workflows/messages.js';
import { workflowsPath } from '../../worker/worker.js';
import { makePlan, makeRequest } from '../fixtures/plans.js';
import { createTimeSkippingEnv } from './helpers.js';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  env = await createTimeSkippingEnv();
  bundle = await bundleWorkflowCode({ workflowsPath });
}, 120_000);

afterAll(async () => {
  await env?.teardown();
});

/** Times come from the test server's clock, which earlier tests have skipped ahead. */
async function input(overrides: Partial<ApprovalInput> = {}): Promise<ApprovalInput> {
  const now = await env.currentTimeMs();
  return {
    requestId: `req_${randomUUID()}`,
    request: makeRequest(),
    plan: makePlan(),
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 3600_000).toISOString(),
    lineageId: null,
    agent: null,
    ...overrides,
  };
}

const activities = {
  postRequestMessage: async () => ({ channel: 'C1', ts: '1.1' }),
  updateRequestMessage: async () => undefined,
  postEscalationNotice: async () => undefined,
  archiveRequest: async () => ({ file: 'x' }),
};

test('a request with a 1 hour expiry expires in well under a second of wall time', async () => {
  const taskQueue = `tq-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities,
  });
  const started = Date.now();
  const result = await worker.runUntil(async () => {
    const i = await input();
    return env.client.workflow.execute('approvalWorkflow', { taskQueue, workflowId: i.requestId, args: [i] });
  });
  expect((result as RequestView).status).toBe('expired');
  expect(Date.now() - started).toBeLessThan(5000);
});

test('approve via update', async () => {
  const taskQueue = `tq-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities,
  });
  await worker.runUntil(async () => {
    const i = await input();
    const handle = await env.client.workflow.start('approvalWorkflow', {
      taskQueue,
      workflowId: i.requestId,
      args: [i],
    });
    const v = await handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] });
    expect(v.status).toBe('approved');
    const final = (await handle.result()) as RequestView;
    expect(final.decidedBy).toBe('U_ALICE');
    const q = await handle.query(stateQuery);
    expect(q.status).toBe('approved');
  });
});
