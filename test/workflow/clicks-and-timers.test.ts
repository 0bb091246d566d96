/**
 * Slack clicks arrive as Signals carrying a click id, and the workflow keeps each one's verdict for the sender to
 * ask; both timers start with the request; the archive goes out beside the final Slack update.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { approvalWorkflow } from '../../workflows/approval.js';
import {
  approveSignal,
  clickOutcomeQuery,
  denySignal,
  personaAckSignal,
  stateQuery,
  type ApprovalInput,
} from '../../workflows/messages.js';
import { makePlan } from '../fixtures/plans.js';
import { approvalInput, eventually, mockActivities, useSuite, withWorker } from './harness.js';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;

useSuite((s) => ({ env, bundle } = s));

type Handle = WorkflowHandle<typeof approvalWorkflow>;
const { EventType } = proto.temporal.api.enums.v1;

function start(input: ApprovalInput, taskQueue: string): Promise<Handle> {
  return env.client.workflow.start<typeof approvalWorkflow>('approvalWorkflow', {
    taskQueue,
    workflowId: input.requestId,
    args: [input],
  });
}

async function eventTypes(handle: Handle): Promise<number[]> {
  return ((await handle.fetchHistory()).events ?? []).map((e) => Number(e.eventType));
}

describe('click outcomes', () => {
  test('each click is kept with its verdict: applied with the version it made, or refused with the reason', async () => {
    const plan = makePlan({
      minApprovals: 2,
      approvers: ['U_ALICE', 'U_BOB', 'U_REQ'],
      personas: [{ name: 'Security', members: ['U_SEC'] }],
    });
    await withWorker({ env, bundle }, async (taskQueue) => {
      const handle = await start(await approvalInput(env, { plan }), taskQueue);
      const clicks = [
        ['early', approveSignal, { userId: 'U_ALICE' }],
        ['stranger-ack', personaAckSignal, { persona: 'Security', userId: 'U_ALICE' }],
        ['ack', personaAckSignal, { persona: 'Security', userId: 'U_SEC' }],
        ['self', approveSignal, { userId: 'U_REQ' }],
        ['first', approveSignal, { userId: 'U_ALICE' }],
        ['again', approveSignal, { userId: 'U_ALICE' }],
        ['outsider-deny', denySignal, { userId: 'U_MALLORY' }],
      ] as const;
      for (const [clickId, signal, input] of clicks) {
        await handle.signal(signal as typeof approveSignal, { ...(input as { userId: string }), clickId });
      }
      // The query waits for the task applying the signals sent before it: every verdict is there.
      const verdicts = Object.fromEntries(
        await Promise.all(
          clicks.map(async ([clickId]) => [clickId, (await handle.query(clickOutcomeQuery, clickId)).outcome]),
        ),
      );
      expect(verdicts).toEqual({
        early: { ok: false, reason: 'not_ready', message: expect.any(String) },
        'stranger-ack': { ok: false, reason: 'not_authorized', message: expect.any(String) },
        ack: { ok: true, version: 2 },
        self: { ok: false, reason: 'self_approval', message: expect.any(String) },
        first: { ok: true, version: 3 },
        again: { ok: false, reason: 'duplicate', message: expect.any(String) },
        'outsider-deny': { ok: false, reason: 'not_authorized', message: expect.any(String) },
      });
      const answer = await handle.query(clickOutcomeQuery, 'never-sent');
      expect(answer.outcome).toBeNull();
      expect(answer.view).toMatchObject({
        status: 'ready_for_approval',
        version: 3,
        approvals: [{ userId: 'U_ALICE' }],
      });
      // A signal without a click id (operator tooling) is applied all the same.
      await handle.signal(approveSignal, { userId: 'U_BOB' });
      expect(await handle.result()).toMatchObject({ status: 'approved', decidedBy: 'U_BOB', version: 4 });
    });
  });

  test('a refused click with a reply-to is told to its clicker by an activity; others are not', async () => {
    const mocks = mockActivities();
    const plan = makePlan({ approvers: ['U_ALICE'], personas: [] });
    await withWorker({ env, bundle, mocks }, async (taskQueue) => {
      const handle = await start(await approvalInput(env, { plan }), taskQueue);
      const replyTo = { channel: 'C_APPROVALS', user: 'U_MALLORY' };
      await handle.signal(approveSignal, { userId: 'U_MALLORY', clickId: 'told', replyTo });
      // Refused too, but with nowhere to tell (an operator's signal), or a malformed reply-to: no notice.
      await handle.signal(approveSignal, { userId: 'U_MALLORY', clickId: 'untold' });
      await handle.signal(approveSignal, {
        userId: 'U_MALLORY',
        replyTo: { channel: 7, user: null } as unknown as typeof replyTo,
      });
      await handle.signal(approveSignal, {
        userId: 'U_ALICE',
        clickId: 'ok',
        replyTo: { ...replyTo, user: 'U_ALICE' },
      });
      expect(await handle.result()).toMatchObject({ status: 'approved', decidedBy: 'U_ALICE' });
      expect(mocks.calls.tellRefusal).toEqual([{ replyTo, reason: 'not_authorized', message: expect.any(String) }]);
    });
  });

  test('only the latest 100 verdicts are kept', async () => {
    const plan = makePlan({ approvers: ['U_ALICE'], personas: [] });
    await withWorker({ env, bundle }, async (taskQueue) => {
      const handle = await start(await approvalInput(env, { plan }), taskQueue);
      for (let i = 0; i < 105; i++) await handle.signal(approveSignal, { userId: 'U_MALLORY', clickId: `c${i}` });
      const outcome = async (id: string) => (await handle.query(clickOutcomeQuery, id)).outcome;
      expect(await outcome('c104')).toMatchObject({ ok: false, reason: 'not_authorized' });
      expect(await outcome('c5')).toMatchObject({ ok: false, reason: 'not_authorized' });
      expect(await outcome('c4')).toBeNull();
      expect(await outcome('c0')).toBeNull();
      expect((await handle.query(stateQuery)).version).toBe(1);
    });
  });
});

describe('timers and the end of a request', () => {
  test('the escalation and expiry timers both start in the first workflow task', async () => {
    const plan = makePlan({ escalation: { escalateBeforeSec: 60, channel: 'C_ESC', minApprovals: 2 } });
    await withWorker({ env, bundle }, async (taskQueue) => {
      const handle = await start(await approvalInput(env, { timeoutSec: 3600, plan }), taskQueue);
      let types = await eventTypes(handle);
      while (types.filter((t) => t === EventType.EVENT_TYPE_TIMER_STARTED).length < 2) {
        await new Promise((r) => setTimeout(r, 20));
        types = await eventTypes(handle);
      }
      const firstTaskDone = types.indexOf(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED);
      const timers = types.flatMap((t, i) => (t === EventType.EVENT_TYPE_TIMER_STARTED ? [i] : []));
      expect(timers).toHaveLength(2);
      for (const at of timers) expect(at).toBeGreaterThan(firstTaskDone);
      // Nothing else happened in between: the two timers belong to the task that started the request.
      expect(
        types.slice(firstTaskDone + 1, timers[1]! + 1).every((t) => t !== EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED),
      ).toBe(true);
      const final = await handle.result();
      expect(final).toMatchObject({ status: 'expired', escalated: true, minApprovals: 2 });
    });
  });

  test('the archive is scheduled by the deciding task, beside the final Slack update', async () => {
    const mocks = mockActivities();
    await withWorker({ env, bundle, mocks }, async (taskQueue) => {
      const handle = await start(await approvalInput(env, {}), taskQueue);
      await eventually(
        () => handle.query(stateQuery),
        (v) => v.slack !== null,
      );
      await handle.signal(approveSignal, { userId: 'U_ALICE' });
      expect(await handle.result()).toMatchObject({ status: 'approved' });
      const events = (await handle.fetchHistory()).events ?? [];
      const signalled = events.findIndex(
        (e) => Number(e.eventType) === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
      );
      const scheduled = events
        .slice(signalled)
        .filter((e) => Number(e.eventType) === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        .map((e) => ({
          type: e.activityTaskScheduledEventAttributes?.activityType?.name,
          task: Number(e.activityTaskScheduledEventAttributes?.workflowTaskCompletedEventId),
        }));
      expect(scheduled.map((s) => s.type).sort()).toEqual(['archiveRequest', 'updateRequestMessage']);
      expect(scheduled[0]!.task).toBe(scheduled[1]!.task);
      expect(mocks.calls.archiveRequest).toHaveLength(1);
      expect(mocks.calls.archiveRequest[0]!.final).toMatchObject({ status: 'approved', slack: expect.any(Object) });
    });
  });
});
