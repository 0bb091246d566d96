/**
 * Security hardening of the HTTP API (issue 8), in-process: agent keys, the rate limiter, security headers, strict
 * content types, body limits, admin routes without ADMIN_TOKEN, and no secret in logs.
 */
import type { Metrics } from '../../observability/metrics.js';
import { blockActionPayload, formBody, signSlackRequest } from '../helpers/slack.js';
import { ADMIN_TOKEN, requestBody, SIGNING_SECRET, startApiHarness, type ApiHarness } from './harness.js';

const CI_KEY = 'ci-key-0123456789abcdef';
const RELEASE_KEY = 'release-key-fedcba9876543210';
const AGENT_API_KEYS = `ci-bot:${CI_KEY}, release-bot:${RELEASE_KEY}`;
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

let h: ApiHarness;
const replicas: ApiHarness[] = [];

beforeAll(async () => {
  h = await startApiHarness({ env: { AGENT_API_KEYS } });
});

afterAll(async () => {
  for (const r of replicas) await r.close();
  await h?.close();
});

async function securityEvents(metrics: Metrics, type: string): Promise<number> {
  const { values } = await metrics.securityEvents.get();
  return values.find((v) => v.labels.type === type)?.value ?? 0;
}

/** Another API with its own settings, metrics and logs. */
async function replica(env: Record<string, string>, logs?: string[]): Promise<ApiHarness> {
  const r = await startApiHarness({ env: { AGENT_API_KEYS, ...env }, ...(logs ? { logs } : {}) });
  replicas.push(r);
  return r;
}

describe('agent authentication', () => {
  test.each([
    ['no Authorization header', {}, 'missing_agent_key'],
    ['a wrong key', bearer('not-a-key-0000000000'), 'invalid_agent_key'],
    ['a key of another scheme', { authorization: `Basic ${CI_KEY}` }, 'invalid_agent_key'],
    ['a prefix of a valid key', bearer(CI_KEY.slice(0, -1)), 'invalid_agent_key'],
  ])('creating with %s → 401 unauthorized, counted and audited', async (_what, headers, reason) => {
    const before = await securityEvents(h.metrics, 'unauthorized');
    const auditBefore = h.audit().length;
    const res = await h.post('/api/guard/request', requestBody('simple'), headers);
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: 'unauthorized' });
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(await securityEvents(h.metrics, 'unauthorized')).toBe(before + 1);
    const audited = h.audit().slice(auditBefore);
    expect(audited).toEqual([
      expect.objectContaining({
        event: 'security_event',
        type: 'unauthorized',
        route: '/api/guard/request',
        actor: '127.0.0.1',
        reason,
      }),
    ]);
    expect(JSON.stringify(audited)).not.toContain('not-a-key');
  });

  test('the right key creates; the agent is recorded on the request', async () => {
    const res = await h.post('/api/guard/request', requestBody('simple'), bearer(RELEASE_KEY));
    expect(res.status).toBe(200);
    const { requestId } = res.body as { requestId: string };
    expect((await h.gateway.input(requestId)).agent).toBe('release-bot');
    // Reading needs no agent key: the request token or id is the capability.
    expect((await h.get(`/api/guard/status?requestId=${requestId}`)).status).toBe(200);
  });

  test('an Idempotency-Key is scoped to the agent: two agents using the same key get two requests', async () => {
    const key = { 'idempotency-key': `shared-${Date.now()}` };
    const a1 = await h.post('/api/guard/request', requestBody('simple'), { ...bearer(CI_KEY), ...key });
    const a2 = await h.post('/api/guard/request', requestBody('simple'), { ...bearer(CI_KEY), ...key });
    const b = await h.post('/api/guard/request', requestBody('simple'), { ...bearer(RELEASE_KEY), ...key });
    expect([a1.status, a2.status, b.status]).toEqual([200, 200, 200]);
    expect(a2.body.requestId).toBe(a1.body.requestId);
    expect(b.body.requestId).not.toBe(a1.body.requestId);
  });

  test('cancel and re-request need a key too; with one they reach the route', async () => {
    const created = await h.create('simple', {}, bearer(CI_KEY));
    for (const [path, body] of [
      ['/api/guard/cancel', { token: created.token }],
      ['/api/guard/rerequest', { originalRequestId: created.requestId, actor: 'U_REQ' }],
    ] as const) {
      expect(await h.post(path, body)).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
      expect(await h.post(path, body, bearer('wrong-key-000000000000'))).toMatchObject({ status: 401 });
    }
    // The original is still open: re-requesting it is refused by the route itself, past authentication.
    const rerequest = await h.post(
      '/api/guard/rerequest',
      { originalRequestId: created.requestId, actor: 'U_REQ' },
      bearer(CI_KEY),
    );
    expect(rerequest).toMatchObject({ status: 403, body: { error: 'not_allowed' } });
    const cancel = await h.post('/api/guard/cancel', { token: created.token }, bearer(RELEASE_KEY));
    expect(cancel).toMatchObject({ status: 200, body: { status: 'cancelled' } });
  });

  test('without AGENT_API_KEYS nothing is asked and no agent is recorded', async () => {
    const r = await replica({ AGENT_API_KEYS: '' });
    const res = await r.post('/api/guard/request', requestBody('simple'));
    expect(res.status).toBe(200);
    expect((await r.gateway.input(res.body.requestId as string)).agent).toBeNull();
  });
});

describe('rate limiting', () => {
  const CAPACITY = 3;
  const env = { RATE_LIMIT_CAPACITY: String(CAPACITY), RATE_LIMIT_REFILL_PER_SEC: '0.1' };

  test('the request past the capacity → 429 rate_limited with Retry-After, counted; agents have their own buckets', async () => {
    const r = await replica(env);
    const { metrics } = r;
    const create = (key: string) => r.post('/api/guard/request', requestBody('simple'), bearer(key));
    for (let i = 0; i < CAPACITY; i++) {
      const ok = await create(CI_KEY);
      expect(ok.status).toBe(200);
      expect(ok.headers.get('x-ratelimit-remaining')).toBe(String(CAPACITY - 1 - i));
    }
    const limited = await create(CI_KEY);
    expect(limited.status).toBe(429);
    expect(limited.body).toEqual({ error: 'rate_limited', retryAfterSec: expect.any(Number) });
    const retryAfter = Number(limited.headers.get('retry-after'));
    // A window is capacity / refill = 30 s.
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(30);
    expect(await securityEvents(metrics, 'rate_limited')).toBe(1);

    // Another agent, and anonymous callers from the same IP, still have their whole budget.
    for (let i = 0; i < CAPACITY; i++) expect((await create(RELEASE_KEY)).status).toBe(200);
    expect((await create(RELEASE_KEY)).status).toBe(429);
    expect(await securityEvents(metrics, 'rate_limited')).toBe(2);
  });

  test('anonymous callers are limited per IP; health, readiness, metrics and Slack are never limited', async () => {
    const r = await replica(env);
    for (let i = 0; i < CAPACITY; i++) {
      expect((await r.get('/api/guard/status?requestId=req_none')).status).toBe(404);
    }
    const limited = await r.get('/api/guard/status?requestId=req_none');
    expect(limited).toMatchObject({ status: 429, body: { error: 'rate_limited' } });
    // The IP's budget is spent: a client guessing agent keys gets no more tries either.
    expect(await r.post('/api/guard/request', requestBody('simple'), bearer('guess'))).toMatchObject({ status: 429 });
    for (let i = 0; i < CAPACITY + 2; i++) {
      expect((await r.get('/healthz')).status).toBe(200);
      expect((await r.get('/readyz')).status).toBe(200);
      expect((await r.get('/metrics')).status).toBe(200);
      expect((await r.click('approve', 'req_none', 'U_ALICE')).status).toBe(200);
    }
  });
});

describe('security headers, content types and body limits', () => {
  test.each([
    ['a JSON answer', '/api/guard/receipt-key', 200],
    ['a refusal', '/api/guard/status', 400],
    ['an unknown route', '/nope', 404],
  ])('%s carries the security headers and is not cacheable', async (_what, path, status) => {
    const res = await h.get(path);
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'.*frame-ancestors 'none'/);
  });

  test.each([
    ['text/plain', JSON.stringify(requestBody('simple'))],
    ['application/x-www-form-urlencoded', 'action=simple'],
    ['multipart/form-data; boundary=x', '--x--'],
    ['application/xml', '<action>simple</action>'],
  ])('a JSON route refuses %s → 415 unsupported_media_type', async (contentType, body) => {
    const res = await h.post('/api/guard/request', body, { 'content-type': contentType, ...bearer(CI_KEY) });
    expect(res).toMatchObject({ status: 415, body: { error: 'unsupported_media_type' } });
  });

  test('the Slack route refuses anything but a form, even when correctly signed → 415', async () => {
    const raw = JSON.stringify({ payload: blockActionPayload({ actionId: 'approve', value: 'r', userId: 'U' }) });
    for (const contentType of ['application/json', 'text/plain']) {
      const headers = { ...signSlackRequest(SIGNING_SECRET, raw), 'content-type': contentType };
      const res = await h.post('/api/slack/interactions', raw, headers);
      expect(res).toMatchObject({ status: 415, body: { error: 'unsupported_media_type' } });
    }
  });

  test('bodies over 256 KiB → 413 payload_too_large, on JSON and Slack routes', async () => {
    const huge = requestBody('simple', { params: { blob: 'x'.repeat(300 * 1024) } });
    const res = await h.post('/api/guard/request', huge, bearer(CI_KEY));
    expect(res).toMatchObject({ status: 413, body: { error: 'payload_too_large' } });
    const form = formBody({ type: 'block_actions', junk: 'y'.repeat(300 * 1024) });
    const slack = await h.post('/api/slack/interactions', form, { ...signSlackRequest(SIGNING_SECRET, form) });
    expect(slack).toMatchObject({ status: 413, body: { error: 'payload_too_large' } });
  });

  test('prototype-poisoning JSON is refused with a 400', async () => {
    const res = await h.post('/api/guard/request', '{"action":"simple","__proto__":{"admin":true}}', bearer(CI_KEY));
    expect(res.status).toBe(400);
    expect(res.body.error).toEqual(expect.any(String));
  });
});

describe('admin routes and secrets', () => {
  test('without ADMIN_TOKEN configured the admin routes answer 401 to every token', async () => {
    const r = await replica({ ADMIN_TOKEN: '' });
    const attempts: Array<Record<string, string>> = [{}, { 'x-admin-token': ADMIN_TOKEN }, { 'x-admin-token': '' }];
    for (const headers of attempts) {
      expect(await r.post('/api/admin/reload-policy', undefined, headers)).toMatchObject({
        status: 401,
        body: { error: 'unauthorized' },
      });
      expect(await r.get('/api/admin/requests', headers)).toMatchObject({ status: 401 });
    }
  });

  test('no key, token or signature reaches the logs, even at trace level', async () => {
    const logs: string[] = [];
    const r = await replica({}, logs);
    const created = await r.post('/api/guard/request', requestBody('simple'), bearer(CI_KEY));
    expect(created.status).toBe(200);
    const token = created.body.token as string;
    await r.get(`/api/guard/wait?token=${encodeURIComponent(token)}&timeoutSec=0`);
    await r.post('/api/guard/request', requestBody('simple'), bearer(RELEASE_KEY.slice(0, -2)));
    await r.post('/api/admin/reload-policy', undefined, { 'x-admin-token': ADMIN_TOKEN });
    expect((await r.click('approve', created.body.requestId as string, 'U_ALICE')).status).toBe(200);
    const signature = signSlackRequest(SIGNING_SECRET, 'x')['x-slack-signature'];
    await r.post('/api/slack/interactions', 'payload=%7B%7D', {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-signature': signature,
      'x-slack-request-timestamp': String(Math.floor(Date.now() / 1000)),
    });
    // Temporal away: the error handler logs each refused call, the request's credentials in hand.
    r.gateway.unavailable = true;
    expect((await r.get(`/api/guard/wait?token=${encodeURIComponent(token)}`)).status).toBe(503);
    expect((await r.post('/api/guard/request', requestBody('simple'), bearer(CI_KEY))).status).toBe(503);
    const text = logs.join('');
    // The logger did run (so the check below means something).
    expect(text.length).toBeGreaterThan(0);
    for (const secret of [CI_KEY, RELEASE_KEY.slice(0, -2), ADMIN_TOKEN, token, signature, SIGNING_SECRET]) {
      expect(text).not.toContain(secret);
    }
  });
});
