/**
 * The approval workflow on the time-skipping test server: timers at hours and days in milliseconds, races between
 * timers and decisions, persona gating, Updates and Signals, and the Slack and archive side effects.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundleOption } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import proto from '@temporalio/proto';
import { randomUUID } from 'node:crypto';
import type { Plan } from '../../domain/plan.js';
import {
  adminDecisionUpdate,
  approveSignal,
  approveUpdate,
  approveWithEditsUpdate,
  cancelUpdate,
  denySignal,
  denyUpdate,
  personaAckSignal,
  personaAckUpdate,
  stateQuery,
  VIEW_MEMO_KEY,
  type ApprovalInput,
  type PostOutcome,
  type RequestView,
} from '../../workflows/messages.js';
import type { approvalWorkflow } from '../../workflows/approval.js';
import { makePlan, makeRequest } from '../fixtures/plans.js';
import { eventually as untilDefined } from '../helpers/eventually.js';
import {
  approvalInput,
  eventRecorder,
  eventually,
  mockActivities,
  refusalOf,
  useSuite,
  SLACK_REF,
  withWorker,
  type ActivityMocks,
} from './harness.js';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleOption;

useSuite((s) => ({ env, bundle } = s));

const HOUR = 3600_000;
const TERMINAL_EVENTS = ['request_approved', 'request_denied', 'request_expired', 'request_cancelled'];
const PERSONAS: Plan['personas'] = [
  { name: 'Security', members: ['U_SEC'] },
  { name: 'DBA', members: [] },
];

type Handle = WorkflowHandle<typeof approvalWorkflow>;

function start(input: ApprovalInput, taskQueue: string): Promise<Handle> {
  return env.client.workflow.start<typeof approvalWorkflow>('approvalWorkflow', {
    taskQueue,
    workflowId: input.requestId,
    args: [input],
  });
}

/**
 * Starts a request and waits for its Slack post to settle, which bumps the version once (the notification): tests
 * that count versions start from the one returned.
 */
async function startPosted(input: ApprovalInput, taskQueue: string): Promise<{ handle: Handle; version: number }> {
  const handle = await start(input, taskQueue);
  const view = await eventually(query(handle), (v) => v.notification.slack !== 'pending');
  return { handle, version: view.version };
}

/** Skips the test server's clock to `targetMs` (a time on that clock). */
async function sleepUntil(targetMs: number): Promise<void> {
  const remaining = targetMs - (await env.currentTimeMs());
  if (remaining > 0) await env.sleep(remaining);
}

const query = (handle: Handle) => () => handle.query(stateQuery);

const { EventType } = proto.temporal.api.enums.v1;

/** Index of the workflow task (its STARTED event) that handled the first event of `type`. */
async function taskThatHandled(handle: Handle, type: proto.temporal.api.enums.v1.EventType): Promise<number> {
  const types = ((await handle.fetchHistory()).events ?? []).map((e) => e.eventType);
  const at = types.indexOf(type);
  expect(at).toBeGreaterThan(-1);
  // An accepted Update is written after the task that accepted it; anything else before the task that sees it.
  return type === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ? types.lastIndexOf(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, at)
    : types.indexOf(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, at);
}

/** What the Slack message and the archive saw: the final state, rendered once more after the decision. */
function expectSideEffectsOf(final: RequestView, mocks: ActivityMocks, input: ApprovalInput): void {
  const { slack, ...finalState } = final;
  expect(slack).toEqual(SLACK_REF);
  expect(final.notification).toEqual({ slack: 'posted' });
  expect(mocks.calls.postRequestMessage).toHaveLength(1);
  expect(mocks.calls.updateRequestMessage.at(-1)?.state).toEqual(finalState);
  expect(mocks.calls.updateRequestMessage.at(-1)?.ref).toEqual(SLACK_REF);
  expect(mocks.calls.archiveRequest).toEqual([{ input, final }]);
}

describe('timers', () => {
  test('a 1-hour expiry expires in well under a second of wall time', async () => {
    const mocks = mockActivities();
    const recorder = eventRecorder();
    await withWorker({ env, bundle, mocks, sinks: recorder.sinks }, async (taskQueue) => {
      const input = await approvalInput(env, { timeoutSec: 3600 });
      const handle = await start(input, taskQueue);
      // The first task of a worker builds its workflow sandbox: start the stopwatch once the timer is set.
      await handle.query(stateQuery);
      const wallStart = Date.now();
      const final = await handle.result();
      expect(Date.now() - wallStart).toBeLessThan(1000);
      expect(final).toMatchObject({ status: 'expired', decidedBy: 'system', approvals: [] });
      expect(Date.parse(final.decidedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(input.expiresAt));
      expect(recorder.types().filter((t) => TERMINAL_EVENTS.includes(t))).toEqual(['request_expired']);
      expectSideEffectsOf(final, mocks, input);
    });
  });

  test('a 7-day expiry fires in milliseconds too, keeping the persona acks given', async () => {
    await withWorker({ env, bundle }, async (taskQueue) => {
      const input = await approvalInput(env, { timeoutSec: 7 * 24 * 3600, plan: makePlan({ personas: PERSONAS }) });
      const handle = await start(input, taskQueue);
      await handle.executeUpdate(personaAckUpdate, { args: [{ persona: 'Security', userId: 'U_SEC' }] });
      const final = await handle.result();
      expect(final.status).toBe('expired');
      expect(final.personaState.Security?.acked).toBe(true);
      expect(final.personaState.DBA?.acked).toBe(false);
    });
  });

  test('escalation fires once at hours (expiresAt − escalateBeforeSec), raises the quorum, then expiry', async () => {
    const mocks = mockActivities();
    const recorder = eventRecorder();
    const plan = makePlan({ escalation: { escalateBeforeSec: 2 * 3600, channel: 'C_ESC', minApprovals: 2 } });
    await withWorker({ env, bundle, mocks, sinks: recorder.sinks }, async (taskQueue) => {
      const input = await approvalInput(env, { timeoutSec: 24 * 3600, plan });
      const escalateAt = Date.parse(input.expiresAt) - 2 * HOUR;
      const handle = await start(input, taskQueue);

      await sleepUntil(escalateAt - 60_000);
      expect(await handle.query(stateQuery)).toMatchObject({ escalated: false, minApprovals: 1 });
      expect(mocks.calls.postEscalationNotice).toHaveLength(0);

      await sleepUntil(escalateAt + 1000);
      const escalated = await eventually(query(handle), (v) => v.escalated);
      expect(escalated).toMatchObject({ status: 'ready_for_approval', minApprovals: 2 });
      expect(Math.abs(Date.parse(escalated.escalatedAt ?? '') - escalateAt)).toBeLessThan(2000);
      await eventually(query(handle), () => mocks.calls.postEscalationNotice.length > 0);
      expect(mocks.calls.postEscalationNotice[0]).toMatchObject({
        ref: SLACK_REF,
        plan: { escalation: { channel: 'C_ESC' } },
        state: { escalated: true, minApprovals: 2 },
      });

      // One approval was enough before; after the raise it is 1 of 2.
      const afterOne = await handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] });
      expect(afterOne).toMatchObject({ status: 'ready_for_approval', approvals: [{ userId: 'U_ALICE' }] });

      const final = await handle.result();
      expect(final).toMatchObject({ status: 'expired', escalated: true, minApprovals: 2 });
      expect(mocks.calls.postEscalationNotice).toHaveLength(1);
      expect(recorder.types().filter((t) => t === 'request_escalated')).toHaveLength(1);
    });
  });

  test('a request approved before escalation time never escalates', async () => {
    const mocks = mockActivities();
    const recorder = eventRecorder();
    const plan = makePlan({ escalation: { escalateBeforeSec: 2 * 3600, channel: 'C_ESC', minApprovals: 2 } });
    await withWorker({ env, bundle, mocks, sinks: recorder.sinks }, async (taskQueue) => {
      const input = await approvalInput(env, { timeoutSec: 24 * 3600, plan });
      const handle = await start(input, taskQueue);
      await sleepUntil(Date.parse(input.expiresAt) - 2 * HOUR - 60_000);
      const view = await handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] });
      expect(view.status).toBe('approved');
      const final = await handle.result();
      expect(final).toMatchObject({ status: 'approved', escalated: false, escalatedAt: null, minApprovals: 1 });
      expect(mocks.calls.postEscalationNotice).toHaveLength(0);
      expect(recorder.types()).not.toContain('request_escalated');
    });
  });
});

describe('approval racing expiry resolves one way only', () => {
  test('an approval one second before expiresAt wins; the expiry never fires', async () => {
    const recorder = eventRecorder();
    await withWorker({ env, bundle, sinks: recorder.sinks }, async (taskQueue) => {
      const input = await approvalInput(env);
      const handle = await start(input, taskQueue);
      await sleepUntil(Date.parse(input.expiresAt) - 1000);
      const view = await handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] });
      expect(view.status).toBe('approved');
      expect(Date.parse(view.decidedAt ?? '')).toBeLessThan(Date.parse(input.expiresAt));
      expect((await handle.result()).status).toBe('approved');
      expect(recorder.types().filter((t) => TERMINAL_EVENTS.includes(t))).toEqual(['request_approved']);
    });
  });

  test('after expiresAt the request is expired and a late approval is refused with already_decided', async () => {
    const mocks = mockActivities();
    mocks.holdArchive();
    await withWorker({ env, bundle, mocks }, async (taskQueue) => {
      const input = await approvalInput(env);
      const handle = await start(input, taskQueue);
      await sleepUntil(Date.parse(input.expiresAt) + 1);
      await eventually(query(handle), (v) => v.status === 'expired');
      expect(await refusalOf(handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] }))).toBe(
        'already_decided',
      );
      mocks.releaseArchive();
      expect((await handle.result()).status).toBe('expired');
    });
  });

  test('an approval sent right at expiresAt: one terminal outcome, and later approvals are refused', async () => {
    const mocks = mockActivities();
    const recorder = eventRecorder();
    mocks.holdArchive();
    await withWorker({ env, bundle, mocks, sinks: recorder.sinks }, async (taskQueue) => {
      const input = await approvalInput(env);
      const handle = await start(input, taskQueue);
      await sleepUntil(Date.parse(input.expiresAt));
      const [atBoundary] = await Promise.allSettled([
        handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] }),
      ]);
      const outcome = atBoundary.status === 'fulfilled' ? atBoundary.value.status : 'expired';
      if (atBoundary.status === 'rejected') {
        expect(await refusalOf(Promise.reject(atBoundary.reason))).toBe('already_decided');
      }
      await eventually(query(handle), (v) => v.status === outcome);
      expect(await refusalOf(handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_BOB' }] }))).toBe(
        'already_decided',
      );
      mocks.releaseArchive();
      const final = await handle.result();
      expect(final.status).toBe(outcome);
      expect(recorder.types().filter((t) => TERMINAL_EVENTS.includes(t))).toEqual([`request_${outcome}`]);
      expectSideEffectsOf(final, mocks, input);
    });
  });

  // The worker is away while the timer fires and the approval arrives, so both reach the workflow in one task.
  // The SDK hands the message to the workflow before the timer, but the request is past expiresAt: it expires,
  // and the approval is refused (a rejected Update leaves no trace in history; a Signal is recorded and ignored).
  test.each(['signal', 'update'] as const)(
    'expiry timer and an approval (%s) delivered in one workflow task: the request expires, the approval is refused',
    async (kind) => {
      const mocks = mockActivities();
      const recorder = eventRecorder();
      const taskQueue = `tq-${randomUUID()}`;
      const input = await approvalInput(env);
      const handle = await withWorker({ env, bundle, mocks, taskQueue, maxCachedWorkflows: 0 }, async () => {
        const h = await start(input, taskQueue);
        await eventually(query(h), (v) => v.slack !== null);
        return h;
      });
      await sleepUntil(Date.parse(input.expiresAt));
      const update =
        kind === 'update'
          ? handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] }).then(
              (v) => v.status,
              (err: unknown) => err,
            )
          : handle.signal(approveSignal, { userId: 'U_ALICE' }).then(() => null);
      if (kind === 'signal') await update;
      const final = await withWorker({ env, bundle, mocks, sinks: recorder.sinks, taskQueue }, () => handle.result());
      expect(final.status).toBe('expired');
      expect(final.decidedAt).toBe(input.expiresAt);
      expect(final.approvals).toEqual([]);
      expect(recorder.types().filter((t) => TERMINAL_EVENTS.includes(t))).toEqual(['request_expired']);
      expect(mocks.calls.archiveRequest).toHaveLength(1);
      expect(mocks.calls.archiveRequest[0]?.final.status).toBe('expired');
      if (kind === 'update') {
        const settled = await update;
        expect(settled).toBeInstanceOf(Error);
      } else {
        expect(await taskThatHandled(handle, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)).toBe(
          await taskThatHandled(handle, EventType.EVENT_TYPE_TIMER_FIRED),
        );
      }
    },
  );
});

describe('persona gating over Updates', () => {
  test('approve and approve-with-edits are refused with not_ready until every persona is acknowledged', async () => {
    const mocks = mockActivities();
    const plan = makePlan({
      personas: PERSONAS,
      minApprovals: 1,
      overrides: { allowed: true, keys: ['steps'], schema: null, maxKeys: 10, maxChars: 100 },
    });
    await withWorker({ env, bundle, mocks }, async (taskQueue) => {
      const input = await approvalInput(env, { plan });
      const { handle, version: v } = await startPosted(input, taskQueue);
      const approve = () => handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] });
      const ack = (persona: string, userId: string) =>
        handle.executeUpdate(personaAckUpdate, { args: [{ persona, userId }] });

      expect(await refusalOf(approve())).toBe('not_ready');
      expect(
        await refusalOf(
          handle.executeUpdate(approveWithEditsUpdate, { args: [{ userId: 'U_ALICE', changes: { steps: 4 } }] }),
        ),
      ).toBe('not_ready');
      expect(await refusalOf(ack('Security', 'U_ALICE'))).toBe('not_authorized');
      expect(await refusalOf(ack('Legal', 'U_SEC'))).toBe('unknown_persona');
      expect(await handle.query(stateQuery)).toMatchObject({ version: v, status: 'awaiting_personas' });

      expect(await ack('Security', 'U_SEC')).toMatchObject({ status: 'awaiting_personas', version: v + 1 });
      expect(await refusalOf(approve())).toBe('not_ready');
      expect(await ack('DBA', 'U_BOB')).toMatchObject({ status: 'ready_for_approval', version: v + 2 });
      expect(await refusalOf(ack('DBA', 'U_CAROL'))).toBe('already_acked');

      expect(await approve()).toMatchObject({ status: 'approved', decidedBy: 'U_ALICE', version: v + 3 });
      const final = await handle.result();
      expect(final.personaState).toEqual({
        Security: { acked: true, by: 'U_SEC', at: expect.any(String) },
        DBA: { acked: true, by: 'U_BOB', at: expect.any(String) },
      });
      expectSideEffectsOf(final, mocks, input);
    });
  });
});

describe('decisions over Updates', () => {
  test('a quorum of 2 with distinct approvers; the requester and duplicates are refused', async () => {
    const mocks = mockActivities();
    const recorder = eventRecorder();
    const plan = makePlan({ minApprovals: 2, approvers: ['U_ALICE', 'U_BOB', 'U_REQ'] });
    await withWorker({ env, bundle, mocks, sinks: recorder.sinks }, async (taskQueue) => {
      const input = await approvalInput(env, { plan });
      const { handle, version: v } = await startPosted(input, taskQueue);
      const approve = (userId: string) => handle.executeUpdate(approveUpdate, { args: [{ userId }] });

      expect(await refusalOf(approve('U_MALLORY'))).toBe('not_authorized');
      expect(await refusalOf(approve('U_REQ'))).toBe('self_approval');
      expect(await approve('U_ALICE')).toMatchObject({
        status: 'ready_for_approval',
        approvals: [{ userId: 'U_ALICE' }],
      });
      expect(await refusalOf(approve('U_ALICE'))).toBe('duplicate');
      expect(await approve('U_BOB')).toMatchObject({ status: 'approved', decidedBy: 'U_BOB' });

      const final = await handle.result();
      expect(final).toEqual(await handle.query(stateQuery));
      expect(final.version).toBe(v + 2);
      expect(recorder.types()).toEqual([
        'request_created',
        'approval_recorded',
        'approval_recorded',
        'request_approved',
      ]);
      expectSideEffectsOf(final, mocks, input);
    });
  });

  test('approve with edits voids earlier approvals; approving the old hash is refused as stale', async () => {
    const mocks = mockActivities();
    const plan = makePlan({
      minApprovals: 2,
      overrides: { allowed: true, keys: ['steps'], schema: null, maxKeys: 10, maxChars: 100 },
    });
    await withWorker({ env, bundle, mocks }, async (taskQueue) => {
      const input = await approvalInput(env, { plan });
      const handle = await start(input, taskQueue);
      const first = await handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] });
      const oldHash = first.payloadHash;

      expect(
        await refusalOf(
          handle.executeUpdate(approveWithEditsUpdate, { args: [{ userId: 'U_BOB', changes: { database: 'x' } }] }),
        ),
      ).toBe('invalid_key');
      const edited = await handle.executeUpdate(approveWithEditsUpdate, {
        args: [{ userId: 'U_BOB', changes: { steps: 5 } }],
      });
      expect(edited).toMatchObject({
        status: 'ready_for_approval',
        effectiveParams: { database: 'orders', steps: 5 },
        approvals: [{ userId: 'U_BOB', payloadHash: edited.payloadHash }],
        voidedApprovals: [{ userId: 'U_ALICE', payloadHash: oldHash }],
      });
      expect(edited.payloadHash).not.toBe(oldHash);

      const approveSeeing = (seenPayloadHash: string) =>
        handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE', seenPayloadHash }] });
      expect(await refusalOf(approveSeeing(oldHash))).toBe('stale_payload');
      expect(await approveSeeing(edited.payloadHash)).toMatchObject({ status: 'approved', decidedBy: 'U_ALICE' });

      const final = await handle.result();
      expect(final.effectiveParams).toEqual({ database: 'orders', steps: 5 });
      expect(final.overrides).toHaveLength(1);
      expectSideEffectsOf(final, mocks, input);
    });
  });

  test.each<[string, (h: Handle) => Promise<RequestView>, Partial<RequestView>]>([
    [
      'deny with a reason',
      (h) => h.executeUpdate(denyUpdate, { args: [{ userId: 'U_BOB', reason: 'freeze week' }] }),
      { status: 'denied', decidedBy: 'U_BOB', reason: 'freeze week' },
    ],
    [
      'cancel by the requester',
      (h) => h.executeUpdate(cancelUpdate, { args: [{ actor: 'U_REQ', reason: 'wrong branch' }] }),
      { status: 'cancelled', decidedBy: 'U_REQ', reason: 'wrong branch' },
    ],
    [
      'break-glass admin approval while personas are pending',
      (h) =>
        h.executeUpdate(adminDecisionUpdate, { args: [{ decision: 'approve', actor: 'admin:ops', breakGlass: true }] }),
      { status: 'approved', decidedBy: 'admin:ops', breakGlass: true },
    ],
    [
      'admin denial',
      (h) =>
        h.executeUpdate(adminDecisionUpdate, { args: [{ decision: 'deny', actor: 'admin:ops', reason: 'outage' }] }),
      { status: 'denied', decidedBy: 'admin:ops', reason: 'outage' },
    ],
  ])('%s ends the request; the result equals the final view', async (_name, decide, expected) => {
    const mocks = mockActivities();
    await withWorker({ env, bundle, mocks }, async (taskQueue) => {
      const input = await approvalInput(env, { plan: makePlan({ personas: PERSONAS }) });
      const { handle } = await startPosted(input, taskQueue);
      const view = await decide(handle);
      expect(view).toMatchObject(expected);
      const final = await handle.result();
      expect(final).toMatchObject(expected);
      expect(final).toEqual({ ...view, slack: SLACK_REF });
      expectSideEffectsOf(final, mocks, input);
    });
  });
});

describe('Signals of the same names', () => {
  test('change state like the Updates do', async () => {
    const mocks = mockActivities();
    await withWorker({ env, bundle, mocks }, async (taskQueue) => {
      const input = await approvalInput(env, { plan: makePlan({ personas: [PERSONAS[0]!] }) });
      const { handle, version: v } = await startPosted(input, taskQueue);
      await handle.signal(personaAckSignal, { persona: 'Security', userId: 'U_SEC' });
      await eventually(query(handle), (v) => v.status === 'ready_for_approval');
      await handle.signal(approveSignal, { userId: 'U_ALICE' });
      const final = await handle.result();
      expect(final).toMatchObject({ status: 'approved', decidedBy: 'U_ALICE', version: v + 2 });
      expectSideEffectsOf(final, mocks, input);
    });
  });

  test('refused signals change nothing and do not fail the workflow', async () => {
    const plan = makePlan({ minApprovals: 2, approvers: ['U_ALICE', 'U_BOB', 'U_REQ'], personas: [] });
    await withWorker({ env, bundle }, async (taskQueue) => {
      const input = await approvalInput(env, { plan });
      const { handle, version: v } = await startPosted(input, taskQueue);
      // Signals are applied in order: once the last, accepted one shows, the refused ones before it were handled.
      await handle.signal(approveSignal, { userId: 'U_MALLORY' });
      await handle.signal(approveSignal, { userId: 'U_REQ' });
      await handle.signal(denySignal, { userId: 'U_MALLORY', reason: 'not mine to deny' });
      await handle.signal(personaAckSignal, { persona: 'Security', userId: 'U_ALICE' });
      await handle.signal(approveSignal, { userId: 'U_ALICE' });
      await handle.signal(approveSignal, { userId: 'U_ALICE' });
      const view = await eventually(query(handle), (v) => v.approvals.length === 1);
      expect(view).toMatchObject({ status: 'ready_for_approval', version: v + 1, reason: null, decidedBy: null });

      await handle.signal(approveSignal, { userId: 'U_BOB' });
      const final = await handle.result();
      expect(final).toMatchObject({ status: 'approved', decidedBy: 'U_BOB', version: v + 2 });
      expect(final.approvals.map((a) => a.userId)).toEqual(['U_ALICE', 'U_BOB']);
    });
  });
});

describe('Slack', () => {
  test('the message is updated on each change and last shows the final state', async () => {
    const mocks = mockActivities();
    const plan = makePlan({ minApprovals: 2, personas: [PERSONAS[0]!] });
    await withWorker({ env, bundle, mocks }, async (taskQueue) => {
      const input = await approvalInput(env, { plan });
      const handle = await start(input, taskQueue);
      await handle.executeUpdate(personaAckUpdate, { args: [{ persona: 'Security', userId: 'U_SEC' }] });
      await eventually(query(handle), () => mocks.calls.updateRequestMessage.length >= 1);
      await handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] });
      await handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_BOB' }] });
      const final = await handle.result();
      const versions = mocks.calls.updateRequestMessage.map((c) => c.state.version);
      expect(versions).toEqual([...versions].sort((a, b) => a - b));
      expect(new Set(versions).size).toBe(versions.length);
      expect(versions.at(-1)).toBe(final.version);
      expect(mocks.calls.updateRequestMessage[0]?.state.status).toBe('ready_for_approval');
      expectSideEffectsOf(final, mocks, input);
    });
  });

  test('Slack being down never blocks a decision', async () => {
    const mocks = mockActivities({
      postRequestMessage: async () => {
        throw ApplicationFailure.nonRetryable('chat.postMessage failed: channel_not_found', 'slack_channel_not_found');
      },
    });
    const recorder = eventRecorder();
    const plan = makePlan({ escalation: { escalateBeforeSec: 600, channel: 'C_ESC', minApprovals: null } });
    await withWorker({ env, bundle, mocks, sinks: recorder.sinks }, async (taskQueue) => {
      const input = await approvalInput(env, { plan });
      const handle = await start(input, taskQueue);
      const final = await handle.result();
      expect(final).toMatchObject({
        status: 'expired',
        escalated: true,
        slack: null,
        notification: { slack: 'failed', error: 'chat.postMessage failed: channel_not_found' },
      });
      expect(recorder.batches.flatMap((b) => b.events).filter((e) => e.type === 'notification_failed')).toEqual([
        { type: 'notification_failed', error: 'chat.postMessage failed: channel_not_found' },
      ]);
      expect(mocks.calls.updateRequestMessage).toHaveLength(0);
      expect(mocks.calls.postEscalationNotice).toEqual([expect.objectContaining({ ref: null })]);
      expect(mocks.calls.archiveRequest).toEqual([{ input, final }]);
    });
  });
  test.each<[string, PostOutcome, RequestView['notification']]>([
    [
      'posted, with its permalink',
      { slack: 'posted', ...SLACK_REF, permalink: 'https://slack/p1' },
      { slack: 'posted', permalink: 'https://slack/p1' },
    ],
    [
      'posted as the minimal fallback',
      { slack: 'posted', ...SLACK_REF, fallback: 'minimal' },
      { slack: 'posted', fallback: 'minimal' },
    ],
    [
      'refused by every fallback',
      { slack: 'failed', error: 'invalid_blocks' },
      { slack: 'failed', error: 'invalid_blocks' },
    ],
    ['skipped (no token or channel)', { slack: 'skipped' }, { slack: 'skipped' }],
  ])('the post %s is the notification in the view and the memo', async (_n, outcome, notification) => {
    const mocks = mockActivities({ postRequestMessage: async () => outcome });
    await withWorker({ env, bundle, mocks }, async (taskQueue) => {
      const handle = await start(await approvalInput(env), taskQueue);
      const view = await eventually(query(handle), (v) => v.notification.slack !== 'pending');
      // Only a failure is news that wakes waiters (a new version); the rest shows in the next read.
      expect(view).toMatchObject({
        notification,
        version: outcome.slack === 'failed' ? 2 : 1,
        slack: outcome.slack === 'posted' ? SLACK_REF : null,
      });
      const memo = async () => (await handle.describe()).memo?.[VIEW_MEMO_KEY];
      // The memo holds the current view, the settled post included (readers without a worker see it).
      expect(await memo()).toEqual(view);
      // The notification changes nothing on screen: no update until the decision.
      await handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] });
      const final = await handle.result();
      expect(final.notification).toEqual(notification);
      expect(await memo()).toEqual(final);
      expect(mocks.calls.updateRequestMessage.map((c) => c.state.status)).toEqual(
        outcome.slack === 'posted' ? ['approved'] : [],
      );
    });
  });

  test('params the message could not show go to its thread once per payload hash', async () => {
    const mocks = mockActivities({
      postRequestMessage: async (input) => {
        mocks.calls.postRequestMessage.push(input);
        return { slack: 'posted', ...SLACK_REF, paramsCut: true };
      },
      updateRequestMessage: async (input) => {
        mocks.calls.updateRequestMessage.push(input);
        return { paramsCut: true };
      },
    });
    const plan = makePlan({
      minApprovals: 3,
      overrides: { allowed: true, keys: ['steps'], schema: null, maxKeys: 10, maxChars: 100 },
    });
    await withWorker({ env, bundle, mocks }, async (taskQueue) => {
      const handle = await start(await approvalInput(env, { plan }), taskQueue);
      // Posted first: an approval that lands before the post is shown by the post itself (no update follows).
      await eventually(query(handle), (v) => v.notification.slack === 'posted');
      const first = await handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] });
      await eventually(query(handle), () => mocks.calls.updateRequestMessage.length > 0);
      const edited = await handle.executeUpdate(approveWithEditsUpdate, {
        args: [{ userId: 'U_BOB', changes: { steps: 9 } }],
      });
      await handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] });
      await handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_CAROL' }] });
      await handle.result();
      expect(mocks.calls.updateRequestMessage.length).toBeGreaterThan(1);
      expect(mocks.calls.postParamsThread.map((c) => [c.state.payloadHash, c.ref])).toEqual([
        [first.payloadHash, SLACK_REF],
        [edited.payloadHash, SLACK_REF],
      ]);
    });
  });

  test('a post that fails for good (retries exhausted) ends as failed with its error; decisions still work', async () => {
    const recorder = eventRecorder();
    const mocks = mockActivities({
      postRequestMessage: async () => {
        throw ApplicationFailure.nonRetryable('chat.postMessage failed: ratelimited', 'slack_unavailable');
      },
    });
    await withWorker({ env, bundle, mocks, sinks: recorder.sinks }, async (taskQueue) => {
      const handle = await start(await approvalInput(env), taskQueue);
      await eventually(query(handle), (v) => v.notification.slack === 'failed');
      expect(await handle.executeUpdate(denyUpdate, { args: [{ userId: 'U_BOB' }] })).toMatchObject({
        status: 'denied',
        notification: { slack: 'failed', error: 'chat.postMessage failed: ratelimited' },
      });
      await handle.result();
      expect(recorder.types()).toEqual(['request_created', 'notification_failed', 'request_denied']);
    });
  });
});

describe('the memo', () => {
  test('every change writes the view there; a view too large for it is written empty (readers query)', async () => {
    await withWorker({ env, bundle }, async (taskQueue) => {
      const small = await start(await approvalInput(env), taskQueue);
      const large = await start(
        await approvalInput(env, { request: makeRequest({ params: { script: 'x'.repeat(20_000) } }) }),
        taskQueue,
      );
      // Both decided, then both seen closed, before either result is awaited: awaiting a result skips the clock, to
      // the other's expiry while its task after the decision (the final Slack update and the archive) still runs.
      for (const handle of [small, large]) await handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] });
      for (const handle of [small, large]) {
        const closed = async () => ((await handle.describe()).status.name === 'RUNNING' ? undefined : true);
        await untilDefined(closed, { timeoutMs: 15_000, intervalMs: 20, what: 'the request closed' });
      }
      await Promise.all([small.result(), large.result()]);
      const memos = async (handle: Handle) =>
        ((await handle.fetchHistory()).events ?? [])
          .filter((e) => Number(e.eventType) === EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED)
          .map((e) => e.workflowPropertiesModifiedEventAttributes?.upsertedMemo?.fields?.[VIEW_MEMO_KEY])
          .map((payload) =>
            payload ? env.client.options.loadedDataConverter.payloadConverter.fromPayload(payload) : 'absent',
          );
      const smallMemos = (await memos(small)) as RequestView[];
      expect(smallMemos.map((v) => v.status)).toContain('approved');
      expect(await memos(large)).toEqual(smallMemos.map(() => undefined));
      expect((await large.describe()).memo?.[VIEW_MEMO_KEY]).toBeUndefined();
    });
  });
});
