/**
 * `npm run load-sim -- --find-knee [--pending P]` (open loop: arrivals at a rate, bench/open-run.ts),
 * `npm run load-sim -- --open N --open-rate F --rate R` (N requests held open, bench/open-requests.ts) or
 * `npm run load-sim -- --requests N --concurrency C [--pending P]` (closed loop): drives the service with real HTTP
 * and signed Slack clicks, measures the same Temporal server's floor in the same run, and reports a table and a JSON
 * file (bench/results/). See docs/performance.md for what each figure means.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { GuardClient } from './client.js';
import { formatOpenTable } from './open-report.js';
import { runOpenLoop, type OpenOptions, type OpenResult } from './open-run.js';
import {
  formatOpenRequestsTable,
  runOpenRequests,
  type OpenRequestsOptions,
  type OpenRequestsResult,
} from './open-requests.js';
import { Floor, type FloorPhase } from './floor.js';
import { BENCH_ACTIONS, BENCH_POLICY } from './policy.js';
import { loadAverages, machineLoad, startMachineCpu, type MachineCpu } from './procs.js';
import { cpuMsPer, Recorder } from './recorder.js';
import { formatTable, judgeTargets, ratios, type LatencyRow, type LoadSimResult } from './report.js';
import {
  approvalLoopPhase,
  awaitPosts,
  createPhase,
  decidePhase,
  settle,
  timerPhase,
  type Bounds,
  type CreatePhase,
} from './scenarios.js';
import { summarize } from './stats.js';
import { ROOT, startService, type Service } from './service.js';
import { log } from './log.js';

const USAGE = `usage: npm run load-sim -- [options]
  --requests N        requests per phase (default 200)
  --concurrency C     requests in flight (default 16)
  --pending P         open requests held while create is measured again (default 0)
  --timers K          requests left to escalate and expire (default min(N, 100))
  --timer-rate R      those are created at R per second (default 10)
  --url URL           use a running API (it must load the policy from --print-policy); needs --temporal
  --temporal ADDR     use a running Temporal server instead of the embedded dev server
  --temporal-pid PID  its process id, to report its CPU and memory
  --temporal-metrics URL  its Prometheus metrics (start-dev --metrics-port), for RPCs per approval
  --signing-secret S  Slack signing secret of the API at --url (default $SLACK_SIGNING_SECRET)
  --audit-file F      audit file of the API at --url (for escalation times)
  --env KEY=VALUE     extra environment for the service's processes (repeatable)
  --slack-latency MS  the fake Slack answers each Web API call after MS (default 0; real Slack: tens to hundreds)
  --profile           write V8 CPU profiles of the API and worker next to the result
  --label TEXT        recorded in the result (e.g. "before", "after")
  --out FILE          result path (default bench/results/load-sim-<time>.json)
  --phase-timeout S   no phase starts new work after S seconds (default 600)
  --print-policy      print the policy the scenarios need, and exit
open loop (arrivals at a rate, Poisson; docs/performance.md):
  --find-knee         step the rate until a loop's p99 breaks --knee-p99 twice at one rate (floor loops, then
                      approvals), then measure at 80 % of the approvals' maximum (and with --pending P held open)
  --rate R            measure at R arrivals per second (no knee search)
  --duration S        seconds of arrivals per measurement phase (default 20)
  --warmup S          seconds of arrivals at the first rate before measuring, not measured (default 5)
  --knee-start R, --knee-factor F, --knee-step S   first rate (2), step factor (1.25), seconds per step (15)
  --knee-max-steps N  at most N steps per loop (default 30)
  --knee-p99 MS       p99 a sustained loop keeps under (default 2000); --knee-completion (default 0.98)
  --pending-rate R    with --pending, creates per second while filling (default 50)
  --timer-rate R      (open loop) timer requests per second beside the approvals (default 2)
open requests (issue 21 item 3; no floor, no knee):
  --open N            hold N requests open (created through the API at --open-rate), sampling the memory of the
                      API, the worker and the dev server at 10/25/50/100 % of N; approvals and timer requests are
                      measured at --rate R (default 4) with none open, then with the N open
  --open-rate F       creates per second at most while filling (default 40)
  --open-fill-max S   start no create after S s of filling; measure with what is open then (default 36000)`;

interface Options {
  requests: number;
  concurrency: number;
  pending: number;
  timers: number;
  timerRate: number;
  url?: string | undefined;
  temporal?: string | undefined;
  temporalPid?: number | undefined;
  temporalMetrics?: string | undefined;
  signingSecret?: string | undefined;
  auditFile?: string | undefined;
  env: Record<string, string>;
  slackLatencyMs: number;
  profile: boolean;
  label: string | null;
  out: string;
  phaseTimeoutMs: number;
  open: Omit<OpenOptions, 'pending' | 'concurrency' | 'phaseTimeoutMs'> | null;
  openRequests: Omit<OpenRequestsOptions, 'concurrency' | 'phaseTimeoutMs'> | null;
}

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      requests: { type: 'string' },
      concurrency: { type: 'string' },
      pending: { type: 'string' },
      timers: { type: 'string' },
      'timer-rate': { type: 'string' },
      url: { type: 'string' },
      temporal: { type: 'string' },
      'temporal-pid': { type: 'string' },
      'temporal-metrics': { type: 'string' },
      'signing-secret': { type: 'string' },
      'audit-file': { type: 'string' },
      env: { type: 'string', multiple: true },
      'slack-latency': { type: 'string' },
      profile: { type: 'boolean' },
      label: { type: 'string' },
      out: { type: 'string' },
      'phase-timeout': { type: 'string' },
      'print-policy': { type: 'boolean' },
      'find-knee': { type: 'boolean' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'knee-start': { type: 'string' },
      'knee-factor': { type: 'string' },
      'knee-step': { type: 'string' },
      'knee-p99': { type: 'string' },
      'knee-completion': { type: 'string' },
      'knee-max-steps': { type: 'string' },
      'pending-rate': { type: 'string' },
      open: { type: 'string' },
      'open-rate': { type: 'string' },
      'open-fill-max': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return null;
  }
  if (values['print-policy']) {
    console.log(BENCH_POLICY);
    return null;
  }
  const int = (name: string, v: string | undefined, fallback: number, min: number) => {
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}`);
    return n;
  };
  const requests = int('requests', values.requests, 200, 2);
  const num = (name: string, v: string | undefined, fallback: number) => {
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
    return n;
  };
  if (values.open !== undefined && (values['find-knee'] || values.pending !== undefined))
    throw new Error('--open is a mode of its own: not with --find-knee or --pending');
  const openRequests =
    values.open === undefined
      ? null
      : {
          count: int('open', values.open, 0, 1),
          fillRate: num('open-rate', values['open-rate'], 40),
          fillMaxSec: num('open-fill-max', values['open-fill-max'], 36_000),
          rate: num('rate', values.rate, 4),
          durationSec: num('duration', values.duration, 20),
          warmupSec: num('warmup', values.warmup, 5),
          timerRate: num('timer-rate', values['timer-rate'], 2),
        };
  const open =
    !openRequests && (values['find-knee'] || values.rate !== undefined)
      ? {
          findKnee: values['find-knee'] ?? false,
          rate: values.rate === undefined ? null : num('rate', values.rate, 1),
          durationSec: num('duration', values.duration, 20),
          warmupSec: num('warmup', values.warmup, 5),
          kneeStepSec: num('knee-step', values['knee-step'], 15),
          kneeStart: num('knee-start', values['knee-start'], 2),
          kneeFactor: num('knee-factor', values['knee-factor'], 1.25),
          kneeMaxSteps: int('knee-max-steps', values['knee-max-steps'], 30, 1),
          criteria: {
            p99Ms: num('knee-p99', values['knee-p99'], 2000),
            completion: num('knee-completion', values['knee-completion'], 0.98),
          },
          timerRate: num('timer-rate', values['timer-rate'], 2),
          pendingRate: num('pending-rate', values['pending-rate'], 50),
        }
      : null;
  if (values.url && !values.temporal) throw new Error('--url needs --temporal (the floor runs on the same server)');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    requests,
    concurrency: int('concurrency', values.concurrency, 16, 1),
    pending: int('pending', values.pending, 0, 0),
    timers: int('timers', values.timers, Math.min(requests, 100), 1),
    timerRate: open ? Math.ceil(open.timerRate) : int('timer-rate', values['timer-rate'], 10, 1),
    url: values.url,
    temporal: values.temporal,
    temporalPid: values['temporal-pid'] === undefined ? undefined : int('temporal-pid', values['temporal-pid'], 0, 1),
    temporalMetrics: values['temporal-metrics'],
    signingSecret: values['signing-secret'],
    auditFile: values['audit-file'],
    env: Object.fromEntries(
      (values.env ?? []).map((kv) => {
        const eq = kv.indexOf('=');
        if (eq < 1) throw new Error(`--env wants KEY=VALUE, got ${kv}`);
        return [kv.slice(0, eq), kv.slice(eq + 1)];
      }),
    ),
    slackLatencyMs: int('slack-latency', values['slack-latency'], 0, 0),
    profile: values.profile ?? false,
    label: values.label ?? null,
    out: path.resolve(values.out ?? path.join(ROOT, 'bench', 'results', `load-sim-${stamp}.json`)),
    phaseTimeoutMs: int('phase-timeout', values['phase-timeout'], 600, 1) * 1000,
    open,
    openRequests,
  };
}

const row = (p: { latency: LatencyRow['latency']; perSec: number }): LatencyRow => ({
  latency: p.latency,
  perSec: p.perSec,
});

/** What every open-mode run's JSON carries around its result: the run's context and the raw measurements. */
type RunEnvelope<Mode extends string, O, Load> = {
  version: 1;
  mode: Mode;
  label: string | null;
  command: string;
  startedAt: string;
  finishedAt: string;
  options: O;
  machine: { cores: number; node: string; loadavgStart: Load; loadavgEnd: Load; cpu?: MachineCpu };
  env: Record<string, string>;
  resources: Recorder['resources'];
  sdk: Recorder['sdk'];
  temporalServer: Recorder['server'];
  failures: string[];
};

/** The open-loop run's JSON (`--rate R`). */
export type OpenLoadSimResult = OpenResult & RunEnvelope<'open', OpenOptions, number>;

/** The open-requests run's JSON (`--open N`). */
export type OpenRequestsLoadSimResult = OpenRequestsResult &
  RunEnvelope<'open-requests', OpenRequestsOptions, number[]>;

/** The envelope of a run that has just finished: when it started, and the load average at its start and now. */
function envelope<Mode extends string, O, Load>(
  mode: Mode,
  opts: Options,
  options: O,
  rec: Recorder,
  span: { startedAt: string; loadavgStart: Load; loadavgEnd: Load },
): RunEnvelope<Mode, O, Load> {
  return {
    version: 1,
    mode,
    label: opts.label,
    command: `npm run load-sim -- ${process.argv.slice(2).join(' ')}`.trim(),
    startedAt: span.startedAt,
    finishedAt: new Date().toISOString(),
    options,
    machine: {
      cores: machineLoad().cores,
      node: process.version,
      loadavgStart: span.loadavgStart,
      loadavgEnd: span.loadavgEnd,
    },
    env: opts.env,
    resources: rec.resources,
    sdk: rec.sdk,
    temporalServer: rec.server,
    failures: rec.failures,
  };
}

type AnyResult = LoadSimResult | OpenLoadSimResult | OpenRequestsLoadSimResult;

async function run(opts: Options): Promise<AnyResult> {
  const startedAt = new Date().toISOString();
  const loadavgStart = machineLoad().loadavg1;
  const loadavgsStart = loadAverages();
  const profileDir = opts.profile ? opts.out.replace(/\.json$/, '') + '-profiles' : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const service = await startService({
    url: opts.url,
    temporal: opts.temporal,
    temporalPid: opts.temporalPid,
    temporalMetrics: opts.temporalMetrics,
    signingSecret: opts.signingSecret,
    auditFile: opts.auditFile,
    env: opts.env,
    slackLatencyMs: opts.slackLatencyMs,
    profileDir,
    log,
  });
  // Stopped (Ctrl-C, a test's timeout): the worker, the API and the dev server must not outlive the harness.
  const stop = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping the service`);
    void service.close().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', stop).once('SIGTERM', stop);
  const floor = await Floor.connect(service.temporalAddress, service.floorTaskQueue);
  try {
    if (opts.openRequests)
      return await measureOpenRequests(opts, opts.openRequests, service, { startedAt, loadavgStart: loadavgsStart });
    if (opts.open) return await measureOpen(opts, opts.open, service, floor, { startedAt, loadavgStart });
    return await measure(opts, service, floor, { startedAt, loadavgStart });
  } finally {
    await floor.close();
    await service.close();
  }
}

/** The load's client: its clicks wait for the message in the fake Slack, when the harness runs it. */
function guardClient(service: Service): GuardClient {
  const slack = service.slack;
  return new GuardClient(service.url, service.signingSecret, slack ? (id) => slack.posted(id) : null);
}

async function measure(
  opts: Options,
  service: Service,
  floor: Floor,
  meta: { startedAt: string; loadavgStart: number },
): Promise<LoadSimResult> {
  const client = guardClient(service);
  const bounds: Bounds = { concurrency: opts.concurrency, phaseDeadlineMs: opts.phaseTimeoutMs };
  const n = opts.requests;
  const rec = new Recorder(service);
  const quiet = () => settle(service.slack, 1000, 60_000);

  const floorStart = await rec.phase('floorStart', () => floor.starts(n, bounds.concurrency, bounds.phaseDeadlineMs));
  const created = await rec.phase('create', () => createPhase(client, BENCH_ACTIONS.simple, n, bounds));
  await quiet();
  const floorSignal = await rec.phase('floorSignal', () =>
    floor.signals(floorStart.ids, bounds.concurrency, bounds.phaseDeadlineMs),
  );
  const floorUpdate = await rec.phase('floorUpdate', () =>
    floor.updates(floorStart.ids, bounds.concurrency, bounds.phaseDeadlineMs),
  );
  const half = Math.ceil(created.created.length / 2);
  const longPoll = await rec.phase('decideLongPoll', () =>
    decidePhase(client, created.created.slice(0, half), 'longpoll', bounds),
  );
  const sse = await rec.phase('decideSse', () => decidePhase(client, created.created.slice(half), 'sse', bounds));
  await quiet();
  const floorLoop = await rec.phase('floorLoop', () => floor.loops(n, bounds.concurrency, bounds.phaseDeadlineMs));
  const loop = await rec.phase('approvalLoop', () => approvalLoopPhase(client, n, bounds));
  await quiet();
  const timers = await rec.phase('timers', () =>
    timerPhase(client, opts.timers, bounds, service.auditFile, opts.timerRate),
  );
  await quiet();
  const pending = opts.pending > 0 ? await holdPending(opts, service, client, floor, rec, created) : null;

  const ackSamples = [...longPoll.samples.ack, ...(sse.available ? sse.samples.ack : [])];
  const partial = {
    version: 1 as const,
    label: opts.label,
    command: `npm run load-sim -- ${process.argv.slice(2).join(' ')}`.trim(),
    startedAt: meta.startedAt,
    finishedAt: new Date().toISOString(),
    options: {
      requests: n,
      concurrency: opts.concurrency,
      pending: opts.pending,
      timers: opts.timers,
      timerRate: opts.timerRate,
    },
    machine: {
      cores: machineLoad().cores,
      node: process.version,
      loadavgStart: meta.loadavgStart,
      loadavgEnd: machineLoad().loadavg1,
    },
    service: {
      mode: opts.url ? ('external' as const) : ('embedded' as const),
      temporal: opts.temporal ? ('external' as const) : ('embedded' as const),
      env: opts.env,
    },
    create: { atZero: row(created), atPending: pending ? row(pending.create) : null },
    slackAck: summarize(ackSamples),
    notification: {
      longPoll: { notify: longPoll.notify, clickToNotify: longPoll.clickToNotify },
      sse: sse.available ? { notify: sse.notify, clickToNotify: sse.clickToNotify } : null,
    },
    approvalLoop: { latency: loop.latency, approvalsPerSec: loop.approvalsPerSec },
    timers: {
      count: timers.count,
      escalationLateness: timers.escalationLateness,
      expiryLateness: timers.expiryLateness,
    },
    pending: pending
      ? {
          count: pending.count,
          fillSec: pending.fillSec,
          settled: pending.settled,
          rssMB: pending.rssMB,
          createP99Change: ratioOf(pending.create.latency?.p99, created.latency?.p99),
        }
      : null,
    floor: {
      start: row(floorStart),
      signal: row(floorSignal),
      update: row(floorUpdate),
      loop: row(floorLoop),
      startAtPending: pending ? row(pending.floorStart) : null,
    },
    resources: rec.resources,
    cpuMsPerApproval: {
      service: cpuMsPer(rec.resources.approvalLoop, ['api', 'worker', 'temporal'], loop.pool.done),
      floor: cpuMsPer(rec.resources.floorLoop, ['floorWorker', 'temporal'], floorLoop.pool.done),
    },
    sdk: rec.sdk,
    temporalServer: rec.server,
    failures: rec.failures,
  };
  const withRatios = { ...partial, ratios: ratios(partial) };
  return { ...withRatios, targets: judgeTargets(withRatios) };
}

async function measureOpen(
  opts: Options,
  open: NonNullable<Options['open']>,
  service: Service,
  floor: Floor,
  meta: { startedAt: string; loadavgStart: number },
): Promise<OpenLoadSimResult> {
  const rec = new Recorder(service);
  const client = guardClient(service);
  const full = { ...open, pending: opts.pending, concurrency: opts.concurrency, phaseTimeoutMs: opts.phaseTimeoutMs };
  const result = await runOpenLoop(full, service, client, floor, rec, log);
  const span = { ...meta, loadavgEnd: machineLoad().loadavg1 };
  return { ...envelope('open', opts, full, rec, span), ...result };
}

async function measureOpenRequests(
  opts: Options,
  open: NonNullable<Options['openRequests']>,
  service: Service,
  m: { startedAt: string; loadavgStart: number[] },
): Promise<OpenRequestsLoadSimResult> {
  const rec = new Recorder(service);
  const client = guardClient(service);
  const full = { ...open, concurrency: opts.concurrency, phaseTimeoutMs: opts.phaseTimeoutMs };
  const result = await runOpenRequests(full, service, client, rec, log);
  const span = { ...m, loadavgEnd: loadAverages() };
  return { ...envelope('open-requests', opts, full, rec, span), ...result };
}

interface PendingResult {
  count: number;
  fillSec: number;
  settled: boolean;
  rssMB: Record<string, number>;
  create: CreatePhase;
  floorStart: FloorPhase;
}

/** Fills the backlog, waits until its workflows have all run, then measures create and the floor again. */
async function holdPending(
  opts: Options,
  service: Service,
  client: GuardClient,
  floor: Floor,
  rec: Recorder,
  atZero: CreatePhase,
): Promise<PendingResult> {
  const posted = service.slack?.count('chat.postMessage') ?? 0;
  const t0 = performance.now();
  const fill = await rec.phase('pendingFill', () =>
    createPhase(client, BENCH_ACTIONS.pending, opts.pending, {
      concurrency: opts.concurrency,
      phaseDeadlineMs: opts.phaseTimeoutMs,
    }),
  );
  const settled = await awaitPosts(service.slack, posted + fill.created.length, opts.phaseTimeoutMs);
  await settle(service.slack, 2000, 60_000);
  const fillSec = Math.round((performance.now() - t0) / 100) / 10;
  log(`${fill.created.length} open requests held (${fillSec} s to create and post)`);
  const bounds = { concurrency: opts.concurrency, phaseDeadlineMs: opts.phaseTimeoutMs };
  const floorStart = await rec.phase('floorStartAtPending', () =>
    floor.starts(opts.requests, bounds.concurrency, bounds.phaseDeadlineMs),
  );
  const create = await rec.phase('createAtPending', () =>
    createPhase(client, BENCH_ACTIONS.simple, atZero.created.length, bounds),
  );
  const usage = rec.resources.createAtPending ?? {};
  const rssMB = Object.fromEntries(Object.entries(usage).map(([name, u]) => [name, u.rssMB]));
  return { count: fill.created.length, fillSec, settled, rssMB, create, floorStart };
}

function ratioOf(a: number | null | undefined, b: number | null | undefined): number | null {
  return a == null || b == null || b === 0 ? null : Math.round((a / b) * 100) / 100;
}

function format(result: AnyResult): string {
  if (!('mode' in result)) return formatTable(result);
  return result.mode === 'open-requests' ? formatOpenRequestsTable(result) : formatOpenTable(result);
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (!opts) return;
  const machineCpu = startMachineCpu();
  const result = await run(opts);
  const cpu = machineCpu.finish();
  result.machine.cpu = cpu;
  mkdirSync(path.dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(format(result));
  const load = (l: number | number[]) => (Array.isArray(l) ? l.join(' ') : l);
  console.log(
    `\nmachine: ${result.machine.cores} cores, load average ${load(result.machine.loadavgStart)} → ${load(result.machine.loadavgEnd)}`,
  );
  const { stealPct, speedCheckMs } = cpu;
  console.log(
    `cpu: ${stealPct ?? 'n/a'} % stolen by the host, speed check ${speedCheckMs.start} → ${speedCheckMs.end} ms (lower is faster)`,
  );
  if (opts.slackLatencyMs > 0) console.log(`fake Slack: each Web API call answered after ${opts.slackLatencyMs} ms`);
  if (result.failures.length) console.log(`failures:\n  ${result.failures.join('\n  ')}`);
  console.log(`result: ${path.relative(process.cwd(), opts.out)}`);
}

main().catch((err: unknown) => {
  log(`failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
});
