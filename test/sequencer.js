import Sequencer from '@jest/test-sequencer';

/** Without recorded durations, suites start by kind: the long-waiting integration ones first, the unit tests last. */
const RANK = { integration: 0, workflow: 1, api: 2, unit: 3 };
const rank = (test) => RANK[test.context.config.displayName?.name] ?? RANK.unit;

/**
 * Jest starts the slowest suites first only when its cache has their durations. A fresh clone has none, and Jest then
 * goes by file size, which started a 150-line integration suite of 80 s among the unit tests near the end of the run.
 * Once durations are known (any later run on the machine), Jest's own order stands.
 */
export default class SuiteSequencer extends Sequencer {
  sort(tests) {
    const sorted = super.sort(tests);
    if (sorted.some((t) => t.duration != null)) return sorted;
    // Stable: within a kind, Jest's order (bigger files first) stays.
    return sorted.sort((a, b) => rank(a) - rank(b));
  }
}
