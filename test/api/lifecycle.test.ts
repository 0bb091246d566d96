/**
 * Cancel, re-request, the event stream, receipts and the admin routes in-process: their contract, refusals and
 * error mapping against the in-memory gateway. End to end on Temporal: test/integration/lifecycle.test.ts.
 */
import { ADMIN_TOKEN, startApiHarness, type ApiHarness } from './harness.js';
import { approvedBy, standardPolicy, TEST_ACTIONS } from '../integration/fixtures.js';

let h: ApiHarness;
const admin = { 'x-admin-token': ADMIN_TOKEN };

beforeAll(async () => {
  h = await startApiHarness({
    policy: standardPolicy({
      ...TEST_ACTIONS,
      again: approvedBy(['U_ALICE'], 1, { allowReRequest: true, reRequestCooldownSec: 60 }),
      again_now: approvedBy(['U_ALICE'], 1, { allowReRequest: true, reRequestCooldownSec: 0 }),
    }),
  });
});

afterAll(async () => {
  await h?.close();
});

describe('cancel', () => {
  test('the requester cancels with the token; a second cancel is 409 already_decided', async () => {
    const req = await h.create('simple');
    const res = await h.post('/api/guard/cancel', { token: req.token, reason: 'not needed' });
    expect(res).toMatchObject({ status: 200, body: { status: 'cancelled', decidedBy: 'U_REQ', reason: 'not needed' } });
    expect(res.body.receipt).toEqual(expect.any(String));
    expect(await h.post('/api/guard/cancel', { token: req.token })).toMatchObject({
      status: 409,
      body: { error: 'already_decided' },
    });
  });

  test.each([
    ['no token', {}, 400, 'missing_token'],
    ['a forged token', { token: 'gt1.req_x.forged' }, 404, 'not_found'],
    ['a reason too long', { token: 'x', reason: 'y'.repeat(2001) }, 400, 'invalid_payload'],
  ])('%s → %i %s', async (_what, body, status, error) => {
    expect(await h.post('/api/guard/cancel', body)).toMatchObject({ status, body: { error } });
  });
});

describe('re-request', () => {
  const decide = async (action: string) => {
    const req = await h.create(action);
    h.gateway.apply(req.requestId, { type: 'deny', userId: 'U_ALICE' });
    return req;
  };

  test('a decided request starts again in its lineage, named <lineage>_r1', async () => {
    const original = await decide('again_now');
    const res = await h.post('/api/guard/rerequest', { originalRequestId: original.requestId, actor: 'U_REQ' });
    expect(res).toMatchObject({
      status: 200,
      body: {
        requestId: `${original.requestId}_r1`,
        lineageId: original.requestId,
        originalRequestId: original.requestId,
        status: 'ready_for_approval',
        policy: { minApprovals: 1, requiredPersonas: [] },
      },
    });
    expect((await h.gateway.input(res.body.requestId)).lineageId).toBe(original.requestId);
    expect(h.audit()).toContainEqual(expect.objectContaining({ event: 'request_rerequested', actor: 'U_REQ' }));
  });

  test('within the cooldown → 429 cooldown with Retry-After', async () => {
    const original = await decide('again');
    const res = await h.post('/api/guard/rerequest', { originalRequestId: original.requestId, actor: 'U_REQ' });
    expect(res).toMatchObject({ status: 429, body: { error: 'cooldown', retryAfterSec: expect.any(Number) } });
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(50);
  });

  test.each([
    ['an open request', async () => (await h.create('again_now')).requestId, 403, 'not_allowed'],
    ['an action without re-requests', async () => (await decide('simple')).requestId, 403, 'not_allowed'],
    ['an unknown request', async () => 'req_unknown', 404, 'not_found'],
    ['an id with a quote', async () => "req_'x", 400, 'invalid_payload'],
  ])('%s → %i %s', async (_what, id, status, error) => {
    const res = await h.post('/api/guard/rerequest', { originalRequestId: await id(), actor: 'U_REQ' });
    expect(res).toMatchObject({ status, body: { error } });
  });
});

describe('the event stream', () => {
  const states = (text: string) =>
    text
      .split('\n\n')
      .filter((e) => e.startsWith('event: state'))
      .map((e) =>
        JSON.parse(
          e
            .split('\n')
            .find((l) => l.startsWith('data: '))!
            .slice(6),
        ),
      );

  test("a stream opened before the first Slack post holds its first event for the post's outcome", async () => {
    const req = await h.create('simple');
    const started = Date.now();
    const streamed = h.get(`/api/guard/wait-sse?token=${encodeURIComponent(req.token)}`);
    await new Promise((r) => setTimeout(r, 300));
    // The post settles (no new version), then the decision.
    h.gateway.apply(req.requestId, { type: 'notify', notification: { slack: 'posted', permalink: 'https://x/p1' } });
    h.gateway.apply(req.requestId, { type: 'approve', userId: 'U_ALICE' });
    const events = states((await streamed).text);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(events.map((e) => [e.status, e.notification.slack])).toEqual([
      ['ready_for_approval', 'posted'],
      ['approved', 'posted'],
    ]);
  });

  test('the hold ends after 2 s without the post: the first event says it is pending', async () => {
    const req = await h.create('simple');
    const started = Date.now();
    const streamed = h.get(`/api/guard/wait-sse?token=${encodeURIComponent(req.token)}`);
    await new Promise((r) => setTimeout(r, 2300));
    h.gateway.apply(req.requestId, { type: 'approve', userId: 'U_ALICE' });
    const events = states((await streamed).text);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2300);
    expect(events.map((e) => [e.status, e.notification.slack])).toEqual([
      ['ready_for_approval', 'pending'],
      ['approved', 'pending'],
    ]);
  });

  test('a decided request streams its one state and ends', async () => {
    const req = await h.create('simple');
    h.gateway.apply(req.requestId, { type: 'approve', userId: 'U_ALICE' });
    const res = await h.get(`/api/guard/wait-sse?token=${encodeURIComponent(req.token)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = res.text.split('\n\n').filter((e) => e.startsWith('event: state'));
    expect(events).toHaveLength(1);
    const data = JSON.parse(
      events[0]!
        .split('\n')
        .find((l) => l.startsWith('data: '))!
        .slice(6),
    );
    expect(data).toMatchObject({ status: 'approved', terminal: true, receipt: expect.any(String) });
    expect(h.gateway.listenerCount(req.requestId)).toBe(0);
  });

  test.each([
    ['no token', '/api/guard/wait-sse', 400, 'missing_token'],
    ['a forged token', '/api/guard/wait-sse?token=gt1.req_x.y', 404, 'not_found'],
  ])('%s → %i %s', async (_what, url, status, error) => {
    expect(await h.get(url)).toMatchObject({ status, body: { error } });
  });
});

describe('receipts', () => {
  test('a receipt verifies with its claims; tampering makes it invalid', async () => {
    const req = await h.create('simple');
    h.gateway.apply(req.requestId, { type: 'approve', userId: 'U_ALICE' });
    const { receipt } = (await h.get(`/api/guard/status?requestId=${req.requestId}`)).body as { receipt: string };
    const verified = await h.post('/api/guard/verify', { receipt });
    expect(verified.body).toMatchObject({ valid: true, requestId: req.requestId, outcome: 'approved' });
    const [body, sig] = receipt.split('.');
    const tampered = `${body}.${sig!.startsWith('A') ? 'B' : 'A'}${sig!.slice(1)}`;
    expect((await h.post('/api/guard/verify', { receipt: tampered })).body).toEqual({
      valid: false,
      reason: 'invalid',
    });
    expect((await h.post('/api/guard/verify', {})).status).toBe(400);
    expect((await h.get('/api/guard/receipt-key')).body).toMatchObject({ alg: 'EdDSA', pem: expect.any(String) });
  });
});

describe('admin routes', () => {
  test('list by status and action, read one with its history', async () => {
    const req = await h.create('quorum2');
    const list = await h.get('/api/admin/requests?action=quorum2&status=ready_for_approval', admin);
    expect(list.status).toBe(200);
    expect(list.body.requests.map((r: { requestId: string }) => r.requestId)).toContain(req.requestId);
    expect(list.body).toMatchObject({ count: list.body.requests.length, limit: 50 });
    const one = await h.get(`/api/admin/requests/${req.requestId}`, admin);
    expect(one.body.request).toMatchObject({ requestId: req.requestId, status: 'ready_for_approval', lineageId: null });
    expect(one.body.history[0]).toMatchObject({ type: 'WorkflowExecutionStarted' });
  });

  test("without breakGlass an operator's approval is one approval of the quorum; break-glass decides", async () => {
    const req = await h.create('quorum2');
    const path = `/api/admin/requests/${req.requestId}/decision`;
    const one = await h.post(path, { decision: 'approve', actor: 'admin', reason: 'Slack down' }, admin);
    expect(one).toMatchObject({ status: 200, body: { status: 'ready_for_approval', approvers: ['admin'] } });
    const twice = await h.post(path, { decision: 'approve', actor: 'admin', reason: 'Slack down' }, admin);
    expect(twice).toMatchObject({ status: 409, body: { error: 'duplicate' } });
    const glass = await h.post(
      path,
      { decision: 'approve', actor: 'admin', reason: 'outage', breakGlass: true },
      admin,
    );
    expect(glass).toMatchObject({
      status: 200,
      body: { status: 'approved', decidedBy: 'admin', decidedVia: 'admin', breakGlass: true },
    });
    expect(h.audit()).toContainEqual(
      expect.objectContaining({
        event: 'admin_decision',
        requestId: req.requestId,
        breakGlass: true,
        result: 'applied',
      }),
    );
    const counted = await h.metrics.adminDecisions.get();
    expect(counted.values).toContainEqual(
      expect.objectContaining({ labels: { action: 'quorum2', decision: 'approve', break_glass: 'true' }, value: 1 }),
    );
  });

  test('an operator acts under the name of their token only', async () => {
    const named = await startApiHarness({ env: { ADMIN_TOKENS: 'ops-alice:alice-token,ops-bob:bob-token' } });
    try {
      const req = await named.create('simple');
      const path = `/api/admin/requests/${req.requestId}`;
      const alice = { 'x-admin-token': 'alice-token' };
      const as = (actor: string) =>
        named.post(`${path}/decision`, { decision: 'deny', actor, reason: 'freeze' }, alice);
      expect(await as('ops-bob')).toMatchObject({ status: 403, body: { error: 'not_allowed' } });
      expect(await as('anyone')).toMatchObject({ status: 403 });
      expect(await as('ops-alice')).toMatchObject({ status: 200, body: { status: 'denied', decidedVia: 'admin' } });
      // ADMIN_TOKEN is the operator `admin`.
      expect(await named.post(`${path}/cancel`, { actor: 'admin' }, admin)).toMatchObject({
        status: 409,
        body: { error: 'already_decided' },
      });
    } finally {
      await named.close();
    }
  });

  test('an operator cancels, audited; refusals keep their codes', async () => {
    const req = await h.create('quorum2');
    const path = `/api/admin/requests/${req.requestId}`;
    const cancelled = await h.post(`${path}/cancel`, { actor: 'admin', reason: 'duplicate request' }, admin);
    expect(cancelled).toMatchObject({ status: 200, body: { status: 'cancelled', decidedVia: 'admin' } });
    expect(await h.post(`${path}/cancel`, { actor: 'admin' }, admin)).toMatchObject({
      status: 409,
      body: { error: 'already_decided' },
    });
    expect(h.audit()).toContainEqual(expect.objectContaining({ event: 'admin_cancel', result: 'applied' }));
    expect(h.audit()).toContainEqual(expect.objectContaining({ event: 'admin_cancel', result: 'already_decided' }));
    expect(await h.post('/api/admin/requests/req_nope/cancel', { actor: 'admin' }, admin)).toMatchObject({
      status: 404,
    });
    expect(await h.post(`${path}/decision`, { decision: 'maybe', actor: 'admin', reason: 'x' }, admin)).toMatchObject({
      status: 400,
      body: { error: 'invalid_payload' },
    });
  });

  test('every admin route needs the token', async () => {
    for (const [method, url] of [
      ['GET', '/api/admin/requests'],
      ['GET', '/api/admin/requests/req_x'],
      ['POST', '/api/admin/requests/req_x/decision'],
      ['POST', '/api/admin/requests/req_x/cancel'],
      ['POST', '/api/admin/reload-policy'],
    ] as const) {
      const res = await h.inject({ method, url, headers: { 'x-admin-token': 'wrong' } });
      expect([url, res.status, res.body]).toEqual([url, 401, { error: 'unauthorized' }]);
    }
  });

  test('reload answers the number of actions and their names', async () => {
    const res = await h.post('/api/admin/reload-policy', undefined, admin);
    expect(res.body).toMatchObject({ ok: true, actions: 7, hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(res.body.actionNames).toEqual(expect.arrayContaining(['simple', 'again', 'again_now']));
  });
});

describe('the OpenAPI document', () => {
  test("each route's declared auth is its security", async () => {
    const doc = (await h.get('/docs/json')).body;
    expect(doc.paths['/api/guard/request'].post.security).toEqual([{ agentKey: [] }, {}]);
    expect(doc.paths['/api/admin/requests'].get.security).toEqual([{ adminToken: [] }]);
    expect(doc.paths['/api/slack/interactions'].post.security).toEqual([{ slackSignature: [] }]);
    expect(doc.paths['/api/guard/wait'].get.security).toBeUndefined();
    for (const path of ['/api/guard/request', '/api/guard/wait-sse', '/api/admin/requests/{id}/decision']) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
  });
});
