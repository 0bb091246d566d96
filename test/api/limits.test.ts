/**
 * Limits on what a request may carry (issue 15 item 1, SPEC section 10), in-process: params and policy hints nested
 * past their depth or over their size are refused with 400 naming the path and the limit, however deep the body
 * (a parser or validator that recursed would overflow its stack and answer 500); anything within them is accepted.
 */
import fc from 'fast-check';
import { JSON_LIMITS, jsonBytes, tooDeep } from '../../domain/json-limits.js';
import { requestBody, startApiHarness, type ApiHarness } from './harness.js';

let h: ApiHarness;

beforeAll(async () => {
  h = await startApiHarness();
});

afterAll(async () => {
  await h?.close();
});

/** `{"a":{"a":...}}` or `[[...]]` nested `depth` levels, as raw JSON (never built as objects first). */
function nestedJson(depth: number, kind: 'object' | 'array'): string {
  return kind === 'object'
    ? `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`
    : `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

const createRaw = (paramsJson: string, hintsJson?: string) => {
  const body = JSON.stringify(requestBody('simple')).replace(
    '"params":{"database":"orders","steps":3}',
    `"params":${paramsJson}`,
  );
  const raw = hintsJson ? body.replace(/}$/, `,"policyHints":${hintsJson}}`) : body;
  return h.post('/api/guard/request', raw);
};

describe('depth', () => {
  test.each([
    ['objects', 17, 'object'],
    ['objects, 5,000 levels', 5_000, 'object'],
    ['arrays, 4,500 levels', 4_500, 'array'],
    ['arrays, 100,000 levels', 100_000, 'array'],
  ] as const)('params of nested %s → 400 naming the path and the limit', async (_what, depth, kind) => {
    const inner = nestedJson(depth - 1, kind);
    const res = await createRaw(`{"x":${inner}}`);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_payload');
    const [detail] = res.body.details as Array<{ path: string; message: string }>;
    expect(detail?.message).toBe('nested deeper than 16 levels (the limit)');
    expect(detail?.path.startsWith('params.x')).toBe(true);
  });

  test('params exactly at the depth limit are accepted; hints past theirs are refused', async () => {
    expect((await createRaw(`{"x":${nestedJson(JSON_LIMITS.params.maxDepth - 1, 'object')}}`)).status).toBe(200);
    const hints = await createRaw('{}', `{"x":${nestedJson(JSON_LIMITS.policyHints.maxDepth, 'object')}}`);
    expect(hints).toMatchObject({
      status: 400,
      body: { details: [{ message: 'nested deeper than 8 levels (the limit)' }] },
    });
  });
});

describe('size', () => {
  test('params over 64 KiB of JSON → 400 with the size and the limit; at the limit → 200', async () => {
    const over = { blob: 'x'.repeat(JSON_LIMITS.params.maxBytes) };
    const res = await h.post('/api/guard/request', requestBody('simple', { params: over }));
    expect(res).toMatchObject({ status: 400, body: { error: 'invalid_payload' } });
    expect(res.body.details[0]).toEqual({
      path: 'params',
      message: `${jsonBytes(over)} bytes of JSON, more than the limit of ${JSON_LIMITS.params.maxBytes}`,
    });
    // Multi-byte characters count as their UTF-8 bytes: 4 bytes each.
    const fits = { blob: '🙂'.repeat((JSON_LIMITS.params.maxBytes - 12) / 4) };
    expect(jsonBytes(fits)).toBeLessThanOrEqual(JSON_LIMITS.params.maxBytes);
    expect((await h.post('/api/guard/request', requestBody('simple', { params: fits }))).status).toBe(200);
  });
});

describe('the limit checks themselves', () => {
  test('tooDeep agrees with a recursive measure on any JSON value', () => {
    const depthOf = (v: unknown): number =>
      v === null || typeof v !== 'object' ? 0 : 1 + Math.max(0, ...Object.values(v as object).map(depthOf));
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 12 }), fc.integer({ min: 1, max: 12 }), (value, limit) => {
        expect(tooDeep(value, limit) === null).toBe(depthOf(value) <= limit);
      }),
      { numRuns: 500 },
    );
  });
});
