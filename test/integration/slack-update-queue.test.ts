/**
 * SLACK_UPDATE_QUEUE=true: a burst of changes to one message becomes one chat.update, and a rate-limited channel
 * holds its waiting updates back (counted in slack_update_queue_depth) instead of sending them into the limit.
 */
import { startHarness, type Harness } from './harness.js';
import { eventually, textOf, waitForMessage } from './slack-support.js';

const WINDOW_MS = 2000;
const POLICY = `
routing:
  defaultChannel: C_APPROVALS
actions:
  burst:
    approvers: { allowSlackIds: [U0A, U0B, U0C, U0D], minApprovals: 4 }
  simple:
    approvers: { allowSlackIds: [U0A], minApprovals: 1 }
`;

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    policy: POLICY,
    env: { SLACK_UPDATE_QUEUE: 'true', SLACK_UPDATE_QUEUE_WINDOW_MS: String(WINDOW_MS) },
  });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const updatesOf = (ts: string) => h.fakeSlack.callsOf('chat.update').filter((c) => c.args.ts === ts);
const depth = async () => (await h.metrics.slackUpdateQueueDepth.get()).values[0]?.value ?? 0;

test('a burst of approvals to one message goes out as one update; the decision right after it', async () => {
  const req = await h.create('burst');
  const m = await waitForMessage(h, req.requestId);
  const clicks = await Promise.all(['U0A', 'U0B', 'U0C'].map((u) => h.click('approve', req.requestId, u)));
  expect((await Promise.all(clicks.map((c) => h.outcomeOf(c)))).map((o) => o.ok)).toEqual([true, true, true]);
  const shown = await waitForMessage(h, req.requestId, (x) => textOf(x).includes('Approvals: 3 of 4'));
  // Had any approval gone out on its own, an update showing 1 or 2 of 4 would precede this one.
  expect(updatesOf(m.ts)).toHaveLength(1);
  expect(shown.updates).toBe(1);

  await h.click('approve', req.requestId, 'U0D');
  const done = await waitForMessage(h, req.requestId, (x) => textOf(x).includes('*Approved* by <@U0D>'));
  expect(updatesOf(m.ts)).toHaveLength(2);
  expect(done.updates).toBe(2);
}, 40_000);

test('a 429 pauses the channel: other updates wait in the queue (depth > 0) until Retry-After has passed', async () => {
  const first = await h.create('simple');
  const second = await h.create('simple');
  const m1 = await waitForMessage(h, first.requestId);
  const m2 = await waitForMessage(h, second.requestId);
  h.fakeSlack.failNext('chat.update', { status: 429, retryAfterSec: 4 });
  await h.click('approve', first.requestId, 'U0A');
  const limited = await h.fakeSlack.waitFor((c) => c.method === 'chat.update' && c.status === 429, 15_000);
  expect(limited.args.ts).toBe(m1.ts);

  await h.click('approve', second.requestId, 'U0A');
  await eventually(async () => (await depth()) >= 1, 10_000);
  const done2 = await waitForMessage(h, second.requestId, (x) => textOf(x).includes('*Approved*'));
  const sent2 = updatesOf(m2.ts).find((c) => c.status === 200);
  expect(sent2!.at - limited.at).toBeGreaterThanOrEqual(3500);
  expect(done2.updates).toBe(1);
  await waitForMessage(h, first.requestId, (x) => textOf(x).includes('*Approved*'));
  await eventually(async () => (await depth()) === 0);
}, 40_000);
