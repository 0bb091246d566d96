import { createHash } from 'node:crypto';
import { canonicalJson, payloadHash } from '../../domain/payload-hash.js';
import type { Plan } from '../../domain/plan.js';
import { REDACTED, redactParams } from '../../domain/redaction.js';

const PARAMS = { database: 'orders', secret_value: 'hunter2', config: { token: 'abc', ttl: 60 }, steps: 3 };

describe('redactParams', () => {
  test.each<[Plan['redaction'], Record<string, unknown>]>([
    [{ mode: 'none', keys: [] }, PARAMS],
    [
      { mode: 'denylist', keys: ['secret_value', 'config'] },
      { database: 'orders', secret_value: REDACTED, config: REDACTED, steps: 3 },
    ],
    [
      { mode: 'allowlist', keys: ['database', 'steps'] },
      { database: 'orders', secret_value: REDACTED, config: REDACTED, steps: 3 },
    ],
    [
      { mode: 'all', keys: [] },
      { database: REDACTED, secret_value: REDACTED, config: REDACTED, steps: REDACTED },
    ],
    [
      { mode: 'all', keys: ['database'] },
      { database: REDACTED, secret_value: REDACTED, config: REDACTED, steps: REDACTED },
    ],
    [{ mode: 'denylist', keys: ['not_a_param'] }, PARAMS],
  ])('%j', (redaction, expected) => {
    expect(redactParams(PARAMS, redaction)).toEqual(expected);
  });

  test('the marker is «redacted»', () => {
    expect(REDACTED).toBe('«redacted»');
  });

  test('a hidden nested value is hidden whole, never partly', () => {
    const shown = JSON.stringify(redactParams(PARAMS, { mode: 'denylist', keys: ['config'] }));
    expect(shown).not.toContain('abc');
    expect(shown).not.toContain('ttl');
  });

  test('returns a new object and leaves the params alone', () => {
    const params = structuredClone(PARAMS);
    for (const mode of ['none', 'allowlist', 'denylist', 'all'] as const) {
      expect(redactParams(params, { mode, keys: ['database'] })).not.toBe(params);
    }
    expect(params).toEqual(PARAMS);
  });
});

describe('canonicalJson and payloadHash', () => {
  const sha256 = (text: string) => `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;

  test.each<[string, Record<string, unknown>, Record<string, unknown>]>([
    ['top-level key order', { a: 1, b: 2 }, { b: 2, a: 1 }],
    ['nested key order', { outer: { x: 1, y: { p: true, q: null } } }, { outer: { y: { q: null, p: true }, x: 1 } }],
    ['objects inside arrays', { list: [{ a: 1, b: 2 }] }, { list: [{ b: 2, a: 1 }] }],
  ])('is independent of %s', (_name, a, b) => {
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(payloadHash(a)).toBe(payloadHash(b));
  });

  test.each<[string, Record<string, unknown>, Record<string, unknown>]>([
    ['a changed value', { steps: 3 }, { steps: 4 }],
    ['a number vs its string', { steps: 3 }, { steps: '3' }],
    ['array order', { list: [1, 2] }, { list: [2, 1] }],
    ['an added key', { a: 1 }, { a: 1, b: null }],
  ])('differs for %s', (_name, a, b) => {
    expect(payloadHash(a)).not.toBe(payloadHash(b));
  });

  test('sorts keys at every depth', () => {
    expect(canonicalJson({ b: { d: 1, c: [{ f: 1, e: 2 }] }, a: 'x' })).toBe(
      '{"a":"x","b":{"c":[{"e":2,"f":1}],"d":1}}',
    );
  });

  test('is sha256 of the canonical JSON, prefixed, in lowercase hex', () => {
    const params = { database: 'orders', note: 'naïve ✓', steps: 3 };
    expect(payloadHash(params)).toBe(sha256(canonicalJson(params)));
    expect(payloadHash(params)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  test('a known vector, so the hash of recorded requests never silently changes', () => {
    expect(payloadHash({})).toBe('sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
  });
});
