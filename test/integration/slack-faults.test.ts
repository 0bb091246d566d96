/**
 * Slack misbehaving: rate limits (429 + Retry-After), outages (5xx for a while) and permanent errors. Decisions
 * never wait for Slack, nothing is lost, and the message ends up right once Slack answers again.
 */
import proto from '@temporalio/proto';
import { workflowIdOf } from '../../gateway/ids.js';
import { VIEW_MEMO_KEY } from '../../workflows/messages.js';
import { localActivityType } from '../helpers/history.js';
import { approvedBy, policyYaml } from './fixtures.js';
import { startHarness, type Harness } from './harness.js';
import { actionIds, counter, eventually, textOf, waitForMessage } from './slack-support.js';

const POLICY = policyYaml({
  routing: { defaultChannel: 'C_APPROVALS' },
  personas: { DBA: ['U0DBA'] },
  actions: {
    simple: approvedBy(['U0ALICE', 'U0BOB'], 1),
    quorum2: approvedBy(['U0ALICE', 'U0BOB', 'U0CAROL'], 2),
    personas: approvedBy(['U0ALICE', 'U0BOB'], 1, { personasRequired: ['DBA', 'Security'] }),
  },
});

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ policy: POLICY });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const calls = (method: string) => h.fakeSlack.callsOf(method);
const slackCalls = (method: string, outcome: string) => counter(h, 'slack_api_calls_total', { method, outcome });
const wait = async (token: string) =>
  (await h.get(`/api/guard/wait?token=${encodeURIComponent(token)}&timeoutSec=20`)).body;

describe('429 with Retry-After', () => {
  test('chat.postMessage: retried after the Retry-After delay, posted once, both calls counted', async () => {
    const limited = await slackCalls('chat.postMessage', 'rate_limited');
    const since = Date.now();
    h.fakeSlack.failNext('chat.postMessage', { status: 429, retryAfterSec: 1 });
    const req = await h.create('simple');
    const m = await waitForMessage(h, req.requestId);
    const posts = calls('chat.postMessage').filter((c) => c.at >= since);
    expect(posts.map((c) => c.status)).toEqual([429, 200]);
    const [first, second] = posts;
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(900);
    expect(m.channel).toBe('C_APPROVALS');
    expect(actionIds(m)).toEqual(['approve', 'deny']);
    expect(await slackCalls('chat.postMessage', 'rate_limited')).toBe(limited + 1);
  });

  test('chat.update: the decision shows after the retry', async () => {
    const req = await h.create('simple');
    const m = await waitForMessage(h, req.requestId);
    const since = Date.now();
    h.fakeSlack.failNext('chat.update', { status: 429, retryAfterSec: 1 });
    expect(await h.clickOutcome('approve', req.requestId, 'U0ALICE')).toMatchObject({
      ok: true,
      status: 'approved',
    });
    await waitForMessage(h, req.requestId, (x) => textOf(x).includes('*Approved* by <@U0ALICE>'));
    const updates = calls('chat.update').filter((c) => c.at >= since && c.args.ts === m.ts);
    expect(updates.map((c) => c.status)).toEqual([429, 200]);
    expect(updates[1]!.at - updates[0]!.at).toBeGreaterThanOrEqual(900);
  });
});

describe('Slack down for a while', () => {
  test('before the message is posted: decisions go through, then the message appears in its final state', async () => {
    const errors = await slackCalls('chat.postMessage', 'error');
    const since = Date.now();
    h.fakeSlack.failFor('chat.postMessage', { status: 503 }, 4000);
    h.fakeSlack.failFor('chat.update', { status: 503 }, 4000);
    const req = await h.create('quorum2');
    expect(await h.clickOutcome('approve', req.requestId, 'U0ALICE')).toMatchObject({ ok: true });
    expect(await h.clickOutcome('approve', req.requestId, 'U0BOB')).toMatchObject({
      ok: true,
      status: 'approved',
    });
    const final = await wait(req.token);
    expect(final).toMatchObject({ status: 'approved', approvers: ['U0ALICE', 'U0BOB'], decidedBy: 'U0BOB' });

    const m = await waitForMessage(h, req.requestId, (x) => textOf(x).includes('*Approved* by <@U0BOB>'), 40_000);
    expect(textOf(m)).toContain('Approvals: 2 of 2');
    expect(actionIds(m)).toEqual([]);
    const failed = calls('chat.postMessage').filter((c) => c.at >= since && c.status === 503);
    expect(failed.length).toBeGreaterThanOrEqual(1);
    expect(calls('chat.postMessage').filter((c) => c.at >= since && c.status === 200)).toHaveLength(1);
    expect(await slackCalls('chat.postMessage', 'error')).toBeGreaterThanOrEqual(errors + failed.length);
  }, 60_000);

  test('after the message is up: every ack and the approval land, the message catches up', async () => {
    const req = await h.create('personas');
    const m = await waitForMessage(h, req.requestId);
    const since = Date.now();
    h.fakeSlack.failFor('chat.update', { status: 502 }, 4000);
    expect(await h.clickOutcome('persona_ack:DBA', req.requestId, 'U0DBA')).toMatchObject({ ok: true });
    expect(await h.clickOutcome('persona_ack:Security', req.requestId, 'U0BOB')).toMatchObject({
      ok: true,
      status: 'ready_for_approval',
    });
    expect(await h.clickOutcome('approve', req.requestId, 'U0ALICE')).toMatchObject({
      ok: true,
      status: 'approved',
    });
    const done = await waitForMessage(h, req.requestId, (x) => textOf(x).includes('*Approved* by <@U0ALICE>'), 40_000);
    expect(done.ts).toBe(m.ts);
    expect(textOf(done)).toContain('DBA* acknowledged by <@U0DBA>');
    expect(textOf(done)).toContain('Security* acknowledged by <@U0BOB>');
    expect(actionIds(done)).toEqual([]);
    const updates = calls('chat.update').filter((c) => c.at >= since && c.args.ts === m.ts);
    expect(updates.some((c) => c.status === 502)).toBe(true);
    expect(updates.at(-1)?.status).toBe(200);
  }, 60_000);
});

describe('permanent Slack errors', () => {
  test('are not retried; the next change renders the message again', async () => {
    const req = await h.create('quorum2');
    const m = await waitForMessage(h, req.requestId);
    const since = Date.now();
    h.fakeSlack.failNext('chat.update', { ok: false, error: 'cant_update_message' });
    await h.click('approve', req.requestId, 'U0ALICE');
    await h.fakeSlack.waitFor((c) => c.method === 'chat.update' && c.at >= since && c.args.ts === m.ts, 10_000);
    await h.click('approve', req.requestId, 'U0BOB');
    const done = await waitForMessage(h, req.requestId, (x) => textOf(x).includes('*Approved* by <@U0BOB>'));
    const updates = calls('chat.update').filter((c) => c.at >= since && c.args.ts === m.ts);
    // One refused call (not retried: the same content is not sent twice), then the final state.
    expect(updates.map((c) => (c.response as { ok: boolean }).ok)).toEqual([false, true]);
    expect(textOf(done)).toContain('Approvals: 2 of 2');
    await eventually(async () => (await slackCalls('chat.update', 'error')) >= 1);
  });
});

describe('Slack slow (every Web API call answered after 300 ms)', () => {
  const LATENCY_MS = 300;
  let slow: Harness;
  beforeAll(async () => {
    slow = await startHarness({ policy: POLICY, slackLatencyMs: LATENCY_MS });
  }, 60_000);
  afterAll(async () => {
    await slow?.close();
  });

  test('the agent hears the decision before Slack answers the update; the message shows it after', async () => {
    const req = await slow.create('simple');
    await waitForMessage(slow, req.requestId);
    const waiting = slow
      .get(`/api/guard/wait?token=${encodeURIComponent(req.token)}&timeoutSec=20`)
      .then((res) => ({ body: res.body, at: Date.now() }));
    // The long-poll is held before the click.
    await new Promise((done) => setTimeout(done, 100));
    expect(await slow.clickOutcome('approve', req.requestId, 'U0ALICE')).toMatchObject({
      ok: true,
      status: 'approved',
    });
    const told = await waiting;
    expect(told.body).toMatchObject({ status: 'approved' });
    const m = await waitForMessage(slow, req.requestId, (x) => textOf(x).includes('*Approved* by <@U0ALICE>'));
    const update = slow.fakeSlack.callsOf('chat.update').find((c) => c.args.ts === m.ts);
    // Slack took the update after the agent was told, or answered it LATENCY_MS after it arrived: either way the
    // agent did not wait for Slack's answer.
    expect(told.at).toBeLessThan(update!.at + LATENCY_MS);

    // The history: the decision's memo, then the 1 ms timer's firing, then the update's and the archive's markers.
    const { EventType } = proto.temporal.api.enums.v1;
    const handle = slow.client.workflow.getHandle(workflowIdOf(req.requestId));
    await handle.result();
    const events = (await handle.fetchHistory()).events ?? [];
    const converter = slow.client.options.loadedDataConverter.payloadConverter;
    const decidedAt = events.findIndex((e) => {
      const memo = e.workflowPropertiesModifiedEventAttributes?.upsertedMemo?.fields?.[VIEW_MEMO_KEY];
      return memo && (converter.fromPayload(memo) as { status?: string } | null)?.status === 'approved';
    });
    const firedAt = events.findIndex((e) => Number(e.eventType) === EventType.EVENT_TYPE_TIMER_FIRED);
    const markers = events.flatMap((e, i) => {
      const type = localActivityType(e);
      return type ? [{ i, type }] : [];
    });
    expect(decidedAt).toBeGreaterThan(0);
    expect(firedAt).toBeGreaterThan(decidedAt);
    // (In the order they finished: the archive first, Slack being slow.)
    expect(
      markers
        .filter((x) => x.i > firedAt)
        .map((x) => x.type)
        .sort(),
    ).toEqual(['archiveRequest', 'updateRequestMessage']);
    expect(markers.filter((x) => x.i < firedAt).map((x) => x.type)).toEqual(['postRequestMessage']);
  });
});
