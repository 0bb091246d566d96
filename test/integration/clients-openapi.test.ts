/**
 * The REST form of the agent integrations: the OpenAPI document at /docs/json (generated from the routes' own zod
 * schemas, covering every route), Swagger UI at /docs, and the documented flow driven with plain fetch against the
 * running service (real HTTP, real Temporal, decisions through signed Slack interactions).
 */
import { createPublicKey, verify } from 'node:crypto';
import { z } from 'zod';
import {
  createdResponseSchema,
  createRequestSchema,
  stateResponseSchema,
  waitQuerySchema,
} from '../../domain/api-schemas.js';
import { payloadHash } from '../../domain/payload-hash.js';
import {
  AGENT_KEY,
  decideWhenPosted,
  newParams,
  OUTCOME_CASES,
  receiptKeyPem,
  requestInput,
  startClientsHarness,
} from './clients-support.js';
import type { Harness } from './harness.js';

let h: Harness;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let doc: any;

beforeAll(async () => {
  h = await startClientsHarness();
  const res = await h.get('/docs/json');
  expect(res.status).toBe(200);
  doc = res.body;
}, 60_000);

afterAll(async () => {
  await h?.close();
});

/** [method, url] of every route Fastify serves, read from its route tree (children print their suffix only). */
function servedRoutes(tree: string): Array<[string, string]> {
  const routes: Array<[string, string]> = [];
  const prefixes: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^((?:│ {3}| {4})*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    prefixes.length = depth;
    const url = `${prefixes[depth - 1] ?? ''}${m[2]}`;
    prefixes[depth] = url;
    for (const method of m[3]?.split(', ') ?? []) routes.push([method, url]);
  }
  return routes;
}

const jsonSchema = (schema: z.ZodType, io: 'input' | 'output') => {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io });
  return rest;
};

describe('OpenAPI document', () => {
  test('every route Fastify serves is documented, with a summary and its answers', () => {
    const served = servedRoutes(h.api.app.printRoutes({ commonPrefix: false }));
    // The tree is read right: routes of every depth are found.
    expect(served).toEqual(
      expect.arrayContaining([
        ['POST', '/api/guard/request'],
        ['GET', '/api/guard/wait-sse'],
        ['POST', '/api/admin/requests/:id/decision'],
        ['GET', '/healthz'],
      ]),
    );
    const missing = served
      .filter(([method, url]) => method !== 'HEAD' && !url.startsWith('/docs'))
      .filter(([method, url]) => {
        const operation = doc.paths[url.replace(/:(\w+)/g, '{$1}')]?.[method.toLowerCase()];
        return !operation?.summary || Object.keys(operation.responses ?? {}).length === 0;
      });
    expect(missing).toEqual([]);
    expect(doc.openapi).toBe('3.1.0');
  });

  test('request and answer schemas are generated from the zod schemas the routes parse with', () => {
    const create = doc.paths['/api/guard/request'].post;
    expect(create.requestBody.content['application/json'].schema).toEqual(jsonSchema(createRequestSchema, 'input'));
    expect(create.responses['200'].content['application/json'].schema).toEqual({
      ...jsonSchema(createdResponseSchema, 'output'),
      description: create.responses['200'].description,
    });
    expect(create.parameters).toEqual([expect.objectContaining({ in: 'header', name: 'idempotency-key' })]);
    expect(create.security).toEqual([{ agentKey: [] }, {}]);
    expect(Object.keys(create.responses)).toEqual(['200', '400', '401', '403', '409', '429', '503']);
    expect(create.responses['403'].content['application/json'].schema.properties.error).toEqual({
      type: 'string',
      enum: ['policy_denied'],
    });

    const wait = doc.paths['/api/guard/wait'].get;
    const query = jsonSchema(waitQuerySchema, 'input') as { properties: Record<string, unknown> };
    expect(wait.parameters.map((p: { name: string }) => p.name)).toEqual(Object.keys(query.properties));
    expect(wait.responses['200'].content['application/json'].schema).toEqual({
      ...jsonSchema(stateResponseSchema, 'output'),
      description: wait.responses['200'].description,
    });
    expect(doc.paths['/api/admin/requests/{id}/cancel'].post.security).toEqual([{ adminToken: [] }]);
  });

  test('zod stays the validator: refusals keep their codes and paths', async () => {
    const bad = await h.post(
      '/api/guard/request',
      { action: 'deploy', params: {} },
      { authorization: `Bearer ${AGENT_KEY}` },
    );
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({
      error: 'invalid_payload',
      details: [{ path: 'meta', message: expect.any(String) }],
    });
    const noToken = await h.get('/api/guard/wait?timeoutSec=1');
    expect(noToken.body).toEqual({ error: 'missing_token' });
  });
});

describe('Swagger UI at /docs', () => {
  test('the page and its scripts load under their own CSP; API answers keep the strict one', async () => {
    const page = await fetch(`${h.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('swagger-initializer.js');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");

    const bundle = await fetch(`${h.url}/docs/static/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('content-type')).toContain('javascript');
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(100_000);

    const api = await fetch(`${h.url}/api/guard/receipt-key`);
    const apiCsp = api.headers.get('content-security-policy') ?? '';
    expect(apiCsp).toContain("default-src 'none'");
    expect(apiCsp).not.toContain('script-src');
  });
});

/** The README's offline check, with nothing but node:crypto. */
function verifyOffline(receipt: string, pem: string): Record<string, unknown> | null {
  const [body = '', signature = ''] = receipt.split('.');
  const ok = verify(null, Buffer.from(body), createPublicKey(pem), Buffer.from(signature, 'base64url'));
  return ok ? (JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Record<string, unknown>) : null;
}

describe('the documented REST flow with plain fetch', () => {
  const auth = { authorization: `Bearer ${AGENT_KEY}` };

  async function waitForOutcome(token: string) {
    for (;;) {
      const res = await h.get(`/api/guard/wait?token=${encodeURIComponent(token)}&timeoutSec=20`);
      expect(res.status).toBe(200);
      const state = stateResponseSchema.parse(res.body);
      if (state.terminal) return state;
    }
  }

  test.each(OUTCOME_CASES.map((c) => [c.name, c] as const))('%s, with a receipt verified offline', async (_, c) => {
    const params = newParams();
    const deciding = decideWhenPosted(h, params, c.decision);
    const created = await h.post('/api/guard/request', requestInput(c.action, params), auth);
    expect(created.status).toBe(200);
    const { token, requestId } = createdResponseSchema.parse(created.body);
    expect(await deciding).toBe(requestId);
    const outcome = await waitForOutcome(token);
    expect(outcome).toMatchObject({ status: c.status, effectiveParams: c.effective(params) });
    const claims = verifyOffline(outcome.receipt!, await receiptKeyPem(h));
    expect(claims).toMatchObject({ requestId, outcome: c.status, payloadHash: payloadHash(outcome.effectiveParams!) });
  });

  test('a retried POST with the same Idempotency-Key returns the same request', async () => {
    const input = requestInput('deploy', newParams());
    const headers = { ...auth, 'idempotency-key': 'rest-retry-1' };
    const first = await h.post('/api/guard/request', input, headers);
    const retry = await h.post('/api/guard/request', input, headers);
    expect(retry.body.requestId).toBe(first.body.requestId);
    expect(retry.body.idempotentReplay).toBe(true);
    const other = await h.post('/api/guard/request', input, { ...auth, 'idempotency-key': 'rest-retry-2' });
    expect(other.body.requestId).not.toBe(first.body.requestId);
  });
});
