/**
 * A message that cannot be posted is never silent (issue 14 item 4), end to end: the workflow records what the Slack
 * activities answered and the API shows it in `status` as `notification` (SPEC section 10).
 * Lands once the workflow stores `notification` and calls postParamsThread, and the API carries `notification`.
 */
import { eventually } from '../helpers/eventually.js';
import { approvedBy, policyYaml } from './fixtures.js';
import { startHarness, type Harness } from './harness.js';
import { counter } from './slack-support.js';

const POLICY = policyYaml({
  routing: { defaultChannel: 'C0GONE', dmFallbackUser: 'U0OPS' },
  actions: {
    lost: approvedBy(['U0ALICE'], 1),
    here: approvedBy(['U0ALICE'], 1, { channel: 'C0HERE' }),
  },
});

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ policy: POLICY });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const notificationOf = async (requestId: string) =>
  (await h.get(`/api/guard/status?requestId=${requestId}`)).body.notification as
    { slack: string; error?: string; permalink?: string; fallback?: string } | undefined;
const settled = (requestId: string) =>
  eventually(
    async () => {
      const n = await notificationOf(requestId);
      return n && n.slack !== 'pending' ? n : undefined;
    },
    { timeoutMs: 10_000, what: 'the notification to settle' },
  );

test('the channel does not exist and neither does the DM user: status says failed within seconds', async () => {
  h.fakeSlack.setChannel('C0GONE', { exists: false });
  h.fakeSlack.setUser('U0OPS', { exists: false });
  const started = Date.now();
  const req = await h.create('lost');
  const n = await settled(req.requestId);
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(n).toEqual({ slack: 'failed', error: expect.stringContaining('channel_not_found') });
  await eventually(
    async () => ((await counter(h, 'slack_notification_failures_total', { action: 'lost' })) === 1 ? true : undefined),
    { timeoutMs: 10_000, what: 'the failure counted' },
  );
  expect(h.audit.lines()).toContainEqual(
    expect.objectContaining({ event: 'notification_failed', requestId: req.requestId }),
  );
});

test('the channel does not exist: the request goes to routing.dmFallbackUser, with its permalink', async () => {
  h.fakeSlack.setChannel('C0GONE', { exists: false });
  h.fakeSlack.setUser('U0OPS', { exists: true });
  const req = await h.create('lost');
  const n = await settled(req.requestId);
  expect(n).toMatchObject({ slack: 'posted', fallback: 'dm', permalink: expect.stringContaining('/archives/D0OPS/') });
});

test('posted where the policy routes it: the permalink, and params too long for the message in its thread', async () => {
  const params = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, i === 5 ? 'v'.repeat(8192) : i]));
  const req = await h.create('here', { params });
  const n = await settled(req.requestId);
  expect(n).toMatchObject({ slack: 'posted', permalink: expect.stringContaining('/archives/C0HERE/') });
  expect(n?.fallback).toBeUndefined();
  const root = [...h.fakeSlack.messages.values()].find(
    (m) => m.channel === 'C0HERE' && !m.thread_ts && JSON.stringify(m.blocks).includes(req.requestId),
  )!;
  const code = await eventually(
    () => {
      const parts = h.fakeSlack
        .threadReplies('C0HERE', root.ts)
        .flatMap((m) => m.blocks as Array<{ block_id?: string; text?: { text: string } }>)
        .filter((b) => b.block_id?.startsWith('params_'))
        .map((b) => b.text!.text.slice(3, -3).replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'));
      return parts.length > 0 ? parts.join('') : undefined;
    },
    { timeoutMs: 10_000, what: 'the params in the thread' },
  );
  expect(JSON.parse(code)).toEqual(params);
});
