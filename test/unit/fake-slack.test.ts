import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isValidSlackRequest, verifySlackRequest } from '@slack/bolt';
import { ErrorCode, LogLevel, WebClient } from '@slack/web-api';
import { WebSocket } from 'ws';
import { CALLS_PATH, FAKE_BOT, FAKE_TEAM, startFakeSlack, type FakeSlack } from '../../dev/fake-slack.js';
import {
  blockActionPayload,
  formBody,
  sendInteraction,
  signSlackRequest,
  viewSubmissionPayload,
  type BlockActionPayload,
} from '../helpers/slack.js';

const TOKEN = 'xoxb-test-token';
const blocks = [
  { type: 'section', block_id: 'summary', text: { type: 'mrkdwn', text: '*deploy* requested' } },
  {
    type: 'actions',
    block_id: 'decision',
    elements: [{ type: 'button', action_id: 'approve', text: { type: 'plain_text', text: 'Approve' }, value: 'req-1' }],
  },
];
const modal = {
  type: 'modal',
  callback_id: 'override_submit',
  title: { type: 'plain_text', text: 'Edit' },
  blocks: [],
};

let fake: FakeSlack;

function client(retryConfig = { retries: 0 }, token: string | undefined = TOKEN): WebClient {
  return new WebClient(token, {
    slackApiUrl: fake.url,
    retryConfig,
    rejectRateLimitedCalls: false,
    // The refusals these tests provoke are asserted on, not logged.
    logger: silentLogger,
  });
}

const silentLogger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  setLevel: () => {},
  getLevel: () => LogLevel.ERROR,
  setName: () => {},
};

/** WebClient rejects with `{ code, data: {error} }` or `{ code, statusCode }`; tests only look at those. */
async function failure(
  call: Promise<unknown>,
): Promise<{ code?: string; data?: { error?: string }; statusCode?: number }> {
  try {
    await call;
  } catch (err) {
    return err as { code?: string; data?: { error?: string }; statusCode?: number };
  }
  throw new Error('expected the call to fail');
}

beforeAll(async () => {
  fake = await startFakeSlack();
});
afterEach(() => fake.reset());
afterAll(async () => {
  await fake.close();
});

describe('fake Slack Web API driven by the real WebClient', () => {
  test('url is the /api/ base on loopback', () => {
    expect(fake.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/$/);
  });

  test('auth.test answers with the bot identity and records the token', async () => {
    const res = await client().auth.test();
    expect(res).toMatchObject({ ok: true, team_id: FAKE_TEAM.id, user_id: FAKE_BOT.userId, bot_id: FAKE_BOT.botId });
    expect(fake.callsOf('auth.test')).toEqual([expect.objectContaining({ status: 200, token: TOKEN })]);
  });

  test('missing and invalid tokens are refused', async () => {
    expect((await failure(client(undefined, '').auth.test())).data?.error).toBe('not_authed');
    expect((await failure(client(undefined, 'xoxp-user').auth.test())).data?.error).toBe('invalid_auth');
  });

  test('postMessage with blocks, then update, keeps one message with decoded blocks', async () => {
    const web = client();
    const posted = await web.chat.postMessage({ channel: 'C1', text: 'approval', blocks });
    expect(posted).toMatchObject({ ok: true, channel: 'C1', message: { text: 'approval', blocks } });
    expect(posted.ts).toMatch(/^\d{10}\.\d{6}$/);
    expect(fake.callsOf('chat.postMessage')[0]?.args.blocks).toEqual(blocks);

    const newBlocks = [{ type: 'section', text: { type: 'mrkdwn', text: 'approved' } }];
    const updated = await web.chat.update({ channel: 'C1', ts: posted.ts!, text: 'done', blocks: newBlocks });
    expect(updated).toMatchObject({ ok: true, ts: posted.ts, message: { text: 'done', blocks: newBlocks } });
    expect(fake.messages.get(`C1:${posted.ts}`)).toMatchObject({ text: 'done', blocks: newBlocks, updates: 1 });
  });

  test('update keeps blocks it was not given, and refuses unknown messages', async () => {
    const web = client();
    const { ts } = await web.chat.postMessage({ channel: 'C1', text: 'a', blocks });
    await web.chat.update({ channel: 'C1', ts: ts!, text: 'b' });
    expect(fake.messages.get(`C1:${ts}`)).toMatchObject({ text: 'b', blocks });
    const missing = await failure(web.chat.update({ channel: 'C1', ts: '1.000001', text: 'x' }));
    expect(missing.data?.error).toBe('message_not_found');
  });

  test('ts values are unique and increasing', async () => {
    const web = client();
    const all = await Promise.all([1, 2, 3, 4, 5].map((n) => web.chat.postMessage({ channel: 'C1', text: `m${n}` })));
    const sorted = all.map((r) => r.ts!).sort((a, b) => Number(a) - Number(b));
    expect(new Set(sorted).size).toBe(5);
    expect(fake.calls.map((c) => (c.response as { ts: string }).ts)).toEqual(sorted);
  });

  test('thread replies attach to the root message', async () => {
    const web = client();
    const root = await web.chat.postMessage({ channel: 'C1', text: 'root' });
    const reply = await web.chat.postMessage({ channel: 'C1', text: 'decided', thread_ts: root.ts! });
    expect(reply.message).toMatchObject({ thread_ts: root.ts });
    await web.chat.postMessage({ channel: 'C1', text: 'reply to reply', thread_ts: reply.ts! });
    expect(fake.threadReplies('C1', root.ts!).map((m) => m.text)).toEqual(['decided', 'reply to reply']);
  });

  test('postEphemeral answers message_ts', async () => {
    const res = await client().chat.postEphemeral({ channel: 'C1', user: 'U1', text: 'not authorized' });
    expect(res).toMatchObject({ ok: true, message_ts: expect.stringMatching(/^\d+\.\d{6}$/) });
    expect(fake.callsOf('chat.postEphemeral')[0]?.args).toMatchObject({ channel: 'C1', user: 'U1' });
  });

  test('views.open needs a fresh trigger_id; views.update checks the hash', async () => {
    const web = client();
    const opened = await web.views.open({ trigger_id: 'trig-1', view: modal as never });
    expect(opened.view).toMatchObject({
      id: expect.stringMatching(/^V/),
      callback_id: 'override_submit',
      type: 'modal',
    });
    expect(fake.callsOf('views.open')[0]?.args.view).toEqual(modal);
    const reused = await failure(web.views.open({ trigger_id: 'trig-1', view: modal as never }));
    expect(reused.data?.error).toBe('exchanged_trigger_id');

    const view = { ...modal, title: { type: 'plain_text', text: 'Edited' } } as never;
    const updated = await web.views.update({ view_id: opened.view!.id!, hash: opened.view!.hash!, view });
    expect(updated.view).toMatchObject({ id: opened.view!.id, title: { text: 'Edited' } });
    const stale = await failure(web.views.update({ view_id: opened.view!.id!, hash: opened.view!.hash!, view }));
    expect(stale.data?.error).toBe('hash_conflict');
  });

  test('unknown methods answer unknown_method', async () => {
    expect((await failure(client().apiCall('chat.frobnicate'))).data?.error).toBe('unknown_method');
  });

  test('JSON bodies work with a bearer token, not with a token in the body', async () => {
    const post = (headers: Record<string, string>, body: object): Promise<unknown> =>
      fetch(`${fake.url}chat.postMessage`, { method: 'POST', headers, body: JSON.stringify(body) }).then((r) =>
        r.json(),
      );
    const json = { 'content-type': 'application/json; charset=utf-8' };
    const viaHeader = await post({ ...json, authorization: `Bearer ${TOKEN}` }, { channel: 'C2', text: 'hi', blocks });
    expect(viaHeader).toMatchObject({ ok: true, channel: 'C2', message: { blocks } });
    expect(await post(json, { token: TOKEN, channel: 'C2', text: 'hi' })).toEqual({ ok: false, error: 'not_authed' });
  });

  test('GET /_fake/calls lists the recorded calls of a method, without tokens', async () => {
    await client().chat.postEphemeral({ channel: 'C1', user: 'U1', text: 'refused' });
    await client().chat.postMessage({ channel: 'C1', text: 'other' });
    const base = fake.url.replace(/\/api\/$/, '');
    const res = (await (await fetch(`${base}${CALLS_PATH}?method=chat.postEphemeral`)).json()) as {
      calls: Array<Record<string, unknown>>;
    };
    expect(res.calls).toEqual([
      expect.objectContaining({ method: 'chat.postEphemeral', args: expect.objectContaining({ text: 'refused' }) }),
    ]);
    expect(JSON.stringify(res)).not.toContain(TOKEN);
    const all = (await (await fetch(`${base}${CALLS_PATH}`)).json()) as { calls: unknown[] };
    expect(all.calls).toHaveLength(2);
  });

  test('waitFor resolves with a later call and times out with what it saw', async () => {
    const waiting = fake.waitFor((c) => c.method === 'chat.postMessage' && c.args.channel === 'C9', 2_000);
    setTimeout(() => void client().chat.postMessage({ channel: 'C9', text: 'late' }), 50);
    await expect(waiting).resolves.toMatchObject({ status: 200, args: { channel: 'C9', text: 'late' } });
    await expect(fake.waitFor((c) => c.method === 'views.open', 50)).rejects.toThrow(/chat\.postMessage\(200\)/);
  });
});

describe('Block Kit limits, answered as Slack answers', () => {
  const long = (n: number) => [{ type: 'section', text: { type: 'mrkdwn', text: 'a'.repeat(n) } }];
  const errorOf = (err: { data?: unknown }) =>
    err.data as { error: string; errors?: string[]; response_metadata?: { messages: string[] } };

  test('an over-long section is invalid_blocks, naming the pointer in errors and response_metadata', async () => {
    const err = errorOf(await failure(client().chat.postMessage({ channel: 'C1', text: 'x', blocks: long(3001) })));
    const problem = 'must be less than 3001 characters [json-pointer:/blocks/0/text/text]';
    expect(err).toMatchObject({
      error: 'invalid_blocks',
      errors: [problem],
      response_metadata: { messages: [`[ERROR] ${problem}`] },
    });
    expect(fake.messages.size).toBe(0);
    await expect(client().chat.postMessage({ channel: 'C1', text: 'x', blocks: long(3000) })).resolves.toMatchObject({
      ok: true,
    });
  });

  test('chat.update and chat.postEphemeral are checked the same way; a refused update changes nothing', async () => {
    const web = client();
    const { ts } = await web.chat.postMessage({ channel: 'C1', text: 'a', blocks });
    const update = errorOf(await failure(web.chat.update({ channel: 'C1', ts: ts!, text: 'b', blocks: long(3001) })));
    expect(update.error).toBe('invalid_blocks');
    expect(fake.messages.get(`C1:${ts}`)).toMatchObject({ text: 'a', blocks, updates: 0 });
    const eph = await failure(web.chat.postEphemeral({ channel: 'C1', user: 'U1', text: 'x', blocks: long(3001) }));
    expect(errorOf(eph).error).toBe('invalid_blocks');
  });

  test('more text than Slack takes in one message is msg_blocks_too_long', async () => {
    const many = Array.from({ length: 5 }, (_, i) => ({
      type: 'section',
      block_id: `b${i}`,
      text: { type: 'mrkdwn', text: 'a'.repeat(2500) },
    }));
    const err = await failure(client().chat.postMessage({ channel: 'C1', text: 'x', blocks: many }));
    expect(err.data?.error).toBe('msg_blocks_too_long');
    await expect(
      client().chat.postMessage({ channel: 'C1', text: 'x', blocks: many.slice(0, 4) }),
    ).resolves.toMatchObject({ ok: true });
  });

  test('a view over a limit is invalid_arguments with the problems in response_metadata', async () => {
    const view = { ...modal, title: { type: 'plain_text', text: 'a'.repeat(25) } };
    const err = errorOf(await failure(client().views.open({ trigger_id: 'trig-v', view: view as never })));
    // WebClient adds the scope headers to response_metadata too.
    expect(err).toMatchObject({
      ok: false,
      error: 'invalid_arguments',
      response_metadata: { messages: ['[ERROR] must be less than 25 characters [json-pointer:/view/title/text]'] },
    });
    expect(fake.views.size).toBe(0);
  });
});

describe('the workspace: channels, DMs, permalinks, scopes, tokens', () => {
  test('a user id as channel posts in the bot DM with that user, as Slack does', async () => {
    const res = await client().chat.postMessage({ channel: 'U0DANA', text: 'hi' });
    expect(res).toMatchObject({ ok: true, channel: 'D0DANA' });
    expect(fake.messages.get(`D0DANA:${res.ts}`)).toMatchObject({ text: 'hi' });
    await expect(client().conversations.open({ users: 'U0DANA' })).rejects.toMatchObject({
      data: { error: 'missing_scope', needed: 'im:write' },
    });
  });

  test('declared channels and users: missing, archived, without the bot; those refusals count as asked for', async () => {
    fake.setChannel('C0GONE', { exists: false });
    fake.setChannel('C0OLD', { archived: true });
    fake.setChannel('C0NOBOT', { member: false });
    fake.setUser('U0LEFT', { exists: false });
    const web = client();
    const errors = [];
    for (const channel of ['C0GONE', 'C0OLD', 'C0NOBOT', 'U0LEFT']) {
      errors.push((await failure(web.chat.postMessage({ channel, text: 'x' }))).data?.error);
    }
    expect(errors).toEqual(['channel_not_found', 'is_archived', 'not_in_channel', 'channel_not_found']);
    expect(fake.calls.every((c) => c.injected)).toBe(true);
    expect(fake.unexpectedRefusals()).toEqual([]);
  });

  test('unexpectedRefusals lists what no test asked for, not injected faults', async () => {
    const web = client();
    fake.failNext('chat.postMessage', { ok: false, error: 'channel_not_found' });
    await failure(web.chat.postMessage({ channel: 'C1', text: 'x' }));
    await failure(web.chat.postMessage({ channel: 'C1', text: 'x', blocks: [{ type: 'section' }] }));
    await web.chat.postMessage({ channel: 'C1', text: 'fine' });
    expect(fake.unexpectedRefusals().map((c) => (c.response as { error: string }).error)).toEqual(['invalid_blocks']);
  });

  test('chat.getPermalink links a message, a thread reply with thread_ts and cid', async () => {
    const web = client();
    const root = await web.chat.postMessage({ channel: 'C0LINK', text: 'root' });
    const reply = await web.chat.postMessage({ channel: 'C0LINK', text: 'reply', thread_ts: root.ts! });
    const base = `https://${FAKE_TEAM.domain}.slack.com/archives/C0LINK/p`;
    await expect(web.chat.getPermalink({ channel: 'C0LINK', message_ts: root.ts! })).resolves.toMatchObject({
      channel: 'C0LINK',
      permalink: `${base}${root.ts!.replace('.', '')}`,
    });
    const threaded = await web.chat.getPermalink({ channel: 'C0LINK', message_ts: reply.ts! });
    expect(threaded.permalink).toBe(`${base}${reply.ts!.replace('.', '')}?thread_ts=${root.ts}&cid=C0LINK`);
    const missing = await failure(web.chat.getPermalink({ channel: 'C0LINK', message_ts: '1.000001' }));
    expect(missing.data?.error).toBe('message_not_found');
  });

  test('conversations.info describes a channel; its read scope is needed', async () => {
    fake.setChannel('G0PRIV', { name: 'secret-ops', private: true, member: false });
    const info = await client().conversations.info({ channel: 'G0PRIV' });
    expect(info.channel).toMatchObject({ id: 'G0PRIV', name: 'secret-ops', is_private: true, is_member: false });
    fake.setScopes(['chat:write']);
    const err = await failure(client().conversations.info({ channel: 'C1' }));
    expect(err.data).toMatchObject({ error: 'missing_scope', needed: 'channels:read', provided: 'chat:write' });
  });

  test('every answer to a bot token carries x-oauth-scopes; chat:write is needed to post', async () => {
    const res = await fetch(`${fake.url}auth.test`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.headers.get('x-oauth-scopes')).toBe('chat:write,channels:read,groups:read');
    fake.setScopes(['channels:read']);
    const err = await failure(client().chat.postMessage({ channel: 'C1', text: 'x' }));
    expect(err.data).toMatchObject({ error: 'missing_scope', needed: 'chat:write' });
  });

  test('an app-level token opens Socket Mode connections only; a bot token cannot', async () => {
    const app = client(undefined, 'xapp-1-A0FAKEAPP-1-secret');
    expect((await failure(app.chat.postMessage({ channel: 'C1', text: 'x' }))).data?.error).toBe(
      'not_allowed_token_type',
    );
    expect((await failure(client().apps.connections.open({}))).data?.error).toBe('not_allowed_token_type');
  });
});

describe('Socket Mode endpoint', () => {
  const appClient = () => client(undefined, 'xapp-1-A0FAKEAPP-1-secret');
  /** Opens the URL and collects what the server sends. */
  function dial(url: string): Promise<{ ws: WebSocket; received: Array<Record<string, unknown>> }> {
    const ws = new WebSocket(url);
    const received: Array<Record<string, unknown>> = [];
    ws.on('message', (data) => received.push(JSON.parse(String(data)) as Record<string, unknown>));
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve({ ws, received }));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  test('apps.connections.open gives a single-use URL; the socket says hello and delivers acked envelopes', async () => {
    const { url } = await appClient().apps.connections.open();
    expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/link\/\?ticket=[0-9a-f]{32}&app_id=A0FAKEAPP$/);
    const { ws, received } = await dial(url!);
    await fake.socket.waitForConnections(1);
    expect(received[0]).toMatchObject({ type: 'hello', connection_info: { app_id: 'A0FAKEAPP' } });
    ws.on('message', (data) => {
      const envelope = JSON.parse(String(data)) as { envelope_id?: string; type: string };
      if (envelope.type === 'interactive')
        ws.send(JSON.stringify({ envelope_id: envelope.envelope_id, payload: { x: 1 } }));
    });
    const ack = await fake.socket.sendInteractive({ type: 'block_actions' }, { envelopeId: 'env-1' });
    expect(ack).toMatchObject({ envelopeId: 'env-1', payload: { x: 1 } });
    expect(received.at(-1)).toEqual({
      envelope_id: 'env-1',
      type: 'interactive',
      payload: { type: 'block_actions' },
      accepts_response_payload: true,
    });
    await expect(dial(url!)).rejects.toThrow('HTTP 401');
    const closed = new Promise((done) => ws.once('close', done));
    fake.socket.disconnect('refresh_requested');
    await closed;
    expect(received.at(-1)).toMatchObject({ type: 'disconnect', reason: 'refresh_requested' });
  });

  test('an envelope nobody acks fails after 3 s, as Slack gives up on it', async () => {
    const { url } = await appClient().apps.connections.open();
    const { ws } = await dial(url!);
    await fake.socket.waitForConnections(1);
    await expect(fake.socket.sendInteractive({ type: 'block_actions' })).rejects.toThrow(/not acked within 3000 ms/);
    ws.terminate();
  });
});

describe('fault injection', () => {
  test('429 with Retry-After is retried by WebClient and then succeeds', async () => {
    fake.failNext('chat.postMessage', { status: 429, retryAfterSec: 1 });
    const started = Date.now();
    const res = await client({ retries: 2 }).chat.postMessage({ channel: 'C1', text: 'hi' });
    expect(res.ok).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    const calls = fake.callsOf('chat.postMessage');
    expect(calls.map((c) => c.status)).toEqual([429, 200]);
    expect(calls[0]?.response).toEqual({ ok: false, error: 'ratelimited' });
    expect(fake.messages.size).toBe(1);
  });

  test('429 carries the Retry-After header on the wire', async () => {
    fake.failNext('*', { status: 429, retryAfterSec: 7 });
    const res = await fetch(`${fake.url}auth.test`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(await res.json()).toEqual({ ok: false, error: 'ratelimited' });
  });

  test('a 500 surfaces as an HTTP error when retries are exhausted', async () => {
    fake.failNext('chat.update', { status: 500 });
    const err = await failure(client().chat.update({ channel: 'C1', ts: '1.000001', text: 'x' }));
    expect(err).toMatchObject({ code: ErrorCode.HTTPError, statusCode: 500 });
    expect(fake.callsOf('chat.update').map((c) => c.status)).toEqual([500]);
  });

  test('platform errors, times, and failFor windows', async () => {
    fake.failNext('chat.postMessage', { ok: false, error: 'channel_not_found' }, 2);
    const web = client();
    for (let i = 0; i < 2; i++) {
      expect((await failure(web.chat.postMessage({ channel: 'C1', text: 'x' }))).data?.error).toBe('channel_not_found');
    }
    await expect(web.chat.postMessage({ channel: 'C1', text: 'x' })).resolves.toMatchObject({ ok: true });

    fake.failFor('*', { status: 503 }, 150);
    expect((await failure(web.auth.test())).statusCode).toBe(503);
    await new Promise((done) => setTimeout(done, 200));
    await expect(web.auth.test()).resolves.toMatchObject({ ok: true });
  });
});

describe('latency (the load harness: --slack-latency)', () => {
  test('every Web API reply is sent latencyMs after its call arrived (and was recorded)', async () => {
    const slow = await startFakeSlack({ latencyMs: 120 });
    try {
      const web = new WebClient(TOKEN, { slackApiUrl: slow.url, retryConfig: { retries: 0 }, logger: silentLogger });
      await expect(web.auth.test()).resolves.toMatchObject({ ok: true });
      await expect(web.chat.postMessage({ channel: 'C1', text: 'hi' })).resolves.toMatchObject({ ok: true });
      const answered = Date.now();
      expect(slow.calls.map((c) => c.method)).toEqual(['auth.test', 'chat.postMessage']);
      // Timers never fire early; a millisecond of rounding between the two clocks' readings.
      expect(slow.calls[1]!.at - slow.calls[0]!.at).toBeGreaterThanOrEqual(119);
      expect(answered - slow.calls[1]!.at).toBeGreaterThanOrEqual(119);
    } finally {
      await slow.close();
    }
  });
});

describe('Slack request signing helpers', () => {
  // The worked example from Slack's "Verifying requests from Slack" guide.
  const doc = {
    secret: '8f742231b10e8888abcd99yyyzzz85a5',
    timestamp: 1531420618,
    body:
      'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&' +
      'channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&' +
      'response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&' +
      'trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
    signature: 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
  };

  test("matches Slack's documented example and an independent HMAC", () => {
    const headers = signSlackRequest(doc.secret, doc.body, doc.timestamp);
    expect(headers).toEqual({
      'x-slack-signature': doc.signature,
      'x-slack-request-timestamp': '1531420618',
      'content-type': 'application/x-www-form-urlencoded',
    });
    const body = formBody({ type: 'block_actions', text: 'a b&c=d' });
    const hmac = createHmac('sha256', 's3cret').update(`v0:1700000000:${body}`).digest('hex');
    expect(signSlackRequest('s3cret', body, 1_700_000_000)['x-slack-signature']).toBe(`v0=${hmac}`);
  });

  test("passes @slack/bolt's own verifier, and fails it when tampered", () => {
    const body = formBody(blockActionPayload({ actionId: 'approve', value: 'req-1', userId: 'U1' }));
    const signed = signSlackRequest('s3cret', body);
    const headers = { ...signed, 'x-slack-request-timestamp': Number(signed['x-slack-request-timestamp']) };
    expect(() => verifySlackRequest({ signingSecret: 's3cret', body, headers })).not.toThrow();
    expect(isValidSlackRequest({ signingSecret: 's3cret', body: `${body}x`, headers })).toBe(false);
    expect(isValidSlackRequest({ signingSecret: 'other', body, headers })).toBe(false);
  });

  test('formBody round-trips the payload through a form parser', () => {
    const payload = blockActionPayload({
      actionId: 'persona_ack:SRE',
      value: 'req-9',
      userId: 'U2',
      userName: 'Ann B',
    });
    const decoded = new URLSearchParams(formBody(payload));
    expect([...decoded.keys()]).toEqual(['payload']);
    expect(JSON.parse(decoded.get('payload')!)).toEqual(payload);
  });

  test('blockActionPayload looks like a Slack button click', () => {
    const p = blockActionPayload({
      actionId: 'approve',
      value: 'req-1',
      userId: 'U1',
      channelId: 'C1',
      messageTs: '1.000200',
    });
    expect(p).toMatchObject({
      type: 'block_actions',
      user: { id: 'U1', team_id: FAKE_TEAM.id },
      container: { type: 'message', message_ts: '1.000200', channel_id: 'C1', is_ephemeral: false },
      channel: { id: 'C1' },
      message: { ts: '1.000200' },
      actions: [{ action_id: 'approve', value: 'req-1', type: 'button', block_id: 'decision' }],
    });
    expect(p.trigger_id).toMatch(/^\d+\.\d+\.[0-9a-f]+$/);
    expect(p.response_url).toMatch(/^https:\/\/hooks\.slack\.com\/actions\//);
    expect(JSON.stringify(p.message.blocks)).toContain('"action_id":"approve"');
  });

  test('viewSubmissionPayload carries callback, metadata and state values', () => {
    const values = { ov_limit: { value: { type: 'plain_text_input' as const, value: '42' } } };
    const p = viewSubmissionPayload({
      userId: 'U1',
      callbackId: 'override_submit',
      privateMetadata: { request_id: 'r1' },
      values,
    });
    expect(p).toMatchObject({ type: 'view_submission', user: { id: 'U1' } });
    expect(p.view).toMatchObject({ callback_id: 'override_submit', state: { values }, type: 'modal' });
    expect(JSON.parse(p.view.private_metadata)).toEqual({ request_id: 'r1' });
    expect(p.view.blocks).toEqual([expect.objectContaining({ type: 'input', block_id: 'ov_limit' })]);
  });
});

describe('sendInteraction', () => {
  let server: Server;
  let baseUrl: string;
  const seen: Array<{ url?: string; headers: Record<string, unknown>; body: string }> = [];

  /** A stand-in endpoint that checks signatures with bolt's verifier and echoes what it parsed. */
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        seen.push({ url: req.url, headers: req.headers, body });
        const headers = {
          'x-slack-signature': String(req.headers['x-slack-signature']),
          'x-slack-request-timestamp': Number(req.headers['x-slack-request-timestamp']),
        };
        const valid = isValidSlackRequest({ signingSecret: 's3cret', body, headers });
        const payload = JSON.parse(new URLSearchParams(body).get('payload') ?? 'null') as BlockActionPayload | null;
        res.writeHead(valid ? 200 : 400, { 'content-type': 'application/json' });
        res.end(JSON.stringify(valid ? { action: payload?.actions[0].action_id } : { error: 'bad_signature' }));
      });
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  });

  test('posts a signed form to /api/slack/interactions', async () => {
    const payload = blockActionPayload({ actionId: 'deny', value: 'req-2', userId: 'U3' });
    const res = await sendInteraction(baseUrl, 's3cret', payload);
    expect(res).toMatchObject({ status: 200, json: { action: 'deny' } });
    expect(res.headers['content-type']).toBe('application/json');
    expect(seen.at(-1)).toMatchObject({
      url: '/api/slack/interactions',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
  });

  test('forged signatures, stale timestamps and tampered bodies fail verification', async () => {
    const payload = blockActionPayload({ actionId: 'approve', value: 'req-3', userId: 'U4' });
    const forged = await sendInteraction(baseUrl, 's3cret', payload, { signature: `v0=${'0'.repeat(64)}` });
    expect(forged).toMatchObject({ status: 400, json: { error: 'bad_signature' } });
    const stale = await sendInteraction(baseUrl, 's3cret', payload, {
      timestampSec: Math.floor(Date.now() / 1000) - 600,
    });
    expect(stale.status).toBe(400);
    const original = signSlackRequest('s3cret', formBody(payload))['x-slack-signature'];
    const tampered = formBody({ ...payload, user: { ...payload.user, id: 'U_EVIL' } });
    const res = await sendInteraction(baseUrl, 's3cret', payload, { rawBodyOverride: tampered, signature: original });
    expect(res.status).toBe(400);
    expect(seen.at(-1)?.body).toBe(tampered);
  });
});
