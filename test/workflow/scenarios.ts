/**
 * The recorded replay scenarios: each drives one request through a path of the workflow, and
 * `test/fixtures/histories/<name>.json` is a history of that run (`npx tsx test/fixtures/histories/record.ts`).
 * Together they cover every command the workflow issues: timers, local activities and the normal ones they fall back
 * to, memo and search-attribute upserts, Updates and Signals (refused, replayed), a failed Slack post.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { approvalWorkflow } from '../../workflows/approval.js';
import { SLOW_SLACK_MS } from '../../workflows/request.js';
import {
  adminDecisionUpdate,
  approveSignal,
  approveUpdate,
  approveWithEditsUpdate,
  cancelSignal,
  denySignal,
  personaAckSignal,
  personaAckUpdate,
  stateQuery,
  type ApprovalInput,
  type RequestView,
} from '../../workflows/messages.js';
import { makePlan } from '../fixtures/plans.js';
import { approvalInput, eventually, mockActivities, SLACK_REF, type ActivityMocks } from './harness.js';

type Handle = WorkflowHandle<typeof approvalWorkflow>;

export interface Scenario {
  name: string;
  /** The activities the run gets (the default mocks unless the scenario needs Slack to behave otherwise). */
  mocks?: () => ActivityMocks;
  input(env: TestWorkflowEnvironment): Promise<ApprovalInput>;
  /** Drives the started request to its end. */
  drive(env: TestWorkflowEnvironment, handle: Handle): Promise<void>;
  /** What the final view must show (top-level fields). */
  final: Partial<RequestView>;
  /** Event types the history must contain: what this scenario is there to cover. */
  covers: string[];
}

const EDITABLE = { allowed: true, keys: ['steps'], schema: null, maxKeys: 10, maxChars: 100 };
const clickFrom = (user: string, clickId: string) => ({ clickId, replyTo: { channel: SLACK_REF.channel, user } });

/** Moves the test server's clock to `atMs` (it never moves backwards). */
async function sleepUntil(env: TestWorkflowEnvironment, atMs: number): Promise<void> {
  const ms = atMs - (await env.currentTimeMs());
  if (ms > 0) await env.sleep(ms);
}

const posted = (handle: Handle) =>
  eventually(
    () => handle.query(stateQuery),
    (v) => v.notification.slack !== 'pending',
  );

export const SCENARIOS: Scenario[] = [
  {
    name: 'approve-with-personas',
    input: (env) =>
      approvalInput(env, {
        plan: makePlan({ minApprovals: 2, personas: [{ name: 'DBA', members: ['U_DBA'] }] }),
        timeoutSec: 24 * 3600,
      }),
    async drive(_env, handle) {
      await handle.executeUpdate(personaAckUpdate, { args: [{ persona: 'DBA', userId: 'U_DBA' }] });
      await handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] });
      await handle.signal(approveSignal, { userId: 'U_BOB', ...clickFrom('U_BOB', 'click-bob') });
    },
    final: { status: 'approved', decidedBy: 'U_BOB', notification: { slack: 'posted' } },
    covers: ['EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED', 'EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED'],
  },
  {
    name: 'overrides',
    // The message cannot show the params in full: they go to its thread, once per payload hash.
    mocks: () =>
      mockActivities({
        postRequestMessage: async () => ({ slack: 'posted', ...SLACK_REF, paramsCut: true }),
        updateRequestMessage: async () => ({ paramsCut: true }),
      }),
    input: (env) => approvalInput(env, { plan: makePlan({ minApprovals: 2, overrides: EDITABLE }) }),
    async drive(_env, handle) {
      await posted(handle);
      const first = await handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] });
      const edited = await handle.executeUpdate(approveWithEditsUpdate, {
        args: [{ userId: 'U_BOB', changes: { steps: 7 } }],
      });
      // Alice's click on the old message is refused; her click on the new one decides.
      await handle.signal(approveSignal, {
        userId: 'U_ALICE',
        seenPayloadHash: first.payloadHash,
        ...clickFrom('U_ALICE', 'stale'),
      });
      await handle.signal(approveSignal, {
        userId: 'U_ALICE',
        seenPayloadHash: edited.payloadHash,
        ...clickFrom('U_ALICE', 'fresh'),
      });
    },
    final: { status: 'approved', effectiveParams: { database: 'orders', steps: 7 }, decidedBy: 'U_ALICE' },
    covers: ['EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED', 'EVENT_TYPE_MARKER_RECORDED'],
  },
  {
    name: 'escalation',
    input: (env) =>
      approvalInput(env, {
        timeoutSec: 6 * 3600,
        plan: makePlan({
          timeoutSec: 6 * 3600,
          escalation: { escalateBeforeSec: 3600, channel: 'C_ESC', minApprovals: 2 },
        }),
      }),
    async drive(env, handle) {
      const { expiresAt } = await handle.query(stateQuery);
      await sleepUntil(env, Date.parse(expiresAt) - 3600_000 + 1000);
      await eventually(
        () => handle.query(stateQuery),
        (v) => v.escalated,
      );
      await handle.signal(approveSignal, { userId: 'U_ALICE', ...clickFrom('U_ALICE', 'a') });
      await handle.signal(approveSignal, { userId: 'U_BOB', ...clickFrom('U_BOB', 'b') });
    },
    final: { status: 'approved', escalated: true, minApprovals: 2, decidedBy: 'U_BOB' },
    covers: ['EVENT_TYPE_TIMER_FIRED', 'EVENT_TYPE_TIMER_CANCELED'],
  },
  {
    name: 'expiry',
    input: (env) =>
      approvalInput(env, {
        timeoutSec: 7 * 24 * 3600,
        plan: makePlan({ personas: [{ name: 'Security', members: ['U_SEC'] }] }),
      }),
    async drive(_env, handle) {
      await handle.signal(personaAckSignal, {
        persona: 'Security',
        userId: 'U_SEC',
        ...clickFrom('U_SEC', 'ack'),
      });
    },
    final: { status: 'expired', decidedBy: 'system', escalated: false },
    covers: ['EVENT_TYPE_TIMER_FIRED', 'EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED'],
  },
  {
    name: 'cancel',
    input: (env) => approvalInput(env),
    async drive(_env, handle) {
      await posted(handle);
      await handle.signal(cancelSignal, { actor: 'U_REQ', reason: 'wrong branch' });
    },
    final: { status: 'cancelled', decidedBy: 'U_REQ', reason: 'wrong branch' },
    covers: ['EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED', 'EVENT_TYPE_TIMER_CANCELED'],
  },
  {
    name: 'refused-clicks',
    input: (env) =>
      approvalInput(env, { plan: makePlan({ minApprovals: 2, approvers: ['U_ALICE', 'U_BOB', 'U_REQ'] }) }),
    async drive(_env, handle) {
      await handle.signal(approveSignal, { userId: 'U_MALLORY', ...clickFrom('U_MALLORY', 'm1') });
      await handle.signal(approveSignal, { userId: 'U_REQ', ...clickFrom('U_REQ', 'r1') });
      await handle.signal(approveSignal, { userId: 'U_ALICE', ...clickFrom('U_ALICE', 'a1') });
      await handle.signal(approveSignal, { userId: 'U_ALICE', ...clickFrom('U_ALICE', 'a2') });
      // A replayed delivery: the same click id again, applied never.
      await handle.signal(approveSignal, { userId: 'U_ALICE', ...clickFrom('U_ALICE', 'a1') });
      await handle.signal(denySignal, { userId: 'U_BOB', reason: 'not now', ...clickFrom('U_BOB', 'b1') });
    },
    final: { status: 'denied', decidedBy: 'U_BOB', reason: 'not now' },
    covers: ['EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED', 'EVENT_TYPE_MARKER_RECORDED'],
  },
  {
    name: 'slack-failure',
    mocks: () =>
      mockActivities({
        postRequestMessage: async () => {
          throw ApplicationFailure.nonRetryable(
            'chat.postMessage failed: channel_not_found',
            'slack_channel_not_found',
          );
        },
      }),
    input: (env) =>
      approvalInput(env, {
        plan: makePlan({ escalation: { escalateBeforeSec: 600, channel: 'C_ESC', minApprovals: null } }),
      }),
    async drive(env, handle) {
      const { expiresAt } = await posted(handle);
      await sleepUntil(env, Date.parse(expiresAt) - 300_000);
      await eventually(
        () => handle.query(stateQuery),
        (v) => v.escalated,
      );
      await handle.executeUpdate(adminDecisionUpdate, { args: [{ decision: 'approve', actor: 'admin:ops' }] });
    },
    final: {
      status: 'approved',
      decidedBy: 'admin:ops',
      slack: null,
      notification: { slack: 'failed', error: 'chat.postMessage failed: channel_not_found' },
    },
    covers: ['EVENT_TYPE_MARKER_RECORDED', 'EVENT_TYPE_TIMER_FIRED'],
  },
  {
    name: 'slow-slack',
    // Slack took SLOW_SLACK_MS to take the post: the decision is recorded in a task of its own (a 1 ms timer), and
    // the final update and the archive run in the next.
    mocks: () => {
      const base = mockActivities();
      return {
        ...base,
        activities: {
          ...base.activities,
          postRequestMessage: async (input) => ({
            ...(await base.activities.postRequestMessage(input)),
            postMs: SLOW_SLACK_MS,
          }),
        },
      };
    },
    input: (env) => approvalInput(env),
    async drive(_env, handle) {
      await posted(handle);
      await handle.signal(approveSignal, { userId: 'U_ALICE', ...clickFrom('U_ALICE', 'a') });
    },
    final: { status: 'approved', decidedBy: 'U_ALICE', notification: { slack: 'posted' } },
    covers: ['EVENT_TYPE_TIMER_STARTED', 'EVENT_TYPE_TIMER_FIRED'],
  },
  {
    name: 'slack-down',
    // Slack fails the local attempts: every call goes on as a normal activity, whose retries get it through.
    mocks: () => {
      const base = mockActivities();
      const viaActivity =
        <I, O>(fn: (input: I) => Promise<O>) =>
        async (input: I): Promise<O> => {
          if (Context.current().info.isLocal) throw ApplicationFailure.retryable('Slack is down', 'slack_unavailable');
          return fn(input);
        };
      return {
        ...base,
        activities: {
          ...base.activities,
          postRequestMessage: viaActivity(base.activities.postRequestMessage),
          updateRequestMessage: viaActivity(base.activities.updateRequestMessage),
          tellRefusal: viaActivity(base.activities.tellRefusal),
        },
      };
    },
    input: (env) => approvalInput(env),
    async drive(_env, handle) {
      await posted(handle);
      await handle.signal(approveSignal, { userId: 'U_MALLORY', ...clickFrom('U_MALLORY', 'm') });
      await handle.signal(approveSignal, { userId: 'U_ALICE', ...clickFrom('U_ALICE', 'a') });
    },
    final: { status: 'approved', decidedBy: 'U_ALICE', notification: { slack: 'posted' } },
    covers: ['EVENT_TYPE_ACTIVITY_TASK_SCHEDULED', 'EVENT_TYPE_ACTIVITY_TASK_COMPLETED'],
  },
];

/** Starts a scenario's request on `taskQueue` and drives it to the end. */
export async function runScenario(
  env: TestWorkflowEnvironment,
  scenario: Scenario,
  taskQueue: string,
): Promise<{ handle: Handle; final: RequestView }> {
  const input = await scenario.input(env);
  const handle = await env.client.workflow.start<typeof approvalWorkflow>('approvalWorkflow', {
    taskQueue,
    workflowId: input.requestId,
    args: [input],
  });
  await scenario.drive(env, handle);
  return { handle, final: await handle.result() };
}

/** The fields of `scenario.final` the view does not show, as `field: got ≠ expected` lines (empty: all shown). */
export function mismatches(scenario: Scenario, view: RequestView): string[] {
  return Object.entries(scenario.final).flatMap(([key, want]) => {
    const got = JSON.stringify(view[key as keyof RequestView]);
    return got === JSON.stringify(want) ? [] : [`${key}: ${got} ≠ ${JSON.stringify(want)}`];
  });
}
