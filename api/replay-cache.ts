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
