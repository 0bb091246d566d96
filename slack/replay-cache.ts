/** Redis could not answer: the delivery cannot be checked, so it is refused (503), never let through unchecked. */
export class ReplayCacheUnavailable extends Error {
  override name = 'ReplayCacheUnavailable';
}

/** Remembers Slack signatures for their validity window so a captured request cannot be replayed. */
export interface ReplayCache {
  /** True the first time a key is seen within `ttlSec`, false for a repeat. */
  firstSeen(key: string, ttlSec: number): Promise<boolean>;
}

export function createMemoryReplayCache(now: () => number = Date.now): ReplayCache {
  const seen = new Map<string, number>();
  let nextSweep = 0;
  return {
    async firstSeen(key, ttlSec) {
      const t = now();
      if (t >= nextSweep) {
        for (const [k, exp] of seen) if (exp <= t) seen.delete(k);
        nextSweep = t + 10_000;
      }
      const exp = seen.get(key);
      if (exp !== undefined && exp > t) return false;
      seen.set(key, t + ttlSec * 1000);
      return true;
    },
  };
}

/** The subset of an ioredis client the shared cache needs. */
export interface RedisSetNx {
  set(key: string, value: string, ex: 'EX', ttlSec: number, nx: 'NX'): Promise<'OK' | null>;
}

/**
 * Shared by every API replica: `SET key NX EX ttl` is atomic, so of two replicas receiving the same request exactly
 * one sees it first. If Redis cannot answer, the request is refused (503) rather than let through unchecked.
 */
export function createRedisReplayCache(redis: RedisSetNx, prefix = 'guard:replay:'): ReplayCache {
  return {
    async firstSeen(key, ttlSec) {
      let answer: 'OK' | null;
      try {
        answer = await redis.set(`${prefix}${key}`, '1', 'EX', Math.max(1, Math.ceil(ttlSec)), 'NX');
      } catch {
        throw new ReplayCacheUnavailable('the replay cache (Redis) cannot be reached');
      }
      return answer === 'OK';
    },
  };
}
