/**
 * What agents rely on beyond the origin's contract (SPEC section 10, issue 17), in-process: the actions they may ask
 * for, params checked against the action's schema, idempotency conflicts, receipts that expire and say how the
 * decision was made and are refused unless approved, and whether a human was told.
 */
import { approvedBy, standardPolicy, TEST_ACTIONS } from '../integration/fixtures.js';
import { requestBody, startApiHarness, type ApiHarness } from './harness.js';

let h: ApiHarness;

const deploySchema = {
  type: 'object',
  required: ['service', 'replicas'],
  properties: {
    service: { type: 'string', pattern: '^[a-z-]+$' },
    replicas: { type: 'integer', minimum: 1, maximum: 50, errorMessage: 'replicas must be 1 to 50' },
    options: { type: 'object', properties: { canary: { type: 'boolean' } } },
  },
};

beforeAll(async () => {
  h = await startApiHarness({
    policy: standardPolicy({
      ...TEST_ACTIONS,
      deploy: approvedBy(['U_ALICE', 'U_BOB'], 2, {
        description: 'Deploy a service to production',
        personasRequired: ['DBA'],
        timeoutSec: 900,
        paramsSchema: deploySchema,
        allowParamOverrides: true,
        overrideKeys: ['replicas'],
        receiptTtlSec: 1,
      }),
    }),
  });
});

afterAll(async () => {
  await h?.close();
});

const deploy = (params: Record<string, unknown>, headers: Record<string, string> = {}) =>
  h.post('/api/guard/request', requestBody('deploy', { params }), headers);

describe('GET /api/guard/actions', () => {
  test('lists each action with who decides, what it takes, and nothing secret', async () => {
    const res = await h.get('/api/guard/actions');
    expect(res.status).toBe(200);
    expect(res.body.unknownAction).toBe('deny');
    const byName = Object.fromEntries(res.body.actions.map((a: { name: string }) => [a.name, a]));
    expect(byName.deploy).toEqual({
      name: 'deploy',
      description: 'Deploy a service to production',
      approverCount: 3,
      minApprovals: 2,
      personas: ['DBA'],
      timeoutSec: 900,
      editsAllowed: true,
      editableParams: ['replicas'],
      paramsSchema: {
        type: 'object',
        required: ['service', 'replicas'],
        properties: {
          service: { type: 'string', pattern: '^[a-z-]+$' },
          replicas: { type: 'integer', minimum: 1, maximum: 50 },
          options: { type: 'object', properties: { canary: { type: 'boolean' } } },
        },
      },
    });
    expect(byName.simple).toMatchObject({ description: null, editsAllowed: false, editableParams: [] });
    expect(byName.simple.paramsSchema).toBeUndefined();
    expect(JSON.stringify(res.body)).not.toMatch(/U_ALICE|U_DBA|superApprovers/);
  });

  test('needs the agent key when agent keys are configured', async () => {
    const keyed = await startApiHarness({ env: { AGENT_API_KEYS: 'ci:ci-key-0123456789' } });
    try {
      expect((await keyed.get('/api/guard/actions')).status).toBe(401);
      const ok = await keyed.get('/api/guard/actions', { authorization: 'Bearer ci-key-0123456789' });
      expect(ok.body.actions.map((a: { name: string }) => a.name)).toContain('simple');
    } finally {
      await keyed.close();
    }
  });
});

describe('params checked against the action schema at create', () => {
  test('valid params create the request', async () => {
    expect((await deploy({ service: 'web', replicas: 3 })).status).toBe(200);
  });

  test.each([
    [{ replicas: 3 }, [{ path: 'params.service', message: 'is required' }]],
    [{ service: 'web', replicas: 99 }, [{ path: 'params.replicas', message: 'replicas must be 1 to 50' }]],
    [
      { service: 'Web!', replicas: 2, options: { canary: 'yes' } },
      expect.arrayContaining([
        expect.objectContaining({ path: 'params.service' }),
        expect.objectContaining({ path: 'params.options.canary' }),
      ]),
    ],
  ])('%j → 400 invalid_payload naming the param', async (params, details) => {
    const res = await deploy(params);
    expect(res).toMatchObject({ status: 400, body: { error: 'invalid_payload', details } });
  });
});

describe('Idempotency-Key conflicts', () => {
  test('the same body gives the same request; another action, params or origin is 409 naming what differs', async () => {
    const key = { 'idempotency-key': `conflict-${Date.now()}` };
    const first = await deploy({ service: 'web', replicas: 3 }, key);
    const same = await deploy({ replicas: 3, service: 'web' }, key);
    expect(same.body).toMatchObject({ requestId: first.body.requestId, idempotentReplay: true });
    const params = await deploy({ service: 'web', replicas: 4 }, key);
    expect(params).toMatchObject({
      status: 409,
      body: { error: 'idempotency_conflict', requestId: first.body.requestId },
    });
    expect(params.body.detail).toContain('params');
    const origin = await h.post(
      '/api/guard/request',
      requestBody('deploy', {
        params: { service: 'web', replicas: 3 },
        meta: { ...requestBody('deploy').meta, origin: { repo: 'acme/other' } },
      }),
      key,
    );
    expect(origin).toMatchObject({ status: 409, body: { error: 'idempotency_conflict' } });
    expect(origin.body.detail).toContain('origin');
    const action = await h.post('/api/guard/request', requestBody('simple'), key);
    expect(action.body.detail).toMatch(/its action, params differ/);
  });
});

describe('receipts', () => {
  const receiptOf = async (requestId: string) =>
    ((await h.get(`/api/guard/status?requestId=${requestId}`)).body as { receipt: string }).receipt;
  const claimsOf = (receipt: string) => JSON.parse(Buffer.from(receipt.split('.')[0]!, 'base64url').toString());

  test('a denied receipt is refused unless the caller asks for a denial', async () => {
    const req = await h.create('simple');
    h.gateway.apply(req.requestId, { type: 'deny', userId: 'U_ALICE' });
    const receipt = await receiptOf(req.requestId);
    expect(claimsOf(receipt)).toMatchObject({
      outcome: 'denied',
      via: 'slack',
      breakGlass: false,
      exp: expect.any(Number),
    });
    expect((await h.post('/api/guard/verify', { receipt })).body).toEqual({
      valid: false,
      reason: 'outcome_mismatch',
      outcome: 'denied',
    });
    expect((await h.post('/api/guard/verify', { receipt, outcome: 'denied' })).body).toMatchObject({ valid: true });
    expect((await h.post('/api/guard/verify', { receipt, outcome: 'any' })).body).toMatchObject({ valid: true });
  });

  test('a receipt expires receiptTtlSec after the decision', async () => {
    const res = await deploy({ service: 'web', replicas: 3 });
    h.gateway.apply(res.body.requestId, {
      type: 'admin_decision',
      decision: 'approve',
      actor: 'admin',
      breakGlass: true,
    });
    const receipt = await receiptOf(res.body.requestId);
    const claims = claimsOf(receipt);
    expect(claims).toMatchObject({ outcome: 'approved', via: 'admin', breakGlass: true });
    expect(claims.exp).toBe(Math.floor(Date.parse(claims.decidedAt) / 1000) + 1);
    const wait = claims.exp * 1000 - Date.now() + 50;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    expect((await h.post('/api/guard/verify', { receipt })).body).toEqual({ valid: false, reason: 'expired' });
  });
});

describe('notification', () => {
  test('wait, status and the stream say whether a human was told', async () => {
    const req = await h.create('simple');
    const waited = await h.post('/api/guard/wait', { token: req.token });
    expect(waited.body.notification).toEqual({ slack: 'pending' });
    h.gateway.apply(req.requestId, { type: 'notify', notification: { slack: 'failed', error: 'channel_not_found' } });
    const status = await h.get(`/api/guard/status?requestId=${req.requestId}`);
    expect(status.body.notification).toEqual({ slack: 'failed', error: 'channel_not_found' });
  });
});

describe('a key reused after its request was purged', () => {
  test('starts a new request with a new id and token; the old id, token and buttons name nothing', async () => {
    const key = { 'idempotency-key': `purged-${Date.now()}` };
    const first = (await deploy({ service: 'web', replicas: 3 }, key)).body;
    h.gateway.apply(first.requestId, { type: 'deny', userId: 'U_ALICE' });
    expect((await h.get(`/api/guard/status?requestId=${first.requestId}`)).body.status).toBe('denied');
    h.gateway.purge(first.requestId);

    const again = await deploy({ service: 'web', replicas: 3 }, key);
    expect(again.status).toBe(200);
    expect(again.body.requestId).not.toBe(first.requestId);
    expect(again.body.token).not.toBe(first.token);
    expect(again.body.idempotentReplay).toBeUndefined();
    for (const res of [
      await h.get(`/api/guard/status?requestId=${first.requestId}`),
      await h.post('/api/guard/wait', { token: first.token }),
    ]) {
      expect(res).toMatchObject({ status: 404, body: { error: 'not_found' } });
    }
    const click = await h.click('deny', first.requestId, 'U_ALICE');
    expect(click.body).toMatchObject({ ok: false, error: 'not_found' });
    expect((await h.get(`/api/guard/status?requestId=${again.body.requestId}`)).body.status).toBe('awaiting_personas');
  });
});
