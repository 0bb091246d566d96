/**
 * `npm run load-sim -- --open N --open-rate F --rate R` (issue 21 item 3): what N open requests cost and whether they
 * slow the rest. On one server, in one run: approvals and timer requests at R/s with none open; then N requests of a
 * 2 h action created through the API at F/s at most, the memory of the worker, the dev server and the API (and the
 * SQLite file) sampled at 10 %, 25 %, 50 % and 100 % of N once every request so far is posted; then the same
 * measurement at R/s with the N held open. docs/performance.md ("Open requests") says what each figure means.
 */
import { statSync } from 'node:fs';
import type { GuardClient } from './client.js';
import { serviceAtRate } from './open-loop.js';
import { measureService, type AtRate } from './open-run.js';
import { pct, table } from './open-report.js';
import { BENCH_ACTIONS } from './policy.js';
import { loadAverages, readUsage, round1, startMachineCpu, type MachineCpu } from './procs.js';
import type { Recorder } from './recorder.js';
import { awaitPosts, createPhase, settle } from './scenarios.js';
import type { Service } from './service.js';
import type { Summary } from './stats.js';

export interface OpenRequestsOptions {
  /** Requests to hold open. */
  count: number;
  /** Creates per second at most while filling. */
  fillRate: number;
  /** No create starts after this many seconds of filling: the rest is measured with what is open by then. */
  fillMaxSec: number;
  /** Approvals per second of both measurements (timer requests arrive beside them at `timerRate`). */
  rate: number;
  durationSec: number;
  warmupSec: number;
  timerRate: number;
  concurrency: number;
  phaseTimeoutMs: number;
}

/** The shares of `count` at which memory is sampled (besides 0). */
export const SAMPLE_SHARES = [0.1, 0.25, 0.5, 1] as const;

/** The processes whose memory an open request may cost. */
const MEASURED = ['api', 'worker', 'temporal'] as const;

export interface MemorySample {
  /** Open requests created and posted when sampled. */
  open: number;
  /** Seconds since the fill started. */
  atSec: number;
  loadavg: [number, number, number];
  rssMB: Record<string, number>;
  /** The dev server's SQLite file and its write-ahead log (MB). */
  dbMB: number | null;
}

export interface FillStep {
  /** Open requests once this step was created and posted. */
  open: number;
  created: number;
  failed: number;
  createsPerSec: number;
  create: Summary | null;
  /** Seconds from the step's first create until its last request was posted. */
  postedSec: number;
  posted: boolean;
  /** The fill's time bound (`fillMaxSec`) ended this step before its target. */
  cutShort: boolean;
}

/** Memory between two samples, per open request added (KB); `to.open === 0` rows are not made. */
export interface Growth {
  from: number;
  to: number;
  kbPerOpen: Record<string, number>;
  dbKbPerOpen: number | null;
}

export interface OpenRequestsResult {
  /** Requests held open when measured (fewer than asked if the fill's time bound ended it). */
  count: number;
  asked: number;
  fillRate: number;
  rate: number;
  fillSec: number;
  atNone: AtRate & MeasurementHost;
  atOpen: AtRate & MeasurementHost;
  fill: FillStep[];
  memory: MemorySample[];
  /** Between consecutive samples, and from 0 to all open (the last row). */
  growth: Growth[];
  /**
   * Requests created but not yet posted when the with-open measurement began (the worker still running their first
   * tasks, after waiting `phaseTimeoutMs` for them): with any, the targets are not judged, since that measurement
   * timed a backlog, not open requests.
   */
  backlog: number;
  targets: Array<{ name: string; target: string; value: number | null; met: boolean | null }>;
}

export async function runOpenRequests(
  opts: OpenRequestsOptions,
  service: Service,
  client: GuardClient,
  rec: Recorder,
  log: (msg: string) => void,
): Promise<OpenRequestsResult> {
  const quiet = () => settle(service.slack, 1000, 60_000);
  // Warm-up, not measured: the worker's sandbox, the API's first requests.
  await serviceAtRate(client, opts.rate, opts.warmupSec * 1000, 0);
  await quiet();
  const atNone = await measured(() => measureService(opts, service, client, rec, opts.rate, 'noneOpen', quiet));
  const t0 = performance.now();
  const postsBefore = service.slack?.count('chat.postMessage') ?? 0;
  const memory = [sampleMemory(service, 0, t0)];
  const fill: FillStep[] = [];
  const fillDeadline = t0 + opts.fillMaxSec * 1000;
  for (const target of sampleCounts(opts.count)) {
    if (performance.now() >= fillDeadline) {
      log(`the fill's ${opts.fillMaxSec} s are spent: measuring with ${fill.at(-1)?.open ?? 0} open`);
      break;
    }
    const step = await fillTo(opts, service, client, rec, fill.at(-1)?.open ?? 0, target, fillDeadline);
    fill.push(step);
    await quiet();
    memory.push(sampleMemory(service, step.open, t0));
    log(`${step.open} open, RSS MB ${JSON.stringify(memory.at(-1)!.rssMB)}, SQLite ${memory.at(-1)!.dbMB} MB`);
    if (step.cutShort) {
      log(`the fill's ${opts.fillMaxSec} s are spent: measuring with ${step.open} open`);
      break;
    }
  }
  const fillSec = Math.round((performance.now() - t0) / 100) / 10;
  const backlog = await drainBacklog(service, postsBefore, fill, opts.phaseTimeoutMs);
  if (backlog > 0) log(`${backlog} requests are still not posted: the with-open measurement is not judged`);
  const atOpen = await measured(() => measureService(opts, service, client, rec, opts.rate, 'allOpen', quiet));
  const result = {
    count: fill.at(-1)?.open ?? 0,
    asked: opts.count,
    fillRate: opts.fillRate,
    rate: opts.rate,
    fillSec,
    atNone,
    atOpen,
    fill,
    memory,
    growth: growthOf(memory),
    backlog,
  };
  return { ...result, targets: judgeOpenRequests(result) };
}

/** 10 %, 25 %, 50 % and 100 % of `count`, without repeats (a small count has fewer samples). */
export function sampleCounts(count: number): number[] {
  return [...new Set(SAMPLE_SHARES.map((s) => Math.round(count * s)).filter((n) => n > 0))];
}

/**
 * What the host did during one measurement: the load averages, and the stolen CPU and the speed check around it. The
 * two measurements are an hour apart; a host that slowed in between shows here, not in the ratios.
 */
export interface MeasurementHost {
  loadavg: { start: number[]; end: number[] };
  cpu: MachineCpu;
}

async function measured<T>(run: () => Promise<T>): Promise<T & MeasurementHost> {
  const start = loadAverages();
  const cpu = startMachineCpu();
  const r = await run();
  return { ...r, loadavg: { start, end: loadAverages() }, cpu: cpu.finish() };
}

/** Creates requests of the 2 h action up to `target` open at `fillRate`, and waits until all of them are posted. */
async function fillTo(
  opts: OpenRequestsOptions,
  service: Service,
  client: GuardClient,
  rec: Recorder,
  open: number,
  target: number,
  deadline: number,
): Promise<FillStep> {
  const posted = service.slack?.count('chat.postMessage') ?? 0;
  const t0 = performance.now();
  const bounds = { concurrency: opts.concurrency, phaseDeadlineMs: Math.max(0, deadline - t0) };
  let cutShort = false;
  const step = await rec.phase(`fillTo${target}`, async () => {
    const created = await createPhase(client, BENCH_ACTIONS.pending, target - open, bounds, opts.fillRate);
    cutShort = created.pool.timedOut;
    // The fill's own bound, not --phase-timeout: not a failure of the phase.
    return { ...created, pool: { ...created.pool, timedOut: false } };
  });
  const all = await awaitPosts(service.slack, posted + step.created.length, opts.phaseTimeoutMs);
  return {
    open: open + step.created.length,
    created: step.created.length,
    failed: step.pool.failed,
    createsPerSec: step.perSec,
    create: step.latency,
    postedSec: Math.round((performance.now() - t0) / 100) / 10,
    posted: all,
    cutShort,
  };
}

/**
 * Waits once more (bounded) for every request of the fill to be posted, if a step's own wait ended first; returns how
 * many are still not posted.
 */
async function drainBacklog(service: Service, before: number, fill: FillStep[], maxMs: number): Promise<number> {
  if (!service.slack || fill.every((f) => f.posted)) return 0;
  const expected = before + fill.reduce((n, f) => n + f.created, 0);
  await awaitPosts(service.slack, expected, maxMs);
  return Math.max(0, expected - service.slack.count('chat.postMessage'));
}

function sampleMemory(service: Service, open: number, t0: number): MemorySample {
  const rssMB: Record<string, number> = {};
  for (const name of MEASURED) {
    const pid = service.pids[name];
    const u = pid === undefined ? null : readUsage(pid);
    if (u) rssMB[name] = u.rssMB;
  }
  return {
    open,
    atSec: Math.round((performance.now() - t0) / 100) / 10,
    loadavg: loadAverages(),
    rssMB,
    dbMB: dbSizeMB(service.temporalDbFile),
  };
}

function dbSizeMB(file: string | null): number | null {
  if (!file) return null;
  const size = (f: string) => {
    try {
      return statSync(f).size;
    } catch {
      return 0;
    }
  };
  return round1((size(file) + size(`${file}-wal`)) / 1024 / 1024);
}

/** KB per open request between consecutive samples, then from the first sample to the last. */
export function growthOf(samples: MemorySample[]): Growth[] {
  const between = (a: MemorySample, b: MemorySample): Growth => {
    const n = b.open - a.open;
    const kb = (x: number | undefined, y: number | undefined) =>
      x === undefined || y === undefined ? null : Math.round(((y - x) * 1024 * 10) / n) / 10;
    const kbPerOpen: Record<string, number> = {};
    for (const name of Object.keys(b.rssMB)) {
      const v = kb(a.rssMB[name], b.rssMB[name]);
      if (v !== null) kbPerOpen[name] = v;
    }
    return { from: a.open, to: b.open, kbPerOpen, dbKbPerOpen: kb(a.dbMB ?? undefined, b.dbMB ?? undefined) };
  };
  const rows: Growth[] = [];
  for (let i = 1; i < samples.length; i++) {
    if (samples[i]!.open > samples[i - 1]!.open) rows.push(between(samples[i - 1]!, samples[i]!));
  }
  const first = samples[0];
  const last = samples.at(-1);
  if (first && last && rows.length > 1) rows.push(between(first, last));
  return rows;
}

const worstTimer = (a: AtRate) => {
  const v = [a.timers?.escalationLateness?.p99, a.timers?.expiryLateness?.p99].filter(
    (x): x is number => typeof x === 'number',
  );
  return v.length ? Math.max(...v) : null;
};

export function judgeOpenRequests(r: Omit<OpenRequestsResult, 'targets'>): OpenRequestsResult['targets'] {
  const ratio = (a: number | null | undefined, b: number | null | undefined) =>
    a == null || b == null || b === 0 ? null : Math.round((a / b) * 100) / 100;
  const rows: Array<[string, number | null]> = [
    [`create p99 with ${r.count} open ÷ none`, ratio(r.atOpen.service.create?.p99, r.atNone.service.create?.p99)],
    [`timer lateness p99 (worst) with ${r.count} open ÷ none`, ratio(worstTimer(r.atOpen), worstTimer(r.atNone))],
  ];
  const judged = r.backlog === 0;
  return rows.map(([name, value]) => ({
    name: judged ? name : `${name} (not judged: ${r.backlog} not yet posted when measured)`,
    target: '≤ 1.2×',
    value,
    met: value === null || !judged ? null : value <= 1.2,
  }));
}

export function formatOpenRequestsTable(r: OpenRequestsResult): string {
  const la = (l: { start: number[]; end: number[] }) => `${l.start[0]} → ${l.end[0]}`;
  const host = (c: MachineCpu) => `${c.stealPct ?? 'n/a'} %; ${c.speedCheckMs.start} → ${c.speedCheckMs.end}`;
  const measure = (a: OpenRequestsResult['atNone']) => [
    pct(a.service.create),
    pct(a.timers?.escalationLateness ?? null),
    pct(a.timers?.expiryLateness ?? null),
    pct(a.service.ack),
    `${a.service.arrivals.done}/${a.service.arrivals.offered}`,
    a.timers?.count ?? 'n/a',
    a.perApproval.cpuMs,
    a.perApproval.dbOps,
    la(a.loadavg),
    host(a.cpu),
  ];
  const names = Object.keys(r.memory.at(-1)?.rssMB ?? {});
  const cut = r.count < r.asked ? ` (of ${r.asked} asked: the fill's time bound ended it)` : '';
  return [
    `${r.count} open requests${cut}, filled at ≤ ${r.fillRate}/s in ${r.fillSec} s; measured at ${r.rate} ` +
      `approvals/s (ms p50 / p95 / p99)`,
    table(
      [
        '',
        'create',
        'escalation lateness',
        'expiry lateness',
        'Slack ack',
        'approvals',
        'timer req.',
        'CPU ms/appr.',
        'DB ops/appr.',
        'load avg',
        'stolen; speed check ms',
      ],
      [
        ['none open', ...measure(r.atNone)],
        [`${r.count} open`, ...measure(r.atOpen)],
      ],
    ),
    '',
    'filling (each step: created at the bounded rate, then every request of it posted)',
    table(
      ['open', 'creates/s', 'create p50 / p95 / p99', 'failed', 'posted after s'],
      r.fill.map((f) => [f.open, f.createsPerSec, pct(f.create), f.failed, f.posted ? f.postedSec : 'NOT all']),
    ),
    '',
    'memory (RSS MB; SQLite file + WAL MB)',
    table(
      ['open', ...names, 'SQLite', 'load avg 1/5/15'],
      r.memory.map((m) => [m.open, ...names.map((n) => m.rssMB[n]), m.dbMB, m.loadavg.join(' ')]),
    ),
    table(
      ['KB per open request', ...names, 'SQLite'],
      r.growth.map((g) => [`${g.from} → ${g.to}`, ...names.map((n) => g.kbPerOpen[n]), g.dbKbPerOpen]),
    ),
    '',
    table(
      ['target', 'wanted', 'measured', 'met'],
      r.targets.map((t) => [t.name, t.target, t.value, t.met === null ? 'n/a' : t.met ? 'yes' : 'NO']),
    ),
  ].join('\n');
}
