/**
 * Decisions, expiry and the long-poll end to end: the real API, the workflow on the dev server, signed Slack clicks.
 * The routes' contract alone (validation, tokens, the Slack checks, probes) is tested in-process in test/api/.
 */
import { startHarness, type Harness } from './harness.js';

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
