import { blockActionPayload, formBody, sendInteraction, signSlackRequest } from '../helpers/slack.js';
import { SIGNING_SECRET, startHarness, type Harness } from './harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const wait = (token: string, timeoutSec = 10) =>
  h.get(`/api/guard/wait?token=${encodeURIComponent(token)}&timeoutSec=${timeoutSec}`);

describe('decisions through signed Slack clicks', () => {
  test('approve: the waiting agent gets the outcome and the effective params', async () => {
    const req = await h.create('simple');
    expect(req.status).toBe('ready_for_approval');
    const waiting = wait(req.token);
    const click = await h.click('approve', req.requestId, 'U_ALICE');
    expect(click.status).toBe(200);
    expect(await h.outcomeOf(click)).toMatchObject({ ok: true, status: 'approved' });
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'approved',
      approvers: ['U_ALICE'],
      decidedBy: 'U_ALICE',
      effectiveParams: { database: 'orders', steps: 3 },
    });
    expect(res.body.payloadHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(res.body.decidedAt).toEqual(expect.any(String));
  });

  test('deny ends the request as denied', async () => {
    const req = await h.create('simple');
    const click = await h.click('deny', req.requestId, 'U_BOB');
    expect(await h.outcomeOf(click)).toMatchObject({ ok: true, status: 'denied' });
    const res = await wait(req.token);
    expect(res.body).toMatchObject({ status: 'denied', decidedBy: 'U_BOB' });
    const again = await h.click('approve', req.requestId, 'U_ALICE');
    expect(again.status).toBe(200);
    expect(await h.outcomeOf(again)).toMatchObject({ ok: false, error: 'already_decided' });
  });

  test('quorum 2: a repeated click is a duplicate, the second approver decides', async () => {
    const req = await h.create('quorum2');
    expect(await h.clickOutcome('approve', req.requestId, 'U_ALICE')).toMatchObject({
      ok: true,
      status: 'ready_for_approval',
    });
    expect(await h.clickOutcome('approve', req.requestId, 'U_ALICE')).toMatchObject({ ok: false, error: 'duplicate' });
    const status = await h.get(`/api/guard/status?requestId=${req.requestId}`);
    expect(status.body).toMatchObject({
      approvalsCount: 1,
      minApprovals: 2,
      approvers: ['U_ALICE'],
      status: 'ready_for_approval',
    });
    expect(await h.clickOutcome('approve', req.requestId, 'U_BOB')).toMatchObject({ ok: true, status: 'approved' });
    const res = await wait(req.token);
    expect(res.body.approvers).toEqual(['U_ALICE', 'U_BOB']);
  });

  test('persona gating: approval refused until every required persona acked, members only', async () => {
    const req = await h.create('personas');
    expect(req.status).toBe('awaiting_personas');
    expect(await h.clickOutcome('approve', req.requestId, 'U_ALICE')).toMatchObject({ ok: false, error: 'not_ready' });
    // DBA has members: an approver who is not one may not ack it.
    expect(await h.clickOutcome('persona_ack:DBA', req.requestId, 'U_ALICE')).toMatchObject({
      ok: false,
      error: 'not_authorized',
    });
    expect(await h.clickOutcome('persona_ack:DBA', req.requestId, 'U_DBA')).toMatchObject({
      ok: true,
      status: 'awaiting_personas',
    });
    expect(await h.clickOutcome('persona_ack:DBA', req.requestId, 'U_DBA')).toMatchObject({
      ok: false,
      error: 'already_acked',
    });
    // Security has no members: any allowed approver may ack it.
    expect(await h.clickOutcome('persona_ack:Security', req.requestId, 'U_BOB')).toMatchObject({
      ok: true,
      status: 'ready_for_approval',
    });
    expect(await h.clickOutcome('approve', req.requestId, 'U_ALICE')).toMatchObject({ ok: true, status: 'approved' });
    const status = await h.get(`/api/guard/status?requestId=${req.requestId}`);
    expect(status.body.personaState).toMatchObject({
      DBA: { acked: true, by: 'U_DBA' },
      Security: { acked: true, by: 'U_BOB' },
    });
  });

  test('self-approval refused unless the action allows it', async () => {
    const req = await h.create('simple');
    expect(await h.clickOutcome('approve', req.requestId, 'U_REQ')).toMatchObject({
      ok: false,
      error: 'self_approval',
    });
    const ok = await h.create('self_ok');
    expect(await h.clickOutcome('approve', ok.requestId, 'U_REQ')).toMatchObject({ ok: true, status: 'approved' });
  });

  test('a non-approver is refused and the refusal reaches the clicker as an ephemeral message', async () => {
    const req = await h.create('simple');
    const res = await h.click('approve', req.requestId, 'U_MALLORY');
    expect(res.status).toBe(200);
    expect(await h.outcomeOf(res)).toMatchObject({ ok: false, error: 'not_authorized' });
    const eph = await h.fakeSlack.waitFor((c) => c.method === 'chat.postEphemeral' && c.args.user === 'U_MALLORY');
    expect(String(eph.args.text)).toMatch(/not authorized/i);
    expect((await h.get(`/api/guard/status?requestId=${req.requestId}`)).body.status).toBe('ready_for_approval');
  });

  test('a click on a message showing stale params is refused', async () => {
    const req = await h.create('simple');
    const res = await h.click('approve', req.requestId, 'U_ALICE', { blockId: 'decide:sha256:0000' });
    expect(await h.outcomeOf(res)).toMatchObject({ ok: false, error: 'stale_payload' });
  });
});

describe('expiry', () => {
  test('a request nobody decides expires on its timer', async () => {
    const req = await h.create('short');
    const res = await wait(req.token, 10);
    expect(res.body).toMatchObject({ status: 'expired', decidedBy: 'system' });
    const lateness = Date.parse(res.body.decidedAt) - Date.parse(req.expiresAt);
    expect(lateness).toBeGreaterThanOrEqual(0);
    expect(await h.clickOutcome('approve', req.requestId, 'U_ALICE')).toMatchObject({
      ok: false,
      error: 'already_decided',
    });
  });
});

describe('long-poll', () => {
  test('returns within tens of milliseconds of the decision', async () => {
    const req = await h.create('simple');
    const started = Date.now();
    const waiting = wait(req.token, 30).then((r) => ({ r, at: Date.now() }));
    await new Promise((r) => setTimeout(r, 300));
    const clickAt = Date.now();
    await h.click('approve', req.requestId, 'U_ALICE');
    const { r, at } = await waiting;
    expect(r.body.status).toBe('approved');
    expect(at - started).toBeGreaterThanOrEqual(300);
    // Wake-up latency is measured by the load harness; here it only has to be far below the wait bound.
    expect(at - clickAt).toBeLessThan(5000);
  });

  test('answers with the unchanged state after the wait bound', async () => {
    const req = await h.create('simple');
    const res = await wait(req.token, 1);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ready_for_approval', terminal: false });
    expect(res.body.effectiveParams).toBeUndefined();
  });

  test('POST /api/guard/wait answers the current state at once', async () => {
    const req = await h.create('simple');
    const res = await h.post('/api/guard/wait', { token: req.token });
    expect(res.body).toMatchObject({ requestId: req.requestId, status: 'ready_for_approval' });
  });
});

describe('tokens', () => {
  test.each([
    ['GET wait without token', () => h.get('/api/guard/wait'), 400, 'missing_token'],
    ['POST wait without token', () => h.post('/api/guard/wait', {}), 400, 'missing_token'],
    ['forged token', () => h.get('/api/guard/wait?token=gt1.req_abc.forged'), 404, 'not_found'],
    ['garbage token', () => h.get('/api/guard/wait?token=%00%01'), 404, 'not_found'],
    ['status without requestId', () => h.get('/api/guard/status'), 400, 'missing_requestId'],
    ['unknown request', () => h.get('/api/guard/status?requestId=req_nope'), 404, 'not_found'],
  ])('%s', async (_name, call, status, error) => {
    const res = await call();
    expect(res.status).toBe(status);
    expect(res.body.error).toBe(error);
  });

  test('a validly signed token for a request that does not exist is not_found', async () => {
    const res = await h.get(
      `/api/guard/wait?token=${h.api.app && (await import('../../api/security.js')).createTokenSigner('test-token-secret').issue('req_missing')}`,
    );
    expect(res.status).toBe(404);
  });
});

describe('create validation', () => {
  const valid = {
    action: 'simple',
    params: {},
    meta: { origin: { repo: 'a/b' }, requester: { id: 'U1', source: 'agent' }, justification: 'why not' },
  };
  test.each([
    ['empty body', {}],
    ['missing meta', { action: 'simple', params: {} }],
    ['short justification', { ...valid, meta: { ...valid.meta, justification: 'no' } }],
    ['bad requester source', { ...valid, meta: { ...valid.meta, requester: { id: 'U1', source: 'email' } } }],
    ['params not an object', { ...valid, params: [1, 2] }],
    ['unknown top-level field', { ...valid, extra: true }],
    ['action not a string', { ...valid, action: 42 }],
  ])('%s → 400 invalid_payload', async (_name, body) => {
    const res = await h.post('/api/guard/request', body);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_payload');
    expect(res.body.details.length).toBeGreaterThan(0);
  });

  test('malformed JSON → 400, not 500', async () => {
    const res = await h.post('/api/guard/request', '{"action": ');
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_payload');
  });

  test('unknown action → 403 policy_denied', async () => {
    const res = await h.post('/api/guard/request', { ...valid, action: 'drop_database' });
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('policy_denied');
  });

  test('unknown route → 404 JSON', async () => {
    const res = await h.get('/api/nope');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: 'not_found' });
  });

  test('Idempotency-Key: the same key returns the first request, not a second one', async () => {
    const key = `key-${Date.now()}`;
    const first = await h.post('/api/guard/request', valid, { 'idempotency-key': key });
    const second = await h.post('/api/guard/request', valid, { 'idempotency-key': key });
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.body.requestId).toBe(first.body.requestId);
    expect(second.body.expiresAt).toBe(first.body.expiresAt);
    const other = await h.post('/api/guard/request', valid, { 'idempotency-key': `${key}-2` });
    expect(other.body.requestId).not.toBe(first.body.requestId);
  });
});

describe('Slack request verification', () => {
  const payload = () => blockActionPayload({ actionId: 'approve', value: 'req_x', userId: 'U_ALICE' });
  const secEvents = async (type: string) =>
    (await h.metrics.registry.getSingleMetric('security_events_total')?.get())?.values.find(
      (v) => v.labels.type === type,
    )?.value ?? 0;

  test('forged signature → 400 bad_signature, counted', async () => {
    const before = await secEvents('bad_signature');
    const res = await sendInteraction(h.url, SIGNING_SECRET, payload(), { signature: 'v0=deadbeef' });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ error: 'bad_signature' });
    expect(await secEvents('bad_signature')).toBe(before + 1);
  });

  test('signed with another secret → 400 bad_signature', async () => {
    const res = await sendInteraction(h.url, 'wrong-secret', payload());
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ error: 'bad_signature' });
  });

  test('missing signature headers → 400 bad_signature', async () => {
    const res = await sendInteraction(h.url, SIGNING_SECRET, payload(), { omitHeaders: ['x-slack-signature'] });
    expect(res.status).toBe(400);
  });

  test('timestamp more than 300 s old → 400 stale_signature, counted', async () => {
    const before = await secEvents('stale_signature');
    const res = await sendInteraction(h.url, SIGNING_SECRET, payload(), {
      timestampSec: Math.floor(Date.now() / 1000) - 301,
    });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ error: 'stale_signature' });
    expect(await secEvents('stale_signature')).toBe(before + 1);
  });

  test('the same signed request twice → 400 replay_detected, counted as replay', async () => {
    const req = await h.create('quorum2');
    const body = formBody(blockActionPayload({ actionId: 'approve', value: req.requestId, userId: 'U_ALICE' }));
    const headers = signSlackRequest(SIGNING_SECRET, body);
    const send = () => fetch(`${h.url}/api/slack/interactions`, { method: 'POST', headers: { ...headers }, body });
    expect((await send()).status).toBe(200);
    const before = await secEvents('replay');
    const replay = await send();
    expect(replay.status).toBe(400);
    expect(await replay.json()).toEqual({ error: 'replay_detected' });
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
    const res = await sendInteraction(h.url, SIGNING_SECRET, {}, { rawBodyOverride: raw });
    expect(res.status).toBe(400);
    expect((res.json as { error: string }).error).toBe('invalid_payload');
  });
});

describe('health', () => {
  test('healthz, readyz and metrics', async () => {
    expect((await h.get('/healthz')).body).toBe('ok');
    expect((await h.get('/readyz')).body).toEqual({ status: 'ok', policy: 'loaded', temporal: 'ok' });
    const metrics = (await h.get('/metrics')).body as string;
    for (const name of ['approval_requests_total', 'approvals_total', 'denies_total', 'expired_total']) {
      expect(metrics).toContain(`# TYPE ${name} counter`);
    }
    expect(metrics).toMatch(/approval_requests_total\{action="simple"\} \d+/);
  });
});
