/** Percentiles and a bounded worker pool: the two things every load phase needs. */

export interface Summary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentiles in milliseconds, rounded to 0.1 ms; null when there is no sample. */
export function summarize(samples: readonly number[]): Summary | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
  const round = (v: number) => Math.round(v * 10) / 10;
  return {
    count: sorted.length,
    p50: round(at(50)),
    p95: round(at(95)),
    p99: round(at(99)),
    max: round(sorted[sorted.length - 1]!),
    mean: round(sorted.reduce((s, v) => s + v, 0) / sorted.length),
  };
}

export interface PoolResult {
  done: number;
  failed: number;
  /** First few error messages, for the report. */
  errors: string[];
  wallMs: number;
  /** Stopped by the time bound before `count` tasks ran. */
  timedOut: boolean;
}

/**
 * Runs `task(i)` for i in [0, count) with at most `concurrency` in flight, and starts no new task after
 * `deadlineMs` of wall time: every phase is bounded in count and in time.
 */
export async function runPool(
  count: number,
  concurrency: number,
  deadlineMs: number,
  task: (i: number) => Promise<void>,
): Promise<PoolResult> {
  const started = performance.now();
  let next = 0;
  let done = 0;
  let failed = 0;
  let timedOut = false;
  const errors: string[] = [];
  const lane = async () => {
    while (next < count) {
      if (performance.now() - started > deadlineMs) {
        timedOut = true;
        return;
      }
      const i = next++;
      try {
        await task(i);
        done++;
      } catch (err) {
        failed++;
        if (errors.length < 5) errors.push(err instanceof Error ? err.message : String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, lane));
  return { done, failed, errors, wallMs: performance.now() - started, timedOut };
}

export const ratio = (ours: number | null | undefined, floor: number | null | undefined): number | null =>
  ours == null || floor == null || floor === 0 ? null : Math.round((ours / floor) * 100) / 100;

export const perSecond = (n: number, wallMs: number): number =>
  wallMs > 0 ? Math.round((n / wallMs) * 10_000) / 10 : 0;
