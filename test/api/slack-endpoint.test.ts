/**
 * The Slack interactivity endpoint in-process (SPEC section 4): signature, clock window and replay checks, malformed
 * deliveries, and what a click becomes (a gateway click with the delivery's identity) — against the in-memory
 * gateway, with the real Bolt app and the fake Slack Web API.
 */
import { eventually } from '../helpers/eventually.js';
import { blockActionPayload, formBody, signSlackRequest } from '../helpers/slack.js';
import { SIGNING_SECRET, startApiHarness, type ApiHarness } from './harness.js';

let h: ApiHarness;

beforeAll(async () => {
  h = await startApiHarness();
});

afterAll(async () => {
  await h?.close();
});

const payload = () => blockActionPayload({ actionId: 'approve', value: 'req_x', userId: 'U_ALICE' });
const secEvents = async (type: string) =>
  (await h.metrics.securityEvents.get()).values.find((v) => v.labels.type === type)?.value ?? 0;

describe('Slack request verification', () => {
  test('forged signature → 400 bad_signature, counted', async () => {
    const before = await secEvents('bad_signature');
    const res = await h.slack(payload(), { signature: 'v0=deadbeef' });
    expect(res).toMatchObject({ status: 400, body: { error: 'bad_signature' } });
    expect(await secEvents('bad_signature')).toBe(before + 1);
  });

  test('signed with another secret → 400 bad_signature', async () => {
    const raw = formBody(payload());
    const forged = signSlackRequest('wrong-secret', raw)['x-slack-signature'];
    expect(await h.slack(payload(), { signature: forged })).toMatchObject({
      status: 400,
      body: { error: 'bad_signature' },
    });
  });

  test('missing signature headers → 400 bad_signature', async () => {
    const res = await h.slack(payload(), { omitHeaders: ['x-slack-signature'] });
    expect(res).toMatchObject({ status: 400, body: { error: 'bad_signature' } });
  });

  test('timestamp more than 300 s old → 400 stale_signature, counted', async () => {
    const before = await secEvents('stale_signature');
    const res = await h.slack(payload(), { timestampSec: Math.floor(Date.now() / 1000) - 301 });
    expect(res).toMatchObject({ status: 400, body: { error: 'stale_signature' } });
    expect(await secEvents('stale_signature')).toBe(before + 1);
  });

  test('the same signed request twice → 400 replay_detected, counted as replay, applied once', async () => {
    const req = await h.create('quorum2');
    const blockId = `decide:${(await h.gateway.view(req.requestId)).payloadHash}`;
    const raw = formBody(blockActionPayload({ actionId: 'approve', value: req.requestId, userId: 'U_ALICE', blockId }));
    const headers = { ...signSlackRequest(SIGNING_SECRET, raw) };
    const send = () => h.inject({ method: 'POST', url: '/api/slack/interactions', headers, payload: raw });
    expect((await send()).status).toBe(200);
    const before = await secEvents('replay');
    expect(await send()).toMatchObject({ status: 400, body: { error: 'replay_detected' } });
    expect(await secEvents('replay')).toBe(before + 1);
    expect((await h.get(`/api/guard/status?requestId=${req.requestId}`)).body.approvalsCount).toBe(1);
  });

  test.each([
    ['no payload field', 'foo=bar'],
    ['payload not JSON', 'payload=%7Bnot-json'],
    ['payload of unknown type', `payload=${encodeURIComponent(JSON.stringify({ type: 'shortcut' }))}`],
    [
      'block_actions without actions',
      `payload=${encodeURIComponent(JSON.stringify({ type: 'block_actions', user: { id: 'U1' }, actions: [] }))}`,
    ],
  ])('validly signed but malformed: %s → 400 invalid_payload', async (_name, raw) => {
    const res = await h.slack({}, { rawBody: raw });
    expect(res).toMatchObject({ status: 400, body: { error: 'invalid_payload' } });
  });

  test('without SLACK_SIGNING_SECRET every delivery is refused with 503', async () => {
    const unsigned = await startApiHarness({ env: { SLACK_SIGNING_SECRET: '' } });
    try {
      expect(await unsigned.slack(payload())).toMatchObject({ status: 503, body: { error: 'slack_not_configured' } });
    } finally {
      await unsigned.close();
    }
  });
});

describe('clicks', () => {
  test('a click is answered received once the gateway has it, with the delivery as its identity', async () => {
    const req = await h.create('simple');
    const res = await h.click('approve', req.requestId, 'U_ALICE');
    expect(res).toMatchObject({ status: 200, body: { ok: true, status: 'received', requestId: req.requestId } });
    expect(res.body.clickId).toMatch(/^click_[0-9a-f]{32}$/);
    expect((await h.gateway.view(req.requestId)).status).toBe('approved');
  });

  test('an approval that does not carry the payload hash it was shown is refused at once', async () => {
    const req = await h.create('simple');
    for (const blockId of ['decision', 'decide:', 'actions']) {
      const res = await h.click('approve', req.requestId, 'U_ALICE', { blockId });
      expect(res).toMatchObject({ status: 200, body: { ok: false, error: 'stale_payload' } });
    }
    expect((await h.gateway.view(req.requestId)).approvals).toEqual([]);
    const stale = await h.click('approve', req.requestId, 'U_ALICE', { blockId: 'decide:sha256:0000' });
    expect(stale.body).toMatchObject({ ok: true, status: 'received' });
    expect(h.gateway.refusedClicks).toContainEqual(expect.objectContaining({ reason: 'stale_payload' }));
  });

  test('two real clicks are two identities; the same delivery sent again is one', async () => {
    const req = await h.create('quorum2');
    const first = await h.click('approve', req.requestId, 'U_ALICE');
    const second = await h.click('approve', req.requestId, 'U_ALICE');
    expect(second.body.clickId).not.toBe(first.body.clickId);
    // The second is a duplicate approval, refused by the reducer and told to the clicker by the workflow.
    expect(h.gateway.refusedClicks).toContainEqual(
      expect.objectContaining({ requestId: req.requestId, clickId: second.body.clickId, reason: 'duplicate' }),
    );
  });

  test('a click on a decided or unknown request is refused at once, and the clicker is told privately', async () => {
    const req = await h.create('simple');
    h.gateway.apply(req.requestId, { type: 'cancel', actor: 'U_REQ' });
    const decided = await h.click('deny', req.requestId, 'U_BOB');
    expect(decided.body).toMatchObject({ ok: false, error: 'already_decided' });
    const unknown = await h.click('deny', 'req_gone', 'U_BOB');
    expect(unknown.body).toMatchObject({ ok: false, error: 'not_found' });
    const told = () => h.fakeSlack.callsOf('chat.postEphemeral').filter((c) => c.args.user === 'U_BOB');
    await eventually(() => (told().length >= 2 ? true : undefined), { timeoutMs: 5000, what: 'two ephemerals' });
    expect(told().map((c) => c.args.channel)).toEqual(['C_APPROVALS', 'C_APPROVALS']);
  });

  test('Temporal unreachable: nothing recorded, and the clicker is asked to click again', async () => {
    const req = await h.create('simple');
    h.gateway.unavailable = true;
    try {
      const res = await h.click('approve', req.requestId, 'U_ALICE', { blockId: `decide:${req.payloadHash}` });
      expect(res).toMatchObject({ status: 200, body: { ok: false, error: 'temporarily_unavailable' } });
    } finally {
      h.gateway.unavailable = false;
    }
    expect((await h.gateway.view(req.requestId)).approvals).toEqual([]);
  });
});
