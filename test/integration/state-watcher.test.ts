/**
 * A waiter parked on one API replica hears changes made through another: the replica learns them from the request's
 * history alone (Update results, the workflow's result) or, for changes the history carries no state of (timers,
 * signals), by reading the state once their workflow task completed.
 */
import { eventually } from '../helpers/eventually.js';
import type { ApiServer } from '../../service/api-server.js';
import { approveSignal } from '../../workflows/messages.js';
import { approvedBy, standardPolicy, startApi, TEST_ACTIONS } from './fixtures.js';
import { startHarness, type Harness } from './harness.js';
import { workflowIdOf } from '../../gateway/ids.js';

const POLICY = standardPolicy({
  ...TEST_ACTIONS,
  escalating_fast: approvedBy(['U_ALICE', 'U_BOB'], 1, {
    timeoutSec: 5,
    escalation: { escalateBeforeSec: 2, escalationChannel: 'C_ESCALATIONS', escalateMinApprovals: 2 },
  }),
});

let h: Harness;
let replica: ApiServer;

beforeAll(async () => {
  h = await startHarness({ policy: POLICY });
  replica = await startApi(h.config);
}, 60_000);

afterAll(async () => {
  await replica?.close();
  await h?.close();
});

interface WaitBody {
  status: string;
  version: number;
  approvers: string[];
  escalated: boolean;
  minApprovals: number;
  terminal: boolean;
}

/** One long-poll on the replica, answered at the next change it hears of. */
async function waitOnReplica(token: string, timeoutSec = 20): Promise<WaitBody> {
  const res = await fetch(`${replica.url}/api/guard/wait?token=${encodeURIComponent(token)}&timeoutSec=${timeoutSec}`);
  expect(res.status).toBe(200);
  return (await res.json()) as WaitBody;
}

/** Resolves once the replica has a waiter following the request, so the change below happens while it waits. */
async function parked(requestId: string): Promise<void> {
  await eventually(() => (replica.gateway.listenerCount(requestId) > 0 ? true : undefined), {
    timeoutMs: 10_000,
    intervalMs: 20,
    what: 'the long-poll to be parked on the replica',
  });
}

test('an approval made through another replica reaches the waiter, vote by vote', async () => {
  const req = await h.create('quorum2');
  const first = waitOnReplica(req.token);
  await parked(req.requestId);
  await h.click('approve', req.requestId, 'U_ALICE');
  expect(await first).toMatchObject({ status: 'ready_for_approval', approvers: ['U_ALICE'], terminal: false });

  const second = waitOnReplica(req.token);
  await parked(req.requestId);
  await h.click('approve', req.requestId, 'U_BOB');
  expect(await second).toMatchObject({ status: 'approved', approvers: ['U_ALICE', 'U_BOB'], terminal: true });
});

test('a refused click wakes nobody: the waiter hears the next real change only', async () => {
  const req = await h.create('simple');
  const waiting = waitOnReplica(req.token);
  await parked(req.requestId);
  const refused = await h.click('approve', req.requestId, 'U_MALLORY');
  expect(await h.outcomeOf(refused)).toMatchObject({ ok: false, error: 'not_authorized' });
  await h.click('deny', req.requestId, 'U_BOB');
  expect(await waiting).toMatchObject({ status: 'denied', terminal: true });
});

test('escalation and expiry (timers) reach a waiter on another replica', async () => {
  const req = await h.create('escalating_fast');
  const escalated = await waitOnReplica(req.token);
  expect(escalated).toMatchObject({ status: 'ready_for_approval', escalated: true, minApprovals: 2 });
  const expired = escalated.terminal ? escalated : await waitOnReplica(req.token);
  expect(expired).toMatchObject({ status: 'expired', escalated: true, terminal: true });
}, 30_000);

test('a vote sent as a signal (the durable fallback) reaches the waiter', async () => {
  const req = await h.create('quorum2');
  const waiting = waitOnReplica(req.token);
  await parked(req.requestId);
  await h.client.workflow.getHandle(workflowIdOf(req.requestId)).signal(approveSignal, { userId: 'U_ALICE' });
  expect(await waiting).toMatchObject({ status: 'ready_for_approval', approvers: ['U_ALICE'], terminal: false });
});
