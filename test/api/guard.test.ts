/**
 * The agent routes' contract in-process (SPEC section 3): create, wait, status, tokens, validation and error mapping,
 * against the in-memory gateway. What needs Temporal (decisions through the workflow, timers, the long-poll on the
 * history) is in test/integration/core.test.ts.
 */
import { createTokenSigner } from '../../api/security.js';
import { payloadHash } from '../../domain/payload-hash.js';
import { requestBody, startApiHarness, type ApiHarness } from './harness.js';

let h: ApiHarness;

beforeAll(async () => {
  h = await startApiHarness();
});

afterAll(async () => {
  await h?.close();
});

const valid = {
  action: 'simple',
  params: {},
  meta: { origin: { repo: 'a/b' }, requester: { id: 'U1', source: 'agent' }, justification: 'why not' },
};

describe('create', () => {
  test('answers the token, the request and the plan the policy gave it', async () => {
    const res = await h.post('/api/guard/request', requestBody('personas'));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      token: expect.stringMatching(/^gt1\.req_[0-9a-f]{32}\./),
      requestId: expect.stringMatching(/^req_[0-9a-f]{32}$/),
      status: 'awaiting_personas',
      createdAt: expect.any(String),
      expiresAt: expect.any(String),
      payloadHash: payloadHash({ database: 'orders', steps: 3 }),
      policy: { minApprovals: 1, requiredPersonas: ['DBA', 'Security'], timeoutSec: 3600 },
    });
    const input = await h.gateway.input(res.body.requestId);
    expect(input.plan).toMatchObject({ action: 'personas', approvers: ['U_ALICE', 'U_BOB', 'U_ADMIN'] });
    expect(Date.parse(input.expiresAt) - Date.parse(input.createdAt)).toBe(3600_000);
  });

  test.each([
    ['empty body', {}],
    ['missing meta', { action: 'simple', params: {} }],
    ['short justification', { ...valid, meta: { ...valid.meta, justification: 'no' } }],
    ['bad requester source', { ...valid, meta: { ...valid.meta, requester: { id: 'U1', source: 'email' } } }],
    ['params not an object', { ...valid, params: [1, 2] }],
    ['unknown top-level field', { ...valid, extra: true }],
    ['action not a string', { ...valid, action: 42 }],
  ])('%s → 400 invalid_payload naming the field', async (_name, body) => {
    const res = await h.post('/api/guard/request', body);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_payload');
    expect(res.body.details.length).toBeGreaterThan(0);
    for (const d of res.body.details) expect(d).toEqual({ path: expect.any(String), message: expect.any(String) });
  });

  test('the path of a nested refusal is the dotted field name', async () => {
    const res = await h.post('/api/guard/request', { ...valid, meta: { ...valid.meta, justification: 'no' } });
    expect(res.body.details).toEqual([{ path: 'meta.justification', message: expect.any(String) }]);
  });

  test('malformed JSON → 400, not 500', async () => {
    const res = await h.post('/api/guard/request', '{"action": ');
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_payload');
  });

  test('unknown action → 403 policy_denied with the reason', async () => {
    const res = await h.post('/api/guard/request', { ...valid, action: 'drop_database' });
    expect(res.status).toBe(403);
    expect(res.body).toEqual({
      error: 'policy_denied',
      detail: "action 'drop_database' is not in the policy; actions: simple, quorum2, personas, short, self_ok",
      actions: ['simple', 'quorum2', 'personas', 'short', 'self_ok'],
    });
  });

  test('Idempotency-Key: the same key returns the first request, not a second one', async () => {
    const key = `key-${Date.now()}`;
    const first = await h.post('/api/guard/request', valid, { 'idempotency-key': key });
    const second = await h.post('/api/guard/request', valid, { 'idempotency-key': key });
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ requestId: first.body.requestId, idempotentReplay: true });
    expect(second.body.expiresAt).toBe(first.body.expiresAt);
    const other = await h.post('/api/guard/request', valid, { 'idempotency-key': `${key}-2` });
    expect(other.body.requestId).not.toBe(first.body.requestId);
  });

  test('Temporal unreachable → 503 temporal_unavailable, and /readyz degrades', async () => {
    h.gateway.unavailable = true;
    try {
      const res = await h.post('/api/guard/request', valid);
      expect(res).toMatchObject({ status: 503, body: { error: 'temporal_unavailable' } });
      expect((await h.get('/readyz')).body).toEqual({ status: 'degraded', policy: 'loaded', temporal: 'error' });
    } finally {
      h.gateway.unavailable = false;
    }
  });
});

describe('wait and status', () => {
  const wait = (token: string, timeoutSec: number) =>
    h.get(`/api/guard/wait?token=${encodeURIComponent(token)}&timeoutSec=${timeoutSec}`);

  test('a long-poll answers at the next change with the new state', async () => {
    const req = await h.create('simple');
    const waiting = wait(req.token, 10);
    await new Promise((r) => setImmediate(r));
    const approved = await h.gateway.command(req.requestId, 'approve', { userId: 'U_ALICE' });
    expect(approved.ok).toBe(true);
    const res = await waiting;
    expect(res.body).toMatchObject({
      status: 'approved',
      terminal: true,
      approvers: ['U_ALICE'],
      effectiveParams: { database: 'orders', steps: 3 },
      overridden: false,
      receipt: expect.any(String),
    });
  });

  test('timeoutSec=0 answers the current state at once; a decided request answers at once', async () => {
    const req = await h.create('simple');
    expect((await wait(req.token, 0)).body).toMatchObject({ status: 'ready_for_approval', terminal: false });
    h.gateway.apply(req.requestId, { type: 'expire' });
    expect((await wait(req.token, 60)).body).toMatchObject({ status: 'expired', terminal: true });
  });

  test('POST /api/guard/wait answers the current state at once', async () => {
    const req = await h.create('simple');
    const res = await h.post('/api/guard/wait', { token: req.token });
    expect(res.body).toMatchObject({ requestId: req.requestId, status: 'ready_for_approval', version: 1 });
  });

  test('status carries the plan, the personas and, once decided, the receipt', async () => {
    const req = await h.create('personas');
    const open = await h.get(`/api/guard/status?requestId=${req.requestId}`);
    expect(open.body).toMatchObject({ status: 'awaiting_personas', requiredPersonas: ['DBA', 'Security'] });
    expect(open.body.receipt).toBeUndefined();
    h.gateway.apply(req.requestId, { type: 'cancel', actor: 'U_REQ' });
    const done = await h.get(`/api/guard/status?requestId=${req.requestId}`);
    expect(done.body).toMatchObject({ status: 'cancelled', decidedBy: 'U_REQ', receipt: expect.any(String) });
  });

  test.each([
    ['GET wait without token', () => h.get('/api/guard/wait'), 400, 'missing_token'],
    ['POST wait without token', () => h.post('/api/guard/wait', {}), 400, 'missing_token'],
    ['forged token', () => h.get('/api/guard/wait?token=gt1.req_abc.forged'), 404, 'not_found'],
    ['garbage token', () => h.get('/api/guard/wait?token=%00%01'), 404, 'not_found'],
    ['status without requestId', () => h.get('/api/guard/status'), 400, 'missing_requestId'],
    ['unknown request', () => h.get('/api/guard/status?requestId=req_nope'), 404, 'not_found'],
    ['unknown route', () => h.get('/api/nope'), 404, 'not_found'],
  ])('%s', async (_name, call, status, error) => {
    const res = await call();
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ error });
  });

  test('a validly signed token for a request that does not exist is not_found', async () => {
    const token = createTokenSigner('test-token-secret').issue('req_missing');
    const res = await h.get(`/api/guard/wait?token=${token}`);
    expect(res).toMatchObject({ status: 404, body: { error: 'not_found' } });
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
