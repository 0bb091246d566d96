/**
 * Slack clicks arrive as Signals carrying a click id, applied at most once per id, a refusal told to the clicker;
 * both timers start with the request; the archive goes out beside the final Slack update.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundleOption } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { approvalWorkflow } from '../../workflows/approval.js';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { randomUUID } from 'node:crypto';
import { MAX_CLICK_IDS, SLOW_SLACK_MS } from '../../workflows/request.js';
import {
  approveSignal,
  approveUpdate,
  denySignal,
  personaAckSignal,
  stateQuery,
  VIEW_MEMO_KEY,
  type ApprovalInput,
  type RequestView,
} from '../../workflows/messages.js';
import { makePlan } from '../fixtures/plans.js';
import { localActivityType } from '../helpers/history.js';
import { approvalInput, eventually, mockActivities, SLACK_REF, useSuite, withWorker } from './harness.js';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleOption;

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

type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;

/** Events a workflow task's completion writes (its commands), right after its WorkflowTaskCompleted. */
const COMMAND_EVENTS = new Set<number>([
  EventType.EVENT_TYPE_TIMER_STARTED,
  EventType.EVENT_TYPE_TIMER_CANCELED,
  EventType.EVENT_TYPE_MARKER_RECORDED,
  EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
  EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
  EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
]);

/** A history cut into workflow tasks: what each task's completion wrote, and its local activities by name. */
function workflowTasks(events: HistoryEvent[]): Array<{ types: number[]; localActivities: string[] }> {
  const tasks: Array<{ types: number[]; localActivities: string[] }> = [];
  let open = false;
  for (const e of events) {
    const type = Number(e.eventType);
    if (type === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) {
      tasks.push({ types: [], localActivities: [] });
      open = true;
      continue;
    }
    open &&= COMMAND_EVENTS.has(type);
    if (!open) continue;
    const task = tasks.at(-1)!;
    task.types.push(type);
    const activity = localActivityType(e);
    if (activity) task.localActivities.push(activity);
  }
  return tasks;
}

async function eventTypes(handle: Handle): Promise<number[]> {
  return ((await handle.fetchHistory()).events ?? []).map((e) => Number(e.eventType));
}

describe('clicks', () => {
  test('each click is applied or refused; a refused one is told to its clicker with the reason', async () => {
    const mocks = mockActivities();
    const plan = makePlan({
      minApprovals: 2,
      approvers: ['U_ALICE', 'U_BOB', 'U_REQ'],
      personas: [{ name: 'Security', members: ['U_SEC'] }],
    });
    await withWorker({ env, bundle, mocks }, async (taskQueue) => {
      const handle = await start(await approvalInput(env, { plan }), taskQueue);
      const { version } = await eventually(
        () => handle.query(stateQuery),
        (v) => v.notification.slack === 'posted',
      );
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
        const replyTo = { channel: 'C_APPROVALS', user: (input as { userId: string }).userId };
        await handle.signal(signal as typeof approveSignal, { ...(input as { userId: string }), clickId, replyTo });
      }
      // A query is answered after the task that applied the Signals sent before it: two were applied.
      expect(await handle.query(stateQuery)).toMatchObject({
        status: 'ready_for_approval',
        version: version + 2,
        approvals: [{ userId: 'U_ALICE' }],
        personaState: { Security: { acked: true, by: 'U_SEC' } },
      });
      await eventually(
        () => handle.query(stateQuery),
        () => mocks.calls.tellRefusal.length === 5,
      );
      // The notices are activities running side by side: their order is not the clicks' order.
      expect(mocks.calls.tellRefusal.map((n) => `${n.replyTo.user} ${n.reason}`).sort()).toEqual([
        'U_ALICE duplicate',
        'U_ALICE not_authorized',
        'U_ALICE not_ready',
        'U_MALLORY not_authorized',
        'U_REQ self_approval',
      ]);
      // A Signal without a click id (operator tooling) is applied all the same.
      await handle.signal(approveSignal, { userId: 'U_BOB' });
      expect(await handle.result()).toMatchObject({ status: 'approved', decidedBy: 'U_BOB', version: version + 3 });
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

  // A delivery replayed after an API restart (no replay cache survived) reaches the workflow again with the same id.
  test('a click id is applied at most once, refused or not, also by a worker replaying the history', async () => {
    const mocks = mockActivities();
    const plan = makePlan({ minApprovals: 2, personas: [] });
    const taskQueue = `tq-${randomUUID()}`;
    const input = await approvalInput(env, { plan });
    const replyTo = (user: string) => ({ channel: 'C_APPROVALS', user });
    const approve = (userId: string, clickId: string) => ({ userId, clickId, replyTo: replyTo(userId) });
    // No cache (so no sticky queue): every workflow task replays the history, and the second worker takes over at once.
    const handle = await withWorker({ env, bundle, mocks, taskQueue, maxCachedWorkflows: 0 }, async () => {
      const h = await start(input, taskQueue);
      await h.signal(approveSignal, approve('U_ALICE', 'c-alice'));
      await h.signal(approveSignal, approve('U_MALLORY', 'c-mallory'));
      await h.signal(approveSignal, approve('U_ALICE', 'c-alice'));
      await h.signal(approveSignal, approve('U_MALLORY', 'c-mallory'));
      expect(await h.query(stateQuery)).toMatchObject({ approvals: [{ userId: 'U_ALICE' }] });
      await eventually(
        () => h.query(stateQuery),
        () => mocks.calls.tellRefusal.length > 0,
      );
      return h;
    });
    // Another worker replays the history: the ids seen are seen again.
    await withWorker({ env, bundle, mocks, taskQueue, maxCachedWorkflows: 0 }, async () => {
      await handle.signal(approveSignal, approve('U_ALICE', 'c-alice'));
      await handle.signal(approveSignal, approve('U_MALLORY', 'c-mallory'));
      const view = await handle.query(stateQuery);
      expect(view).toMatchObject({ status: 'ready_for_approval', approvals: [{ userId: 'U_ALICE' }] });
      await handle.signal(approveSignal, approve('U_ALICE', 'c-alice-2'));
      await eventually(
        () => handle.query(stateQuery),
        () => mocks.calls.tellRefusal.length === 2,
      );
      await handle.signal(approveSignal, approve('U_BOB', 'c-bob'));
      expect(await handle.result()).toMatchObject({
        status: 'approved',
        decidedBy: 'U_BOB',
        version: view.version + 1,
      });
    });
    // Told once per click id: Mallory's first, and Alice's second click (a new id: a real duplicate).
    expect(mocks.calls.tellRefusal.map((n) => [n.replyTo.user, n.reason])).toEqual([
      ['U_MALLORY', 'not_authorized'],
      ['U_ALICE', 'duplicate'],
    ]);
  });

  test(`a request remembers ${MAX_CLICK_IDS} click ids; clicks past that are refused, never forgotten`, async () => {
    const mocks = mockActivities();
    const plan = makePlan({ approvers: ['U_ALICE'], personas: [] });
    await withWorker({ env, bundle, mocks }, async (taskQueue) => {
      const handle = await start(await approvalInput(env, { plan }), taskQueue);
      for (let batch = 0; batch < MAX_CLICK_IDS; batch += 100) {
        await Promise.all(
          Array.from({ length: 100 }, (_, i) =>
            handle.signal(approveSignal, { userId: 'U_MALLORY', clickId: `c${batch + i}` }),
          ),
        );
      }
      const replyTo = { channel: 'C_APPROVALS', user: 'U_ALICE' };
      await handle.signal(approveSignal, { userId: 'U_ALICE', clickId: 'one-too-many', replyTo });
      await handle.signal(approveSignal, { userId: 'U_ALICE', clickId: 'c0', replyTo });
      expect(await handle.query(stateQuery)).toMatchObject({ status: 'ready_for_approval', approvals: [] });
      await eventually(
        () => handle.query(stateQuery),
        () => mocks.calls.tellRefusal.length > 0,
      );
      expect(mocks.calls.tellRefusal).toEqual([{ replyTo, reason: 'limit_exceeded', message: expect.any(String) }]);
      // Updates (the API, admins) still decide.
      await handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] });
      expect(await handle.result()).toMatchObject({ status: 'approved' });
    });
  }, 120_000);
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

  /** An approval whose post took `postMs` in Slack: its history cut into tasks, and the events themselves. */
  async function approvedAfterPost(postMs: number) {
    const mocks = mockActivities({
      postRequestMessage: async (input) => {
        mocks.calls.postRequestMessage.push(input);
        return { slack: 'posted', ...SLACK_REF, postMs };
      },
    });
    return withWorker({ env, bundle, mocks }, async (taskQueue) => {
      const handle = await start(await approvalInput(env, {}), taskQueue);
      await eventually(
        () => handle.query(stateQuery),
        (v) => v.notification.slack === 'posted',
      );
      await handle.signal(approveSignal, { userId: 'U_ALICE' });
      expect(await handle.result()).toMatchObject({ status: 'approved' });
      expect(mocks.calls.archiveRequest).toHaveLength(1);
      expect(mocks.calls.archiveRequest[0]!.final).toMatchObject({ status: 'approved', slack: expect.any(Object) });
      const events = (await handle.fetchHistory()).events ?? [];
      // (A task that wrote nothing is one the server ran to answer a query of the test's.)
      const tasks = workflowTasks(events).filter((t) => t.types.length > 0);
      expect(tasks.flatMap((t) => t.types)).not.toContain(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED);
      expect(tasks.at(-1)!.types.at(-1)).toBe(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED);
      return { tasks, events };
    });
  }

  test('Slack answered the post fast: the deciding task updates Slack, archives and ends', async () => {
    const { tasks } = await approvedAfterPost(SLOW_SLACK_MS - 1);
    // Start: the post ran locally in the first task (no activity task); the click: one task that ends it all.
    expect(tasks.map((t) => t.localActivities)).toEqual([
      ['postRequestMessage'],
      ['updateRequestMessage', 'archiveRequest'],
    ]);
    expect(tasks[1]!.types).not.toContain(EventType.EVENT_TYPE_TIMER_STARTED);
  });

  test('Slack answered the post slowly: the decision is recorded alone, then Slack updated', async () => {
    const { tasks, events } = await approvedAfterPost(SLOW_SLACK_MS);
    // The click: a task with no local activity, so it completes (and the waiting agent hears) without waiting for
    // Slack, with a 1 ms timer; the next one updates the message, archives and ends.
    expect(tasks.map((t) => t.localActivities)).toEqual([
      ['postRequestMessage'],
      [],
      ['updateRequestMessage', 'archiveRequest'],
    ]);
    expect(tasks[1]!.types).toEqual(
      expect.arrayContaining([
        EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
        EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
        EventType.EVENT_TYPE_TIMER_STARTED,
      ]),
    );
    // The view the deciding task wrote is the decision, before Slack was asked to show it.
    const converter = env.client.options.loadedDataConverter.payloadConverter;
    const decided = events.findIndex((e) => {
      const memo = e.workflowPropertiesModifiedEventAttributes?.upsertedMemo?.fields?.[VIEW_MEMO_KEY];
      return memo && converter.fromPayload<RequestView>(memo).status === 'approved';
    });
    const updated = events.findIndex((e) => localActivityType(e) === 'updateRequestMessage');
    expect(decided).toBeGreaterThan(0);
    expect(updated).toBeGreaterThan(decided);
  });

  test('a local attempt that fails retryably goes on as a normal activity; a permanent failure does not', async () => {
    const mocks = mockActivities({
      // Slack rate limits the local attempt: the normal activity (with the long retry budget) posts it.
      postRequestMessage: async (input) => {
        mocks.calls.postRequestMessage.push(input);
        if (Context.current().info.isLocal)
          throw ApplicationFailure.retryable('chat.postMessage: 503', 'slack_unavailable');
        return { slack: 'posted', ...SLACK_REF };
      },
      // A permanent refusal is final: no normal activity tries the update again.
      updateRequestMessage: async () => {
        throw ApplicationFailure.nonRetryable('chat.update failed: message_not_found', 'slack_message_not_found');
      },
    });
    await withWorker({ env, bundle, mocks }, async (taskQueue) => {
      const handle = await start(await approvalInput(env, {}), taskQueue);
      await eventually(
        () => handle.query(stateQuery),
        (v) => v.notification.slack === 'posted',
      );
      expect(mocks.calls.postRequestMessage).toHaveLength(2);
      const scheduled = ((await handle.fetchHistory()).events ?? []).map(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name,
      );
      expect(scheduled.filter(Boolean)).toEqual(['postRequestMessage']);
      await handle.signal(approveSignal, { userId: 'U_ALICE' });
      expect(await handle.result()).toMatchObject({ status: 'approved' });
      expect(mocks.calls.archiveRequest).toHaveLength(1);
      const after = ((await handle.fetchHistory()).events ?? []).map(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name,
      );
      expect(after.filter(Boolean)).toEqual(['postRequestMessage']);
    });
  });
});
