/**
 * Escalation (SPEC section 2) on the time-skipping server: hours of request life pass in milliseconds, and every
 * time is computed from the server's clock (`env.currentTimeMs()`), which earlier tests have moved on.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import type { Plan } from '../../domain/plan.js';
import type { SignalDefinition } from '@temporalio/common';
import {
  approveSignal,
  approveUpdate,
  cancelSignal,
  denySignal,
  stateQuery,
  type RequestView,
} from '../../workflows/messages.js';
import { makePlan } from '../fixtures/plans.js';
import {
  approvalInput,
  eventRecorder,
  eventually,
  mockActivities,
  SLACK_REF,
  useSuite,
  withWorker,
} from './harness.js';

const HOUR_MS = 3600_000;

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleOption;
// The SDK's logs at ERROR like the other workflow suites (its worker INFO lines were the bulk of the run's output).
useSuite((s) => ({ env, bundle } = s));

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

test('quorum raise at hours: earlier approvals count toward the raised quorum, which then decides', async () => {
  const mocks = mockActivities();
  const recorder = eventRecorder();
  const { input, escalateAtMs } = await escalatingInput(30, 6, {
    minApprovals: 2,
    escalation: { escalateBeforeSec: 6 * 3600, channel: null, minApprovals: 3 },
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
    const escalated = await eventually(
      () => handle.query(stateQuery),
      (v) => v.escalated,
    );
    expect(Math.abs(Date.parse(escalated.escalatedAt ?? '') - escalateAtMs)).toBeLessThan(1000);
    // Two approvals met the old quorum; after the raise they no longer decide.
    expect(await approve('U_BOB')).toMatchObject({ status: 'ready_for_approval', minApprovals: 3 });
    const decided = await approve('U_CAROL');
    expect(decided).toMatchObject({ status: 'approved', decidedBy: 'U_CAROL' });
    expect(decided.approvals.map((a) => a.userId)).toEqual(['U_ALICE', 'U_BOB', 'U_CAROL']);
    await handle.result();
  });
  // The notice carries the raised quorum and goes to the request's thread only (no escalation channel).
  expect(mocks.calls.postEscalationNotice).toEqual([
    expect.objectContaining({ ref: SLACK_REF, state: expect.objectContaining({ minApprovals: 3, escalated: true }) }),
  ]);
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

/**
 * The worker is away while the escalation timer fires and a decision arrives as a Signal: the next workflow task
 * delivers both in one activation. Signals are applied before timers, so the decision stands and escalation, which
 * only ever acts on an open request, does nothing: no notice, no quorum raise, no event.
 */
describe('escalation racing a decision in one workflow activation', () => {
  test.each([
    ['approve', approveSignal, { userId: 'U_ALICE' }, { status: 'approved', decidedBy: 'U_ALICE' }],
    ['deny', denySignal, { userId: 'U_BOB', reason: 'no' }, { status: 'denied', decidedBy: 'U_BOB' }],
    ['cancel', cancelSignal, { actor: 'U_REQ' }, { status: 'cancelled', decidedBy: 'U_REQ' }],
  ] as const)('%s wins', async (_name, signal, args, outcome) => {
    const mocks = mockActivities();
    const recorder = eventRecorder();
    // With the raise to 2, a lone approval would not decide had the timer been applied first.
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
      // The Slack ref in the state means the workflow has taken the activity's result: nothing is in flight.
      await eventually(
        () => started.query(stateQuery),
        (v) => v.slack !== null,
      );
      return started;
    });
    await sleepUntil(escalateAtMs + 1000);
    await handle.signal(signal as SignalDefinition<[typeof args]>, args);
    const final = (await (await worker()).runUntil(handle.result())) as RequestView;

    expect(final).toMatchObject({ ...outcome, escalated: false, escalatedAt: null, minApprovals: 1 });
    expect(Date.parse(final.decidedAt ?? '')).toBeGreaterThanOrEqual(escalateAtMs);
    expect(mocks.calls.postEscalationNotice).toHaveLength(0);
    expect(recorder.types()).not.toContain('request_escalated');
    expect(recorder.types()).toContain(`request_${outcome.status}`);
  });
});
