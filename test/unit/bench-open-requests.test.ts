/**
 * The `--open N` report judges the targets only when every request of the fill was posted before the with-open
 * measurement began: measured over a backlog of first workflow tasks, its ratios are the backlog's, not the open
 * requests' (bench/open-requests.ts `judgeOpenRequests`).
 */
import {
  formatOpenRequestsTable,
  judgeOpenRequests,
  sampleCounts,
  type OpenRequestsResult,
} from '../../bench/open-requests.js';

type Measurement = OpenRequestsResult['atNone'];

const summary = (p99: number) => ({ count: 100, p50: p99 / 2, p95: p99 * 0.9, p99, max: p99, mean: p99 / 2 });

function measurement(createP99: number, escalationP99: number, expiryP99: number): Measurement {
  return {
    service: { create: summary(createP99) },
    timers: { count: 100, escalationLateness: summary(escalationP99), expiryLateness: summary(expiryP99) },
    loadavg: { start: [1, 1, 1], end: [1, 1, 1] },
  } as unknown as Measurement;
}

function result(backlog: number, atOpen: Measurement): Omit<OpenRequestsResult, 'targets'> {
  return {
    count: 1000,
    asked: 1000,
    fillRate: 50,
    rate: 4,
    fillSec: 30,
    atNone: measurement(40, 100, 120),
    atOpen,
    fill: [],
    memory: [],
    growth: [],
    backlog,
  };
}

describe('judgeOpenRequests', () => {
  it('judges both ratios against 1.2x, the timers by the worse of escalation and expiry', () => {
    const targets = judgeOpenRequests(result(0, measurement(44, 90, 150)));
    expect(targets).toEqual([
      { name: 'create p99 with 1000 open ÷ none', target: '≤ 1.2×', value: 1.1, met: true },
      { name: 'timer lateness p99 (worst) with 1000 open ÷ none', target: '≤ 1.2×', value: 1.25, met: false },
    ]);
  });

  it('reports the ratios of a measurement over a backlog but judges neither', () => {
    const targets = judgeOpenRequests(result(2500, measurement(240, 90, 100)));
    expect(targets.map((t) => [t.value, t.met])).toEqual([
      [6, null],
      [0.83, null],
    ]);
    for (const t of targets) expect(t.name).toContain('(not judged: 2500 not yet posted when measured)');
  });
});

describe('sampleCounts', () => {
  it('samples at 10, 25, 50 and 100 % of the count, without repeats', () => {
    expect(sampleCounts(100000)).toEqual([10000, 25000, 50000, 100000]);
    expect(sampleCounts(4)).toEqual([1, 2, 4]);
  });
});

describe('formatOpenRequestsTable', () => {
  // The two measurements are an hour apart: a host that slowed in between must show beside them.
  it("prints each measurement's host: CPU stolen and the speed check before and after it", () => {
    const full = (createP99: number, stealPct: number | null, start: number, end: number): Measurement =>
      ({
        ...measurement(createP99, 100, 120),
        service: { create: summary(createP99), ack: summary(20), arrivals: { done: 120, offered: 120 } },
        perApproval: { cpuMs: 100, dbOps: 25 },
        cpu: { stealPct, speedCheckMs: { start, end } },
      }) as unknown as Measurement;
    const r = result(0, full(50, null, 300, 360));
    const text = formatOpenRequestsTable({ ...r, atNone: full(40, 0.4, 280, 290), targets: judgeOpenRequests(r) });
    const rows = text.split('\n');
    expect(rows.find((l) => l.startsWith('none open'))).toMatch(/0\.4 %; 280 → 290\s*$/);
    expect(rows.find((l) => /^1000 open\s{2}/.test(l))).toMatch(/n\/a %; 300 → 360\s*$/);
    expect(rows.some((l) => l.includes('stolen; speed check ms'))).toBe(true);
  });
});
