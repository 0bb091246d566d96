import { agentForHeader, parseAgentKeys } from '../../api/auth.js';
import { rateLimitWindow } from '../../api/rate-limit.js';
import { createMemoryReplayCache, createRedisReplayCache, ReplayCacheUnavailable } from '../../slack/replay-cache.js';
import { ConfigError, loadConfig } from '../../config/env.js';
import { createTokenSigner } from '../../api/security.js';

describe('agent keys', () => {
  const keys = parseAgentKeys(' ci:k-ci-1 ,release:k:with:colons, ci:k-ci-2');

  test('parses name:key pairs, trimming, splitting at the first colon, several keys per name', () => {
    expect(keys).toEqual([
      { name: 'ci', key: 'k-ci-1' },
      { name: 'release', key: 'k:with:colons' },
      { name: 'ci', key: 'k-ci-2' },
    ]);
    expect(parseAgentKeys(undefined)).toEqual([]);
  });

  test.each([
    ['Bearer k-ci-1', 'ci'],
    ['Bearer k-ci-2', 'ci'],
    ['bearer k:with:colons', 'release'],
    ['Bearer   k-ci-1  ', 'ci'],
    ['Bearer k-ci-', null],
    ['Bearer k-ci-10', null],
    ['Basic k-ci-1', null],
    ['k-ci-1', null],
    ['Bearer ', null],
    ['Bearer k-ci-1 extra', null],
    [undefined, null],
  ])('%j → %s', (header, agent) => {
    expect(agentForHeader(keys, header)).toBe(agent);
  });

  test.each(['nokey', 'a:b,', ':key', 'name:', 'a:b c'])('AGENT_API_KEYS=%j stops start-up', (value) => {
    expect(() => loadConfig({ AGENT_API_KEYS: value })).toThrow(ConfigError);
    expect(() => loadConfig({ AGENT_API_KEYS: value })).toThrow(/AGENT_API_KEYS/);
  });

  test('well-formed AGENT_API_KEYS load', () => {
    expect(loadConfig({ AGENT_API_KEYS: 'ci:key-one, bot:key-two' }).AGENT_API_KEYS).toBe('ci:key-one, bot:key-two');
  });
});

describe('request tokens', () => {
  const signer = createTokenSigner('unit-secret');
  const plain = 'req_0123456789abcdef0123456789abcdef';
  // A keyed request's id carries a generation after a '.' (gateway/ids.ts): its token must still verify.
  const keyed = `${plain}.0123456789ab`;

  test.each([plain, keyed])('a token grants exactly its request id (%s)', (id) => {
    const token = signer.issue(id);
    expect(signer.verify(token)).toBe(id);
    expect(createTokenSigner('other-secret').verify(token)).toBeNull();
  });

  test('forged, truncated and malformed tokens grant nothing', () => {
    const token = signer.issue(keyed);
    const sig = token.slice(token.lastIndexOf('.') + 1);
    for (const bad of [
      token.slice(0, -1),
      `gt1.${plain}.${sig}`,
      `gt1.${keyed}x.${sig}`,
      `gt2.${keyed}.${sig}`,
      `gt1.${keyed}`,
      'gt1..',
      'gt1',
      '',
    ]) {
      expect(signer.verify(bad)).toBeNull();
    }
  });
});

describe('rate-limit window of a token bucket', () => {
  test.each([
    [60, 1, 60, 60_000],
    [10, 5, 10, 2_000],
    [3, 0.1, 3, 30_000],
    [1, 1000, 1, 1],
  ])('capacity %d, refill %d/s → %d requests per %d ms', (capacity, refill, max, windowMs) => {
    expect(rateLimitWindow(capacity, refill)).toEqual({ max, timeWindowMs: windowMs });
  });
});

describe('replay caches', () => {
  test('memory: first sighting true, repeat false until the TTL passes', async () => {
    let now = 1_000_000;
    const cache = createMemoryReplayCache(() => now);
    expect(await cache.firstSeen('sig', 300)).toBe(true);
    expect(await cache.firstSeen('sig', 300)).toBe(false);
    now += 301_000;
    expect(await cache.firstSeen('sig', 300)).toBe(true);
  });

  test('redis: SET NX EX with the prefix; a Redis error is a 503, never a pass', async () => {
    const calls: unknown[][] = [];
    const seen = new Set<string>();
    const cache = createRedisReplayCache({
      async set(...args) {
        calls.push(args);
        if (seen.has(args[0])) return null;
        seen.add(args[0]);
        return 'OK';
      },
    });
    expect(await cache.firstSeen('sig', 300)).toBe(true);
    expect(await cache.firstSeen('sig', 300)).toBe(false);
    expect(calls[0]).toEqual(['guard:replay:sig', '1', 'EX', 300, 'NX']);
    const broken = createRedisReplayCache({ set: () => Promise.reject(new Error('ECONNREFUSED')) });
    await expect(broken.firstSeen('sig', 300)).rejects.toBeInstanceOf(ReplayCacheUnavailable);
  });
});
