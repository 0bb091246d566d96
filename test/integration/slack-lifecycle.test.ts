/**
 * The Slack message through a request's life, as the channel sees it in the fake Slack: what is posted, each
 * update after a signed click, which buttons are offered when, and the final line naming who decided.
 */
import { approvedBy, standardPolicy } from './fixtures.js';
import { startHarness, type Harness } from './harness.js';
import { actionIds, buttonsOf, counter, eventually, messageOf, textOf, waitForMessage } from './slack-support.js';

const POLICY = standardPolicy(
  {
    simple: approvedBy(['U0ALICE', 'U0BOB', 'U_REQ'], 1),
    quorum2: approvedBy(['U0ALICE', 'U0BOB', 'U0CAROL'], 2),
    personas: approvedBy(['U0ALICE', 'U0BOB'], 1, { personasRequired: ['DBA', 'Security'] }),
    secret: approvedBy(['U0ALICE'], 1, { redactParams: { mode: 'denylist', keys: ['token'] } }),
    everything_hidden: approvedBy(['U0ALICE'], 1, { redactParams: { mode: 'all' } }),
    editable: approvedBy(['U0ALICE'], 1, { allowParamOverrides: true, overrideKeys: ['steps'] }),
    short: approvedBy(['U0ALICE'], 1, { timeoutSec: 2 }),
    escalating: approvedBy(['U0ALICE', 'U0BOB'], 1, {
      timeoutSec: 8,
      escalation: { escalateBeforeSec: 6, escalationChannel: 'C_ESCALATIONS', escalateMinApprovals: 2 },
    }),
  },
  'U0DBA',
);

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ policy: POLICY });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const status = async (requestId: string) => (await h.get(`/api/guard/status?requestId=${requestId}`)).body;
const postsFor = (requestId: string) =>
  h.fakeSlack.callsOf('chat.postMessage').filter((c) => JSON.stringify(c.args.blocks).includes(requestId));

describe('the posted message', () => {
  test('header, requester, origin, justification, params and decision buttons carrying the request id', async () => {
    const req = await h.create('simple');
    const m = await waitForMessage(h, req.requestId);
    expect(m.channel).toBe('C_APPROVALS');
    const header = m.blocks[0] as { type: string; text: { text: string } };
    expect(header).toMatchObject({ type: 'header' });
    expect(header.text.text).toContain('simple');
    const text = textOf(m);
    expect(text).toContain('Requester');
    expect(text).toContain('acme/shop@main PR #42');
    expect(text).toContain('needed for the release');
    expect(text).toContain('"database": "orders"');
    expect(text).toContain('"steps": 3');
    expect(text).toContain('Approvals: 0 of 1');
    const { payloadHash } = await status(req.requestId);
    // No approve_edit: this action does not allow edits.
    expect(buttonsOf(m)).toEqual([
      { actionId: 'approve', value: req.requestId, blockId: `decide:${payloadHash}` },
      { actionId: 'deny', value: req.requestId, blockId: `decide:${payloadHash}` },
    ]);
    expect(m.text).toContain('simple');
  });

  test('approve_edit is offered when the action allows edits', async () => {
    const req = await h.create('editable');
    const m = await waitForMessage(h, req.requestId);
    expect(actionIds(m)).toEqual(['approve', 'deny', 'approve_edit']);
  });

  test('redacted params never reach Slack, in the post or any update', async () => {
    const req = await h.create('secret', { params: { name: 'db', token: 'hunter2-s3cr3t' } });
    await h.click('approve', req.requestId, 'U0ALICE');
    const m = await waitForMessage(h, req.requestId, (x) => textOf(x).includes('Approved'));
    expect(textOf(m)).toContain('"token": "«redacted»"');
    expect(textOf(m)).toContain('"name": "db"');
    const sent = h.fakeSlack.calls.filter((c) => JSON.stringify(c.args).includes(req.requestId));
    expect(sent.map((c) => c.method)).toContain('chat.postMessage');
    expect(JSON.stringify(sent)).not.toContain('hunter2');

    const all = await h.create('everything_hidden', { params: { a: 'alpha-value', b: 12345 } });
    const hidden = await waitForMessage(h, all.requestId);
    expect(textOf(hidden)).toContain('"a": "«redacted»"');
    expect(textOf(hidden)).toContain('"b": "«redacted»"');
    expect(JSON.stringify(hidden.blocks)).not.toMatch(/alpha-value|12345/);
  });
});

describe('updates after each click', () => {
  test('persona flow: ack buttons first, decision buttons only once every persona is done', async () => {
    const req = await h.create('personas');
    const initial = await waitForMessage(h, req.requestId);
    expect(actionIds(initial)).toEqual(['persona_ack:DBA', 'persona_ack:Security']);
    expect(buttonsOf(initial).every((b) => b.value === req.requestId)).toBe(true);
    expect(textOf(initial)).toMatch(/DBA\* pending/);
    expect(textOf(initial)).toMatch(/Security\* pending/);

    expect(await h.clickOutcome('persona_ack:DBA', req.requestId, 'U0DBA')).toMatchObject({ ok: true });
    const afterDba = await waitForMessage(h, req.requestId, (m) => textOf(m).includes('acknowledged by <@U0DBA>'));
    expect(actionIds(afterDba)).toEqual(['persona_ack:Security']);

    await h.click('persona_ack:Security', req.requestId, 'U0BOB');
    const ready = await waitForMessage(h, req.requestId, (m) => textOf(m).includes('acknowledged by <@U0BOB>'));
    expect(actionIds(ready)).toEqual(['approve', 'deny']);
    expect(textOf(ready)).toContain('ready_for_approval');

    await h.click('approve', req.requestId, 'U0ALICE', { blockId: buttonsOf(ready)[0]?.blockId ?? '' });
    const done = await waitForMessage(h, req.requestId, (m) => textOf(m).includes('*Approved* by <@U0ALICE>'));
    expect(buttonsOf(done)).toEqual([]);
    expect(done.blocks.some((b) => (b as { type: string }).type === 'actions')).toBe(false);
    // One message for the request's whole life: later states are chat.update of the same ts.
    expect(postsFor(req.requestId)).toHaveLength(1);
    expect(done.updates).toBeGreaterThanOrEqual(3);
    expect(h.fakeSlack.callsOf('chat.update').every((c) => c.status === 200)).toBe(true);
  });

  test('quorum progress "1 of 2", then the final line names who decided', async () => {
    const req = await h.create('quorum2');
    await waitForMessage(h, req.requestId);
    await h.click('approve', req.requestId, 'U0ALICE');
    const half = await waitForMessage(h, req.requestId, (m) => textOf(m).includes('Approvals: 1 of 2'));
    expect(textOf(half)).toContain('Approved by: <@U0ALICE>');
    expect(actionIds(half)).toEqual(['approve', 'deny']);

    await h.click('approve', req.requestId, 'U0BOB');
    const done = await waitForMessage(h, req.requestId, (m) => textOf(m).includes('*Approved* by <@U0BOB>'));
    expect(textOf(done)).toContain('Approvals: 2 of 2');
    expect(textOf(done)).toContain('Approved by: <@U0ALICE>, <@U0BOB>');
    expect(actionIds(done)).toEqual([]);
    expect(done.text).toContain('approved by U0BOB');
  });

  test('deny: the final line names the denier and no button is left', async () => {
    const req = await h.create('simple');
    await waitForMessage(h, req.requestId);
    await h.click('deny', req.requestId, 'U0BOB');
    const done = await waitForMessage(h, req.requestId, (m) => textOf(m).includes('*Denied* by <@U0BOB>'));
    expect(actionIds(done)).toEqual([]);
    expect(textOf(done)).not.toContain('Expires:');
  });

  test('expiry: the message says expired, names no person, and offers nothing', async () => {
    const req = await h.create('short');
    const done = await waitForMessage(h, req.requestId, (m) => textOf(m).includes('*Expired*'));
    expect(textOf(done)).not.toMatch(/\*Expired\* by/);
    expect(actionIds(done)).toEqual([]);
  });

  test('escalation: the message shows it with the raised quorum; a threaded notice and the escalation channel', async () => {
    const req = await h.create('escalating');
    const escalated = await waitForMessage(h, req.requestId, (m) => textOf(m).includes('Escalated'));
    expect(textOf(escalated)).toContain('Approvals: 0 of 2');
    expect(actionIds(escalated)).toEqual(['approve', 'deny']);
    // The notice goes out beside the message update, not after it: it may land second.
    await h.fakeSlack.waitFor(
      (c) => c.method === 'chat.postMessage' && c.args.thread_ts === escalated.ts && c.status === 200,
      10_000,
    );
    const thread = h.fakeSlack.threadReplies(escalated.channel, escalated.ts);
    expect(thread).toHaveLength(1);
    expect(thread[0]?.text).toContain('Escalation');
    await h.fakeSlack.waitFor(
      (c) => c.method === 'chat.postMessage' && c.args.channel === 'C_ESCALATIONS' && c.status === 200,
      10_000,
    );
    const elsewhere = [...h.fakeSlack.messages.values()].filter(
      (m) => m.channel === 'C_ESCALATIONS' && m.text.includes(req.requestId),
    );
    expect(elsewhere).toHaveLength(1);
    await h.click('approve', req.requestId, 'U0ALICE');
    const half = await waitForMessage(h, req.requestId, (m) => textOf(m).includes('Approvals: 1 of 2'));
    expect(textOf(half)).toContain('Escalated');
  }, 30_000);
});

describe('refusals reach the clicker as an ephemeral message', () => {
  const ephemeralFor = (user: string, since: number) =>
    h.fakeSlack.waitFor((c) => c.method === 'chat.postEphemeral' && c.args.user === user && c.at >= since, 10_000);

  test.each([
    ['not authorized', 'U0MALLORY', 'not_authorized', /not authorized/i],
    ['self approval', 'U_REQ', 'self_approval', /your own request/i],
  ])('%s', async (_name, user, error, text) => {
    const req = await h.create('simple');
    const since = Date.now();
    const res = await h.click('approve', req.requestId, user);
    expect(res.status).toBe(200);
    expect(await h.outcomeOf(res)).toMatchObject({ ok: false, error });
    const eph = await ephemeralFor(user, since);
    expect(eph.args).toMatchObject({ channel: 'C_APPROVALS', user });
    expect(String(eph.args.text)).toMatch(text);
  });

  test('duplicate, not ready and already decided', async () => {
    const q = await h.create('quorum2');
    await h.click('approve', q.requestId, 'U0CAROL');
    let since = Date.now();
    expect(await h.clickOutcome('approve', q.requestId, 'U0CAROL')).toMatchObject({ error: 'duplicate' });
    expect(String((await ephemeralFor('U0CAROL', since)).args.text)).toMatch(/already approved/i);

    const p = await h.create('personas');
    since = Date.now();
    expect(await h.clickOutcome('approve', p.requestId, 'U0BOB')).toMatchObject({ error: 'not_ready' });
    expect(String((await ephemeralFor('U0BOB', since)).args.text)).toMatch(/personas must acknowledge/i);

    const s = await h.create('simple');
    await h.click('deny', s.requestId, 'U0ALICE');
    since = Date.now();
    expect(await h.clickOutcome('approve', s.requestId, 'U0BOB')).toMatchObject({
      error: 'already_decided',
    });
    expect(String((await ephemeralFor('U0BOB', since)).args.text)).toMatch(/already been decided/i);
  });
});

describe('slack_api_calls_total', () => {
  test('counts each Web API call by method and outcome', async () => {
    const before = {
      post: await counter(h, 'slack_api_calls_total', { method: 'chat.postMessage', outcome: 'ok' }),
      update: await counter(h, 'slack_api_calls_total', { method: 'chat.update', outcome: 'ok' }),
      ephemeral: await counter(h, 'slack_api_calls_total', { method: 'chat.postEphemeral', outcome: 'ok' }),
    };
    const req = await h.create('simple');
    await waitForMessage(h, req.requestId);
    await h.click('approve', req.requestId, 'U0MALLORY');
    await h.click('approve', req.requestId, 'U0ALICE');
    await waitForMessage(h, req.requestId, (m) => textOf(m).includes('*Approved*'));
    await h.fakeSlack.waitFor((c) => c.method === 'chat.postEphemeral' && c.args.user === 'U0MALLORY');
    const after = async (method: string) => counter(h, 'slack_api_calls_total', { method, outcome: 'ok' });
    // The fake shows the message before the worker has read Slack's answer (and counted the call).
    await eventually(async () => (await after('chat.update')) > before.update);
    expect((await after('chat.postMessage')) - before.post).toBeGreaterThanOrEqual(1);
    expect((await after('chat.postEphemeral')) - before.ephemeral).toBeGreaterThanOrEqual(1);
    const text = (await h.get('/metrics')).body as string;
    expect(text).toMatch(/slack_api_calls_total\{method="chat.update",outcome="ok"\} \d+/);
    expect(messageOf(h, req.requestId)).toBeDefined();
  });
});
