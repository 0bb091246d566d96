/**
 * Escalation (SPEC section 2) on the time-skipping server: hours of request life pass in milliseconds, and every
 * time is computed from the server's clock (`env.currentTimeMs()`), which earlier tests have moved on.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import type { Plan } from '../../domain/plan.js';
import { workflowsPath } from '../../worker/worker.js';
import { approveSignal, approveUpdate, stateQuery, type RequestView } from '../../workflows/messages.js';
import { makePlan } from '../fixtures/plans.js';
import { approvalInput, eventRecorder, eventually, mockActivities, SLACK_REF, withWorker } from './harness.js';
import { createTimeSkippingEnv } from './helpers.js';

const HOUR_MS = 3600_000;

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  env = await createTimeSkippingEnv();
  bundle = await bundleWorkflowCode({ workflowsPath });
}, 120_000);

afterAll(async () => {
  await env?.teardown();
});

/** A request living `hours`, escalating `beforeHours` before it expires. */
async function escalatingInput(hours: number, beforeHours: number, plan: Partial<Plan> = {}) {
  const timeoutSec = hours * 3600;
  const escalation = { escalateBeforeSec: beforeHours * 3600, channel: 'C_ESCALATIONS', minApprovals: null };
  const input = await approvalInput(env, { timeoutSec, plan: makePlan({ timeoutSec, escalation, ...plan }) });
  return { input, escalateAtMs: Date.parse(input.expiresAt) - beforeHours * HOUR_MS };
}

/** Moves the server's clock to `atMs` (it never moves backwards). */
async function sleepUntil(atMs: number): Promise<void> {
  const ms = atMs - (await env.currentTimeMs());
  if (ms > 0) await env.sleep(ms);
}

test('escalates once at expiresAt − escalateBeforeSec, hours into the request, then expires on time', async () => {
  const mocks = mockActivities();
  const recorder = eventRecorder();
  const { input, escalateAtMs } = await escalatingInput(8, 2);
  await withWorker({ env, bundle, mocks, sinks: recorder.sinks }, async (taskQueue) => {
    const handle = await env.client.workflow.start('approvalWorkflow', {
      taskQueue,
      workflowId: input.requestId,
      args: [input],
    });
    const read = () => handle.query(stateQuery);
    await eventually(read, () => mocks.calls.postRequestMessage.length === 1);

    await sleepUntil(escalateAtMs - 60_000);
    expect(await read()).toMatchObject({ escalated: false, escalatedAt: null });
    expect(mocks.calls.postEscalationNotice).toHaveLength(0);

    await sleepUntil(escalateAtMs + 1000);
    const escalated = await eventually(read, (v) => v.escalated);
    expect(Math.abs(Date.parse(escalated.escalatedAt ?? '') - escalateAtMs)).toBeLessThan(1000);
    expect(escalated).toMatchObject({ status: 'ready_for_approval', minApprovals: 1 });
    await eventually(read, () => mocks.calls.postEscalationNotice.length === 1);
    expect(mocks.calls.postEscalationNotice[0]).toMatchObject({
      ref: SLACK_REF,
      state: { escalated: true, requestId: input.requestId },
      plan: { escalation: { channel: 'C_ESCALATIONS' } },
    });

    const final = (await handle.result()) as RequestView;
    expect(final).toMatchObject({ status: 'expired', decidedBy: 'system', escalated: true });
    expect(Math.abs(Date.parse(final.decidedAt ?? '') - Date.parse(input.expiresAt))).toBeLessThan(1000);
  });
  expect(mocks.calls.postEscalationNotice).toHaveLength(1);
  expect(recorder.types()).toEqual(['request_created', 'request_escalated', 'request_expired']);
});

test('quorum raise: earlier approvals count toward the raised quorum, which then decides', async () => {
  const mocks = mockActivities();
  const recorder = eventRecorder();
  const { input, escalateAtMs } = await escalatingInput(4, 1, {
    minApprovals: 2,
    escalation: { escalateBeforeSec: 3600, channel: null, minApprovals: 3 },
  });
  await withWorker({ env, bundle, mocks, sinks: recorder.sinks }, async (taskQueue) => {
    const handle = await env.client.workflow.start('approvalWorkflow', {
      taskQueue,
      workflowId: input.requestId,
      args: [input],
    });
    const approve = (userId: string) => handle.executeUpdate(approveUpdate, { args: [{ userId }] });
    expect(await approve('U_ALICE')).toMatchObject({ status: 'ready_for_approval', minApprovals: 2 });

    await sleepUntil(escalateAtMs + 1000);
    await eventually(
      () => handle.query(stateQuery),
      (v) => v.escalated,
    );
    // Two approvals met the old quorum; after the raise they no longer decide.
    expect(await approve('U_BOB')).toMatchObject({ status: 'ready_for_approval', minApprovals: 3 });
    const decided = await approve('U_CAROL');
    expect(decided).toMatchObject({ status: 'approved', decidedBy: 'U_CAROL' });
    expect(decided.approvals.map((a) => a.userId)).toEqual(['U_ALICE', 'U_BOB', 'U_CAROL']);
    await handle.result();
  });
  expect(mocks.calls.postEscalationNotice).toHaveLength(1);
  expect(mocks.calls.postEscalationNotice[0]?.state.minApprovals).toBe(3);
  const events = recorder.batches.flatMap((b) => b.events);
  expect(events.filter((e) => e.type === 'request_escalated')).toEqual([
    { type: 'request_escalated', minApprovals: 3 },
  ]);
  expect(events.flatMap((e) => (e.type === 'approval_recorded' ? [`${e.approvals}/${e.minApprovals}`] : []))).toEqual([
    '1/2',
    '2/3',
    '3/3',
  ]);
});

describe('escalation racing approval', () => {
  test('approved a second before the escalation instant: the timer is dropped, nothing escalates', async () => {
    const mocks = mockActivities();
    const recorder = eventRecorder();
    const { input, escalateAtMs } = await escalatingInput(6, 3, {
      escalation: { escalateBeforeSec: 3 * 3600, channel: 'C_ESCALATIONS', minApprovals: 2 },
    });
    await withWorker({ env, bundle, mocks, sinks: recorder.sinks }, async (taskQueue) => {
      const handle = await env.client.workflow.start('approvalWorkflow', {
        taskQueue,
        workflowId: input.requestId,
        args: [input],
      });
      await sleepUntil(escalateAtMs - 1000);
      const decided = await handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] });
      expect(decided).toMatchObject({ status: 'approved', escalated: false, minApprovals: 1 });
      await handle.result();
      await sleepUntil(escalateAtMs + HOUR_MS);
      expect(await handle.query(stateQuery)).toMatchObject({ status: 'approved', escalated: false });
    });
    expect(mocks.calls.postEscalationNotice).toHaveLength(0);
    expect(recorder.types()).not.toContain('request_escalated');
  });

  test('approval and escalation timer in one workflow activation: the approval is applied first and decides', async () => {
    const mocks = mockActivities();
    const recorder = eventRecorder();
    // A raise to 2 at escalation would make the lone approval insufficient if the timer were applied first.
    const { input, escalateAtMs } = await escalatingInput(6, 3, {
      escalation: { escalateBeforeSec: 3 * 3600, channel: 'C_ESCALATIONS', minApprovals: 2 },
    });
    const taskQueue = `tq-${randomUUID()}`;
    const worker = () =>
      Worker.create({
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle: bundle,
        activities: mocks.activities,
        sinks: recorder.sinks,
        // No cache and so no sticky queue: the second worker must pick up the next task at once.
        maxCachedWorkflows: 0,
      });
    const handle = await (
      await worker()
    ).runUntil(async () => {
      const started = await env.client.workflow.start('approvalWorkflow', {
        taskQueue,
        workflowId: input.requestId,
        args: [input],
      });
      await eventually(
        () => started.query(stateQuery),
        () => mocks.calls.postRequestMessage.length === 1,
      );
      return started;
    });
    // No worker polls now: the timer fires and the signal arrives, and one activation delivers both.
    await sleepUntil(escalateAtMs + 1000);
    await handle.signal(approveSignal, { userId: 'U_ALICE' });
    const final = (await (await worker()).runUntil(handle.result())) as RequestView;

    expect(final).toMatchObject({ status: 'approved', decidedBy: 'U_ALICE', escalated: false, minApprovals: 1 });
    expect(mocks.calls.postEscalationNotice).toHaveLength(0);
    expect(recorder.types()).toEqual(['request_created', 'approval_recorded', 'request_approved']);
  });
});
