/**
 * Hostile input (issue 8): property-based fuzzing of every route with fast-check, in-process (`app.inject`) against
 * the real app and the real Bolt app over the in-memory gateway. Whatever comes in, the answer is never a 5xx and
 * never a crash: a refusal is a 4xx JSON body with an `error` reason, and valid input gets its 2xx. About 3,500
 * inputs. Clicks and modal submissions on live workflows are fuzzed end to end in test/integration/fuzz.test.ts.
 */
import fc from 'fast-check';
import {
  blockActionPayload,
  formBody,
  INTERACTIONS_PATH,
  signSlackRequest,
  viewSubmissionPayload,
} from '../helpers/slack.js';
import { ADMIN_TOKEN, requestBody, SIGNING_SECRET, startApiHarness, type ApiHarness } from './harness.js';

const AGENT_KEY = 'fuzz-agent-key-0123456789';

let h: ApiHarness;
/** Real request ids, so some fuzzed clicks and lookups hit live workflows rather than only unknown ids. */
const known: string[] = [];

beforeAll(async () => {
  h = await startApiHarness({ env: { AGENT_API_KEYS: `fuzzer:${AGENT_KEY}` } });
  for (const action of ['simple', 'quorum2', 'personas']) {
    known.push((await h.create(action, {}, { authorization: `Bearer ${AGENT_KEY}` })).requestId);
  }
});

afterAll(async () => {
  await h?.close();
});

type Method = 'GET' | 'POST';
interface Input {
  method: Method;
  url: string;
  headers?: Record<string, string>;
  body?: string;
}

const tally = { inputs: 0, byStatus: new Map<number, number>() };

interface Answer {
  statusCode: number;
  body: string;
}

/** Sends one input and checks the invariant every answer must hold. */
async function send(input: Input): Promise<Answer> {
  const res = await h.inject({
    method: input.method,
    url: input.url,
    headers: input.headers ?? {},
    ...(input.body === undefined ? {} : { payload: input.body }),
  });
  const answer = { statusCode: res.status, body: res.text };
  tally.inputs++;
  tally.byStatus.set(res.status, (tally.byStatus.get(res.status) ?? 0) + 1);
  const where = `${input.method} ${input.url.slice(0, 200)} → ${res.status} ${answer.body.slice(0, 300)}`;
  if (res.status >= 500) throw new Error(`server error: ${where}`);
  if (res.status >= 400) {
    if (!/^application\/json/.test(res.headers.get('content-type') ?? '')) throw new Error(`not JSON: ${where}`);
    const body = JSON.parse(answer.body) as { error?: unknown };
    if (typeof body.error !== 'string' || body.error.length === 0) throw new Error(`no error reason: ${where}`);
  }
  return answer;
}

// ---------------------------------------------------------------------------------------------------------------
// Arbitraries

/** Header-safe text (what an HTTP client can actually send). */
const headerText = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) });
const anyText = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), headerText);
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

const authorization = fc.oneof(
  { weight: 4, arbitrary: fc.constant(`Bearer ${AGENT_KEY}`) },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: headerText.map((t) => `Bearer ${t}`) },
  { weight: 1, arbitrary: headerText },
);
const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/xml',
      'multipart/form-data; boundary=x',
    ),
  },
  { weight: 1, arbitrary: headerText },
);

/** A create body near the valid one: each part kept, dropped or replaced by junk. */
const nearValidCreate = fc
  .record({
    action: fc.oneof(fc.constantFrom('simple', 'quorum2', 'personas', 'unknown_action'), anyText, fc.jsonValue()),
    params: fc.oneof(fc.dictionary(fc.string(), fc.jsonValue()), fc.jsonValue()),
    repo: fc.oneof(fc.constant('acme/shop'), anyText, fc.integer()),
    pr: maybe(fc.oneof(fc.integer(), fc.string(), fc.double())),
    requesterId: fc.oneof(fc.constant('U_REQ'), anyText),
    source: fc.oneof(fc.constantFrom('slack', 'github', 'agent'), anyText),
    justification: fc.oneof(fc.constant('needed for the release'), anyText),
    links: maybe(fc.array(fc.oneof(fc.webUrl(), anyText), { maxLength: 25 })),
    extra: maybe(fc.dictionary(fc.string(), fc.jsonValue(), { minKeys: 1 })),
  })
  .map((r) => ({
    action: r.action,
    params: r.params,
    meta: {
      origin: { repo: r.repo, ...(r.pr === undefined ? {} : { pr: r.pr }) },
      requester: { id: r.requesterId, source: r.source },
      justification: r.justification,
      ...(r.links ? { links: r.links } : {}),
    },
    ...r.extra,
  }));

const jsonBody = (value: fc.Arbitrary<unknown>) =>
  fc.oneof(
    { weight: 5, arbitrary: value.map((v) => JSON.stringify(v) ?? 'null') },
    { weight: 1, arbitrary: anyText },
    { weight: 1, arbitrary: fc.constantFrom('', '{', '{"a":', '[]', 'null', '{"__proto__":{"x":1}}', '\u0000') },
  );

const idLike = fc.oneof(
  fc.constantFrom(...['req_none', 'x', '']),
  anyText,
  fc.string({ minLength: 990, maxLength: 1100 }),
);
const knownOrRandomId = fc.oneof(
  fc.integer({ min: 0, max: 2 }).map((i) => known[i]!),
  idLike,
);

const querySuffix = fc.oneof(
  fc
    .dictionary(
      fc.oneof(
        fc.constantFrom('token', 'timeoutSec', 'requestId', 'status', 'action', 'requester', 'limit'),
        fc.string(),
      ),
      fc.oneof(anyText, fc.integer().map(String), fc.constantFrom('0', '-1', '1e9', 'NaN', 'approved')),
      { maxKeys: 4 },
    )
    .map((d) => {
      // A valid request token with a timeout would long-poll; fuzzed tokens never verify, so every poll is short.
      const q = new URLSearchParams(d as Record<string, string>).toString();
      return q ? `?${q}` : '';
    }),
  headerText.map((raw) => `?${raw.replace(/[#\s]/g, '')}`),
);

// ---------------------------------------------------------------------------------------------------------------

describe('fuzzing every route: never a 5xx, always a clear 4xx or a valid answer', () => {
  test('POST /api/guard/request: bodies, content types, agent keys and idempotency keys', async () => {
    await fc.assert(
      fc.asyncProperty(
        jsonBody(fc.oneof({ weight: 3, arbitrary: nearValidCreate }, { weight: 1, arbitrary: fc.jsonValue() })),
        contentType,
        authorization,
        maybe(headerText),
        async (body, type, auth, idem) => {
          const headers: Record<string, string> = { 'content-type': type };
          if (auth !== undefined) headers.authorization = auth;
          if (idem !== undefined) headers['idempotency-key'] = idem;
          const res = await send({ method: 'POST', url: '/api/guard/request', headers, body });
          if (res.statusCode === 200) expect(JSON.parse(res.body)).toMatchObject({ requestId: expect.any(String) });
        },
      ),
      { numRuns: 700 },
    );
  });

  test('a valid create with junk added or one field mangled is refused with a reason, or created', async () => {
    const valid = requestBody('simple');
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('action', 'params', 'meta', 'policyHints', 'meta.origin', 'meta.requester', 'meta.links'),
        fc.jsonValue(),
        async (field, junk) => {
          const body = structuredClone(valid) as Record<string, unknown>;
          const [top, sub] = field.split('.') as [string, string | undefined];
          if (sub) (body[top] as Record<string, unknown>)[sub] = junk;
          else body[top] = junk;
          const res = await send({
            method: 'POST',
            url: '/api/guard/request',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${AGENT_KEY}` },
            body: JSON.stringify(body),
          });
          expect([200, 400, 403]).toContain(res.statusCode);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('GET routes: query strings, path parameters and unknown paths', async () => {
    const path = fc.oneof(
      fc.constantFrom(
        '/api/guard/wait',
        '/api/guard/status',
        '/api/guard/wait-sse',
        '/api/guard/receipt-key',
        '/api/admin/requests',
        '/healthz',
        '/readyz',
        '/metrics',
      ),
      fc
        .oneof(fc.constantFrom('simple', 'quorum2', '__proto__', 'constructor', 'toString'), anyText)
        .map((a) => `/api/schemas/${encodeURIComponent(a)}`),
      knownOrRandomId.map((id) => `/api/admin/requests/${encodeURIComponent(id)}`),
      fc.webPath(),
    );
    await fc.assert(
      fc.asyncProperty(path, querySuffix, fc.boolean(), async (p, q, admin) => {
        const headers: Record<string, string> = admin ? { 'x-admin-token': ADMIN_TOKEN } : {};
        await send({ method: 'GET', url: `${p || '/'}${q}`, headers });
      }),
      { numRuns: 900 },
    );
  });

  test('POST routes with JSON bodies: wait, cancel, re-request, verify, admin decisions and reload', async () => {
    const route = fc.oneof(
      fc.constantFrom('/api/guard/wait', '/api/guard/cancel', '/api/guard/rerequest', '/api/guard/verify'),
      fc.constantFrom('/api/admin/reload-policy'),
      knownOrRandomId.map((id) => `/api/admin/requests/${encodeURIComponent(id)}/decision`),
      knownOrRandomId.map((id) => `/api/admin/requests/${encodeURIComponent(id)}/cancel`),
    );
    const body = fc.oneof(
      fc.record(
        {
          token: anyText,
          reason: anyText,
          originalRequestId: knownOrRandomId,
          actor: anyText,
          receipt: anyText,
          decision: fc.oneof(fc.constantFrom('approve', 'deny'), anyText),
        },
        { requiredKeys: [] },
      ),
      fc.jsonValue(),
    );
    await fc.assert(
      fc.asyncProperty(route, jsonBody(body), contentType, authorization, fc.boolean(), async (r, b, t, auth, adm) => {
        const headers: Record<string, string> = { 'content-type': t };
        if (auth !== undefined) headers.authorization = auth;
        if (adm) headers['x-admin-token'] = ADMIN_TOKEN;
        await send({ method: 'POST', url: r, headers, body: b });
      }),
      { numRuns: 600 },
    );
  });

  describe('Slack interactions', () => {
    const post = (raw: string, headers: Record<string, string>) =>
      send({ method: 'POST', url: INTERACTIONS_PATH, headers, body: raw });
    const signed = (raw: string) => post(raw, { ...signSlackRequest(SIGNING_SECRET, raw) });

    test('validly signed forms with random JSON in the payload field', async () => {
      await fc.assert(
        fc.asyncProperty(fc.jsonValue(), async (value) => {
          const res = await signed(new URLSearchParams({ payload: JSON.stringify(value) }).toString());
          expect([200, 400]).toContain(res.statusCode);
        }),
        { numRuns: 400 },
      );
    });

    test('validly signed clicks and modal submissions with random fields, on real and unknown requests', async () => {
      const click = fc
        .record({
          actionId: fc.oneof(
            fc.constantFrom('approve', 'deny', 'approve_edit', 'persona_ack:DBA', 'persona_ack:Nope'),
            anyText,
          ),
          value: knownOrRandomId,
          userId: fc.oneof(fc.constantFrom('U_ALICE', 'U_BOB', 'U_DBA', 'U_REQ', 'U_MALLORY'), anyText),
          blockId: maybe(anyText),
        })
        .filter((c) => c.actionId.length > 0 && c.userId.length > 0)
        .map((c) => blockActionPayload({ ...c, ...(c.blockId === undefined ? {} : { blockId: c.blockId }) }));
      const submission = fc
        .record({
          userId: fc.oneof(
            fc.constantFrom('U_ALICE', 'U_BOB'),
            anyText.filter((s) => s.length > 0),
          ),
          callbackId: fc.oneof(fc.constant('override_submit'), anyText),
          privateMetadata: fc.oneof(
            knownOrRandomId.map((id) => ({ request_id: id })),
            anyText,
            fc.jsonValue().map((v) => JSON.stringify(v) ?? ''),
          ),
          values: fc.dictionary(
            fc.string().map((k) => `ov_${k}`),
            fc.record({ value: fc.record({ type: fc.constant('plain_text_input' as const), value: maybe(anyText) }) }),
            { maxKeys: 4 },
          ),
        })
        .map((s) =>
          viewSubmissionPayload({
            ...s,
            values: Object.fromEntries(
              Object.entries(s.values).map(([k, v]) => [
                k,
                { value: { type: v.value.type, value: v.value.value ?? null } },
              ]),
            ),
          }),
        );
      await fc.assert(
        fc.asyncProperty(fc.oneof(click, submission), async (payload) => {
          const res = await signed(formBody(payload));
          expect(res.statusCode).toBe(200);
        }),
        { numRuns: 300 },
      );
    });

    test('validly signed random raw bodies', async () => {
      await fc.assert(
        fc.asyncProperty(anyText, async (raw) => {
          expect([200, 400]).toContain((await signed(raw)).statusCode);
        }),
        { numRuns: 250 },
      );
    });

    test('forged, stale and malformed signature headers are refused with 400', async () => {
      const now = () => Math.floor(Date.now() / 1000);
      const headers = fc.record(
        {
          'x-slack-signature': fc.oneof(
            headerText,
            headerText.map((t) => `v0=${t}`),
          ),
          'x-slack-request-timestamp': fc.oneof(
            headerText,
            fc.integer({ min: -1e6, max: 1e6 }).map((d) => String(now() + d)),
            fc.constantFrom('', '-1', '1e3', '0x10', String(Number.MAX_SAFE_INTEGER)),
          ),
        },
        { requiredKeys: [] },
      );
      await fc.assert(
        fc.asyncProperty(anyText, headers, async (raw, h2) => {
          const res = await post(raw, { 'content-type': 'application/x-www-form-urlencoded', ...h2 });
          expect(res.statusCode).toBe(400);
        }),
        { numRuns: 300 },
      );
    });
  });

  test('the server is still whole afterwards and saw a few thousand inputs', async () => {
    expect(tally.inputs).toBeGreaterThanOrEqual(3000);
    const health = await h.get('/healthz');
    expect(health.status).toBe(200);
    const ready = await h.get('/readyz');
    expect(ready.body).toEqual({ status: 'ok', policy: 'loaded', temporal: 'ok' });
    // Valid input was among the fuzz: some requests were created.
    expect(tally.byStatus.get(200) ?? 0).toBeGreaterThan(0);
  });
});
