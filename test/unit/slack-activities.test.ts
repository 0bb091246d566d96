/**
 * The Slack activities (activities/slack.ts) against the strict fake Slack through the real WebClient: where the
 * request is posted and what falls back to what (issue 14 item 4), the thread that carries what the message cuts
 * (item 3), the permalink, and which failures are retried.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { LogLevel, WebClient } from '@slack/web-api';
import { createSlackActivities, type SlackActivities } from '../../activities/slack.js';
import { FAKE_TEAM, startFakeSlack, type FakeSlack } from '../../dev/fake-slack.js';
import type { Plan } from '../../domain/plan.js';
import { initialState, reduce, type RequestState } from '../../domain/request-state.js';
import { messageViolations } from '../../domain/slack-limits.js';
import { PARAMS_BLOCK_PREFIX } from '../../domain/slack-message.js';
import type { CreateRequest } from '../../domain/request-schema.js';
import { createMetrics } from '../../observability/metrics.js';
import type { MessageInput, PostOutcome } from '../../workflows/messages.js';
import { makePlan, makeRequest } from '../fixtures/plans.js';

let fake: FakeSlack;
let activities: SlackActivities;
// The refusals these tests provoke are asserted, not logged (the SDK's default logger prints them at WARN).
const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args);

beforeAll(async () => {
  fake = await startFakeSlack();
  const slack = new WebClient('xoxb-test', {
    slackApiUrl: fake.url,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    logLevel: LogLevel.ERROR,
  });
  activities = createSlackActivities({ slack, metrics: createMetrics() });
});
afterEach(() => {
  // Every refusal in these tests is one the test declared or injected.
  expect(fake.unexpectedRefusals()).toEqual([]);
  fake.reset();
});
afterAll(() => fake.close());

function input(plan: Partial<Plan> = {}, request: Partial<CreateRequest> = {}): MessageInput {
  const p = makePlan({ channel: 'C0APPROVALS', ...plan });
  const r = makeRequest(request);
  const state = initialState({
    requestId: 'req_act',
    request: r,
    plan: p,
    createdAt: '2030-01-01T00:00:00.000Z',
    expiresAt: '2030-01-01T01:00:00.000Z',
  });
  return { request: r, plan: p, state };
}

const posted = (o: PostOutcome) => {
  if (o.slack !== 'posted') throw new Error(`not posted: ${JSON.stringify(o)}`);
  return o;
};
const unescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const paramsInThread = (channel: string, ts: string) =>
  JSON.parse(
    fake
      .threadReplies(channel, ts)
      .flatMap((m) => m.blocks as Array<Record<string, unknown>>)
      .filter((b) => String(b.block_id).startsWith(PARAMS_BLOCK_PREFIX))
      .map((b) => unescape((b.text as { text: string }).text.slice(3, -3)))
      .join(''),
  ) as unknown;

describe('postRequestMessage', () => {
  test("answers how long Slack took to take the post (the workflow splits a decision from a slow Slack's update)", async () => {
    expect(posted(await run(activities.postRequestMessage, input())).postMs).toEqual(expect.any(Number));
    const slow = await startFakeSlack({ latencyMs: 150 });
    try {
      const web = new WebClient('xoxb-test', {
        slackApiUrl: slow.url,
        retryConfig: { retries: 0 },
        logLevel: LogLevel.ERROR,
      });
      const onSlow = createSlackActivities({ slack: web, metrics: createMetrics() });
      const out = posted(await run(onSlow.postRequestMessage, input()));
      // The post alone, not the permalink asked after it (with it, 300 ms or more).
      expect(out.postMs).toBeGreaterThanOrEqual(149);
      expect(out.postMs).toBeLessThan(300);
      expect(slow.callsOf('chat.getPermalink')).toHaveLength(1);
    } finally {
      await slow.close();
    }
  });

  test('posts the rich message to the channel and answers its permalink', async () => {
    const out = posted(await run(activities.postRequestMessage, input()));
    expect(out).toMatchObject({ channel: 'C0APPROVALS', ts: expect.any(String) });
    expect(out.fallback).toBeUndefined();
    expect(out.paramsCut).toBeUndefined();
    expect(out.permalink).toBe(
      `https://${FAKE_TEAM.domain}.slack.com/archives/C0APPROVALS/p${out.ts.replace('.', '')}`,
    );
    expect(fake.messages.get(`C0APPROVALS:${out.ts}`)?.blocks[0]).toMatchObject({ type: 'header' });
  });

  test('params too long for the message: paramsCut, and postParamsThread posts them all in the thread', async () => {
    const params = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, i === 3 ? 'v'.repeat(8192) : i]));
    const message = input({}, { params });
    const out = posted(await run(activities.postRequestMessage, message));
    expect(out.paramsCut).toBe(true);
    await run(activities.postParamsThread, { ...message, ref: { channel: out.channel, ts: out.ts } });
    expect(paramsInThread(out.channel, out.ts)).toEqual(params);
  });

  test('the channel does not exist: a DM to routing.dmFallbackUser, fallback dm', async () => {
    fake.setChannel('C0GONE', { exists: false });
    const out = posted(await run(activities.postRequestMessage, input({ channel: 'C0GONE', dmFallbackUser: 'U0OPS' })));
    expect(out).toMatchObject({ channel: 'D0OPS', fallback: 'dm' });
    expect(out.permalink).toContain('/archives/D0OPS/');
  });

  test('nowhere to post: failed, saying what Slack answered for each place', async () => {
    fake.setChannel('C0GONE', { exists: false });
    fake.setUser('U0LEFT', { exists: false });
    const out = await run(activities.postRequestMessage, input({ channel: 'C0GONE', dmFallbackUser: 'U0LEFT' }));
    expect(out).toEqual({
      slack: 'failed',
      error: 'message to C0GONE: channel_not_found; message to U0LEFT: channel_not_found',
    });
  });

  test('the bot is not in the channel and there is no DM fallback: failed, not thrown', async () => {
    fake.setChannel('C0NOBOT', { member: false });
    await expect(run(activities.postRequestMessage, input({ channel: 'C0NOBOT' }))).resolves.toEqual({
      slack: 'failed',
      error: 'message to C0NOBOT: not_in_channel',
    });
  });

  test('Slack refuses the rich message: the minimal one with the buttons, every detail in its thread', async () => {
    fake.failNext('chat.postMessage', { ok: false, error: 'invalid_blocks' });
    const message = input({}, { params: { database: 'orders', note: 'see <!channel>' } });
    const out = posted(await run(activities.postRequestMessage, message));
    expect(out).toMatchObject({ fallback: 'minimal' });
    expect(out.paramsCut).toBeUndefined();
    const root = fake.messages.get(`${out.channel}:${out.ts}`)!;
    expect(JSON.stringify(root.blocks)).toContain('Slack refused the full message');
    expect(JSON.stringify(root.blocks)).toContain('"action_id":"approve"');
    expect(paramsInThread(out.channel, out.ts)).toEqual({ database: 'orders', note: 'see <!channel>' });
    const thread = JSON.stringify(fake.threadReplies(out.channel, out.ts));
    expect(thread).toContain('Full justification');
  });

  test('Slack down (503): thrown as retryable, nothing recorded as failed', async () => {
    fake.failNext('chat.postMessage', { status: 503 });
    const err = await run(activities.postRequestMessage, input()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(false);
  });

  test('no channel and no DM user, or no Slack client: skipped', async () => {
    await expect(run(activities.postRequestMessage, input({ channel: null }))).resolves.toEqual({ slack: 'skipped' });
    const none = createSlackActivities({ slack: null, metrics: createMetrics() });
    await expect(run(none.postRequestMessage, input())).resolves.toEqual({ slack: 'skipped' });
  });
});

describe('updateRequestMessage, notices', () => {
  async function postedRef(message: MessageInput) {
    const out = posted(await run(activities.postRequestMessage, message));
    return { channel: out.channel, ts: out.ts };
  }

  test('an update Slack refuses falls back to the minimal message and asks for the thread', async () => {
    const message = input();
    const ref = await postedRef(message);
    fake.failNext('chat.update', { ok: false, error: 'invalid_blocks' });
    const approved = reduce(
      message.state,
      message.plan,
      { type: 'approve', userId: 'U_ALICE' },
      message.state.createdAt,
    );
    if (!approved.ok) throw new Error(approved.reason);
    const hint = await run(activities.updateRequestMessage, { ...message, state: approved.state, ref });
    expect(hint).toEqual({ paramsCut: true });
    expect(JSON.stringify(fake.messages.get(`${ref.channel}:${ref.ts}`)?.blocks)).toContain('*Approved* by U_ALICE');
    await run(activities.postParamsThread, { ...message, state: approved.state, ref });
    expect(paramsInThread(ref.channel, ref.ts)).toEqual(message.request.params);
  });

  test('a message gone from Slack is a non-retryable failure', async () => {
    const message = input();
    const err = await run(activities.updateRequestMessage, {
      ...message,
      ref: { channel: 'C0APPROVALS', ts: '1.000001' },
    }).catch((e: unknown) => e as ApplicationFailure);
    expect(err).toMatchObject({ type: 'slack_message_not_found', nonRetryable: true });
    // The refusal above is the point of the test.
    fake.calls.length = 0;
  });

  test('a refusal notice is escaped and fits', async () => {
    await run(activities.tellRefusal, {
      replyTo: { channel: 'C0APPROVALS', user: 'U0BOB' },
      reason: 'custom',
      message: `<!channel> ${'x'.repeat(5000)}`,
    });
    const [call] = fake.callsOf('chat.postEphemeral');
    expect(String(call?.args.text)).toMatch(/^&lt;!channel&gt; x+ … \(\d[\d,]* characters more not shown\)$/);
    expect(String(call?.args.text).length).toBeLessThanOrEqual(3000);
  });

  test('the escalation notice goes to the thread and to the escalation channel with a link to the request', async () => {
    const message = input({ escalation: { escalateBeforeSec: 60, channel: 'C0ESC', minApprovals: 2 } });
    const ref = await postedRef(message);
    const escalated = reduce(message.state, message.plan, { type: 'escalate' }, message.state.createdAt);
    if (!escalated.ok) throw new Error(escalated.reason);
    await run(activities.postEscalationNotice, { ...message, state: escalated.state as RequestState, ref });
    expect(fake.threadReplies(ref.channel, ref.ts)).toHaveLength(1);
    const notice = [...fake.messages.values()].find((m) => m.channel === 'C0ESC');
    expect(notice?.text).toContain(`|Open the request>`);
    expect(notice?.text).toContain(`/archives/${ref.channel}/p${ref.ts.replace('.', '')}`);
    for (const m of fake.messages.values()) expect(messageViolations(m.blocks)).toEqual([]);
  });
});
