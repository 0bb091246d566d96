/**
 * The knee: the highest arrival rate a loop sustains. Steps the rate up until a step breaks the criteria below, and
 * reports the last rate that held. The service's approvals and the floor's loops are stepped the same way, so their
 * maxima compare.
 */
import type { Arrivals } from './open-loop.js';
import type { Summary } from './stats.js';

export interface KneeCriteria {
  /** The loop's p99 must stay under this (ms). */
  p99Ms: number;
  /** Share of the offered arrivals completed (within the drain) at least. */
  completion: number;
}

export interface KneeStep {
  rate: number;
  offered: number;
  done: number;
  perSec: number;
  p50: number | null;
  p99: number | null;
  held: boolean;
  /** Why the step broke the criteria. */
  broke: string | null;
}

export interface Knee {
  criteria: KneeCriteria;
  steps: KneeStep[];
  /** The last rate that held (arrivals per second); null when even the first step broke. */
  maxRate: number | null;
}

export function judgeStep(rate: number, a: Arrivals, loop: Summary | null, c: KneeCriteria): KneeStep {
  const completion = a.offered === 0 ? 0 : a.done / a.offered;
  const broke =
    a.failed > 0
      ? `${a.failed} failed (${a.errors[0] ?? ''})`
      : a.shed > 0
        ? `${a.shed} shed`
        : completion < c.completion
          ? `completed ${Math.round(completion * 100)} %`
          : loop === null || loop.p99 > c.p99Ms
            ? `p99 ${loop?.p99 ?? 'n/a'} ms`
            : null;
  return {
    rate,
    offered: a.offered,
    done: a.done,
    perSec: a.perSec,
    p50: loop?.p50 ?? null,
    p99: loop?.p99 ?? null,
    held: broke === null,
    broke,
  };
}

/**
 * Runs `measure` at `start`, `start × factor`, ... until a rate breaks `criteria` twice in a row (or `maxSteps` ran).
 * A broken step is measured once more at the same rate: on a shared machine one stall of another process puts a
 * p99 over its bound at any rate, and one such step must not end the search. `between` runs after each step (let
 * the service settle).
 */
export async function findKnee(
  measure: (rate: number) => Promise<{ arrivals: Arrivals; loop: Summary | null }>,
  opts: { start: number; factor: number; maxSteps: number; criteria: KneeCriteria; between: () => Promise<void> },
  log: (msg: string) => void,
): Promise<Knee> {
  const steps: KneeStep[] = [];
  let maxRate: number | null = null;
  const stepAt = async (rate: number) => {
    const m = await measure(rate);
    const step = judgeStep(rate, m.arrivals, m.loop, opts.criteria);
    steps.push(step);
    log(
      `  ${rate}/s: ${step.done}/${step.offered} done, p99 ${step.p99} ms${step.broke ? ` — broke: ${step.broke}` : ''}`,
    );
    await opts.between();
    return step.held;
  };
  for (let i = 0, rate = opts.start; i < opts.maxSteps; i++, rate = Math.round(rate * opts.factor * 100) / 100) {
    if (!(await stepAt(rate)) && !(await stepAt(rate))) break;
    maxRate = rate;
  }
  return { criteria: opts.criteria, steps, maxRate };
}
