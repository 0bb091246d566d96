/**
 * The open-loop run of `npm run load-sim -- --find-knee` (or `--rate R`): the maximum sustainable rate of the floor's
 * loops and of the service's approvals (same stepping, same criteria, same server, same run), then the targets at 80 %
 * of the service's maximum, then (with `--pending P`) the same with P requests held open. docs/performance.md says
 * what each figure means.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Created, GuardClient } from './client.js';
import type { Floor } from './floor.js';
import { findKnee, type Knee, type KneeCriteria } from './knee.js';
import { floorAtRate, floorSignalsAtRate, serviceAtRate, type Arrivals, type ServiceAtRate } from './open-loop.js';
import { BENCH_ACTIONS } from './policy.js';
import { cpuMsPer, Recorder } from './recorder.js';
import { awaitPosts, createPhase, settle, timerLateness } from './scenarios.js';
import type { Service } from './service.js';
import { summarize, type Summary } from './stats.js';

export interface OpenOptions {
  findKnee: boolean;
  /** The rate of the measurement phases when the knee is not searched (arrivals per second). */
  rate: number | null;
  durationSec: number;
  /** Seconds of arrivals at `kneeStart` for the floor and the service before anything is measured. */
  warmupSec: number;
  kneeStepSec: number;
  kneeStart: number;
  kneeFactor: number;
  kneeMaxSteps: number;
  criteria: KneeCriteria;
  timerRate: number;
  pending: number;
  pendingRate: number;
  concurrency: number;
  phaseTimeoutMs: number;
}

/** What the service and the floor did at one rate, with its costs. */
export interface AtRate {
  rate: number;
  service: Omit<ServiceAtRate, 'timerRequests' | 'arrivals'> & { arrivals: Arrivals };
  timers: { count: number; escalationLateness: Summary | null; expiryLateness: Summary | null } | null;
  perApproval: PerOp;
}

export interface PerOp {
  cpuMs: number | null;
  dbOps: number | null;
  /** The database operations by the server's persistence operation (the JSON only). */
  dbOpsByKind: Record<string, number> | null;
  /** Workflow and activity tasks completed (the server's RespondWorkflowTaskCompleted / RespondActivityTaskCompleted). */
  workflowTasks: number | null;
  activityTasks: number | null;
  /** Local activities run (the service worker's SDK metrics; none on the floor). */
  localActivities: number | null;
  /** Mean workflow-task schedule-to-start over the phase (ms). */
  wftScheduleToStartMs: number | null;
  wftExecutionMs: number | null;
  /** Workflow tasks that missed the worker's sticky cache (their history replayed) per operation. */
  cacheMisses: number | null;
}

export interface OpenResult {
  knee: { floor: Knee; service: Knee; ratio: number | null } | null;
  measuredAt: number;
  floor: {
    loop: Summary | null;
    start: Summary | null;
    update: Summary | null;
    signal: Summary | null;
    perLoop: PerOp;
  };
  atZero: AtRate;
  pending: {
    count: number;
    fillSec: number;
    settled: boolean;
    rssBeforeMB: Record<string, number>;
    rssAfterMB: Record<string, number>;
    /** Resident memory per open request, by process (KB). */
    kbPerOpen: Record<string, number>;
    at: AtRate;
  } | null;
  targets: Array<{ name: string; target: string; value: number | null; met: boolean | null }>;
}

const withPool = <T extends { arrivals: Arrivals }>(m: T) => ({ ...m, pool: { ...m.arrivals, timedOut: false } });

export async function runOpenLoop(
  opts: OpenOptions,
  service: Service,
  client: GuardClient,
  floor: Floor,
  rec: Recorder,
  log: (msg: string) => void,
): Promise<OpenResult> {
  const quiet = () => settle(service.slack, 1000, 60_000);
  const stepMs = opts.kneeStepSec * 1000;
  let knee: OpenResult['knee'] = null;
  // Warm-up, not measured: the first workflows of a worker build its sandbox, the first requests warm the API.
  await floorAtRate(floor, opts.kneeStart, opts.warmupSec * 1000);
  await serviceAtRate(client, opts.kneeStart, opts.warmupSec * 1000, 0);
  await quiet();
  if (opts.findKnee) {
    const steps = {
      start: opts.kneeStart,
      factor: opts.kneeFactor,
      maxSteps: opts.kneeMaxSteps,
      criteria: opts.criteria,
      between: quiet,
    };
    log('knee: floor loops (start → Update → result)');
    // At least ~10 arrivals per step, whatever the rate, so that a p99 means something.
    const window = (r: number) => Math.max(stepMs, (10 / r) * 1000);
    const floorKnee = await findKnee((r) => floorAtRate(floor, r, window(r)), steps, log);
    log('knee: approvals (create → agent waits → click → agent told)');
    const serviceKnee = await findKnee((r) => serviceAtRate(client, r, window(r), 0), steps, log);
    const ratio =
      floorKnee.maxRate && serviceKnee.maxRate
        ? Math.round((serviceKnee.maxRate / floorKnee.maxRate) * 100) / 100
        : null;
    knee = { floor: floorKnee, service: serviceKnee, ratio };
  }
  const measuredAt = knee?.service.maxRate ? Math.round(knee.service.maxRate * 0.8 * 100) / 100 : (opts.rate ?? 2);
  log(`measuring at ${measuredAt}/s`);
  const floorFigures = await measureFloor(opts, floor, rec, measuredAt, quiet);
  const atZero = await measureService(opts, service, client, rec, measuredAt, 'atZero', quiet);
  const pending = opts.pending > 0 ? await holdOpen(opts, service, client, rec, measuredAt, log, quiet) : null;
  const result = { knee, measuredAt, floor: floorFigures, atZero, pending };
  return { ...result, targets: judgeOpenTargets(result) };
}

async function measureFloor(
  opts: OpenOptions,
  floor: Floor,
  rec: Recorder,
  rate: number,
  quiet: () => Promise<void>,
): Promise<OpenResult['floor']> {
  const ms = opts.durationSec * 1000;
  const loops = await rec.phase('floorAtRate', async () => withPool(await floorAtRate(floor, rate, ms)));
  await quiet();
  // The bare Signals go to workflows started beforehand, which are then ended: only the Signals are at the rate.
  const waiting = await floor.starts(
    Math.max(1, Math.ceil(rate * opts.durationSec)),
    opts.concurrency,
    opts.phaseTimeoutMs,
  );
  const signals = await rec.phase('floorSignalAtRate', async () =>
    withPool(await floorSignalsAtRate(floor, waiting.ids, rate, ms)),
  );
  await floor.updates(waiting.ids, opts.concurrency, opts.phaseTimeoutMs);
  await quiet();
  return {
    loop: loops.loop,
    start: loops.start,
    update: loops.update,
    signal: signals.signal,
    perLoop: perOp(rec, 'floorAtRate', ['floorWorker', 'temporal'], loops.arrivals.done, { sdk: false }),
  };
}

/**
 * Approvals at `rate` for `durationSec` (their create, ack, decision → agent and cost per approval), then again with
 * timer requests arriving beside them at `timerRate`, whose escalation and expiry lateness is read from the audit.
 */
export async function measureService(
  opts: Pick<OpenOptions, 'durationSec' | 'timerRate'>,
  service: Service,
  client: GuardClient,
  rec: Recorder,
  rate: number,
  label: string,
  quiet: () => Promise<void>,
): Promise<AtRate> {
  const ms = opts.durationSec * 1000;
  // Approvals alone give the cost per approval; then again with timer requests arriving beside them, for the timers.
  const alone = await rec.phase(`${label}Approvals`, async () => withPool(await serviceAtRate(client, rate, ms, 0)));
  await quiet();
  const mixed = await rec.phase(`${label}WithTimers`, async () =>
    withPool(await serviceAtRate(client, rate, ms, opts.timerRate)),
  );
  const requests = mixed.timerRequests;
  // The timers fire 2–3 s after their creation: read their lateness once every expiry's audit line is written.
  const late = service.auditFile ? await timerLinesOf(service.auditFile, requests) : null;
  await quiet();
  const { timerRequests: _t, pool: _p, ...figures } = alone;
  return {
    rate,
    service: figures,
    timers: late
      ? {
          count: requests.length,
          escalationLateness: summarize(late.escalation),
          expiryLateness: summarize(late.expiry),
        }
      : null,
    perApproval: perOp(rec, `${label}Approvals`, ['api', 'worker', 'temporal'], alone.arrivals.done),
  };
}

/** The timers' lateness once the audit has an expiry for each of `requests` (at most 60 s after the last's due time). */
async function timerLinesOf(
  auditFile: string,
  requests: Created[],
): Promise<{ escalation: number[]; expiry: number[] }> {
  const lastDue = Math.max(0, ...requests.map((r) => Date.parse(r.expiresAt)));
  for (;;) {
    const late = await timerLateness(auditFile, requests);
    if (late.expiry.length >= requests.length || Date.now() > lastDue + 60_000) return late;
    await sleep(250);
  }
}

/**
 * Costs per operation of a phase. The SDK metrics are the service worker's: for the floor (`sdk: false`) workflow
 * tasks are counted by the server and the SDK's latencies are not known.
 */
function perOp(rec: Recorder, phase: string, processes: string[], ops: number, { sdk: useSdk = true } = {}): PerOp {
  const sdk = useSdk ? rec.sdk[phase] : null;
  const server = rec.server[phase];
  const per = (n: number | undefined) => (n === undefined || ops === 0 ? null : Math.round((n / ops) * 100) / 100);
  return {
    cpuMs: cpuMsPer(rec.resources[phase], processes, ops),
    dbOps: rec.server[phase]?.persistencePerOp ?? null,
    dbOpsByKind: server?.persistenceByKind ?? null,
    workflowTasks: server ? (server.rpcsPerOp.RespondWorkflowTaskCompleted ?? 0) : null,
    activityTasks: server ? (server.rpcsPerOp.RespondActivityTaskCompleted ?? 0) : null,
    localActivities: per(sdk?.counts.localActivityExecution),
    wftScheduleToStartMs: sdk?.meanMs.workflowTaskScheduleToStart ?? null,
    wftExecutionMs: sdk?.meanMs.workflowTaskExecution ?? null,
    cacheMisses: per(sdk?.counts.stickyCacheMisses),
  };
}

/** Creates `pending` requests at a bounded rate, waits until all are posted, then measures at the same rate again. */
async function holdOpen(
  opts: OpenOptions,
  service: Service,
  client: GuardClient,
  rec: Recorder,
  rate: number,
  log: (msg: string) => void,
  quiet: () => Promise<void>,
): Promise<OpenResult['pending']> {
  const rss = (phase: string) =>
    Object.fromEntries(Object.entries(rec.resources[phase] ?? {}).map(([name, u]) => [name, u.rssMB]));
  const before = rss('atZeroWithTimers');
  const posted = service.slack?.count('chat.postMessage') ?? 0;
  const t0 = performance.now();
  const bounds = { concurrency: opts.concurrency, phaseDeadlineMs: Math.max(opts.phaseTimeoutMs, 36_000_000) };
  const fill = await rec.phase('pendingFill', () =>
    createPhase(client, BENCH_ACTIONS.pending, opts.pending, bounds, opts.pendingRate),
  );
  const settled = await awaitPosts(service.slack, posted + fill.created.length, opts.phaseTimeoutMs);
  await quiet();
  const fillSec = Math.round((performance.now() - t0) / 100) / 10;
  log(`${fill.created.length} open requests held (${fillSec} s to create and post)`);
  const at = await measureService(opts, service, client, rec, rate, 'atPending', quiet);
  const after = rss('atPendingApprovals');
  const kbPerOpen = Object.fromEntries(
    Object.keys(after)
      .filter((k) => before[k] !== undefined)
      .map((k) => [k, Math.round((((after[k] ?? 0) - (before[k] ?? 0)) * 1024 * 10) / fill.created.length) / 10]),
  );
  return { count: fill.created.length, fillSec, settled, rssBeforeMB: before, rssAfterMB: after, kbPerOpen, at };
}

function judgeOpenTargets(r: Omit<OpenResult, 'targets'>): OpenResult['targets'] {
  const ratio = (a: number | null | undefined, b: number | null | undefined) =>
    a == null || b == null || b === 0 ? null : Math.round((a / b) * 100) / 100;
  const worst = (...v: Array<number | null | undefined>) => {
    const present = v.filter((x): x is number => typeof x === 'number');
    return present.length ? Math.max(...present) : null;
  };
  const z = r.atZero;
  const timers = worst(z.timers?.escalationLateness?.p99, z.timers?.expiryLateness?.p99);
  const rows: Array<[string, string, number | null, (v: number) => boolean]> = [
    ['max approvals/s ÷ floor loops/s', '≥ 0.7', r.knee?.ratio ?? null, (v) => v >= 0.7],
    ['CPU per approval ÷ floor loop', '≤ 1.5×', ratio(z.perApproval.cpuMs, r.floor.perLoop.cpuMs), (v) => v <= 1.5],
    [
      'DB operations per approval ÷ floor loop',
      '≤ 2×',
      ratio(z.perApproval.dbOps, r.floor.perLoop.dbOps),
      (v) => v <= 2,
    ],
    ['timer lateness p99 (worst)', '< 500 ms', timers, (v) => v < 500],
    [
      'decision → agent p99 (worst of long-poll, SSE)',
      '< 100 ms',
      worst(z.service.notifyLongPoll?.p99, z.service.notifySse?.p99),
      (v) => v < 100,
    ],
    ['Slack ack p99 ÷ bare Signal p99', '≤ 1.2×', ratio(z.service.ack?.p99, r.floor.signal?.p99), (v) => v <= 1.2],
    ['create p99 ÷ floor start p99', '≤ 1.5×', ratio(z.service.create?.p99, r.floor.start?.p99), (v) => v <= 1.5],
  ];
  if (r.pending) {
    const p = r.pending.at;
    rows.push([
      'create p99 with open ÷ none',
      '≤ 1.2×',
      ratio(p.service.create?.p99, z.service.create?.p99),
      (v) => v <= 1.2,
    ]);
    rows.push([
      'timer lateness p99 with open ÷ none',
      '≤ 1.2×',
      ratio(worst(p.timers?.escalationLateness?.p99, p.timers?.expiryLateness?.p99), timers),
      (v) => v <= 1.2,
    ]);
  }
  return rows.map(([name, target, value, ok]) => ({ name, target, value, met: value === null ? null : ok(value) }));
}
