/**
 * `npm run bench:waiters -- [--waiters 10000] [--streams 1000] [--requests 1000] [--hot 1000] [--mode stack]`:
 * holds W long-polls and S SSE streams at once on one API process, decides some requests by a Signal (as a Slack
 * click does; the busiest first) while all are held, and reports how long each of their waiters took to hear it,
 * what /healthz answered meanwhile, the 503s and connection errors, the memory per held waiter and the Temporal reads
 * per waiter and per decision (docs/performance.md, section "10,000 waiters").
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { approveSignal } from '../workflows/messages.js';
import { APPROVER, GuardClient, type Created } from './client.js';
import { BENCH_ACTIONS } from './policy.js';
import { machineLoad, readUsage, UsageMonitor, type PhaseUsage } from './procs.js';
import { scrapeServer, type ServerScrape } from './sdk-metrics.js';
import { ROOT } from './service.js';
import { runPool, summarize, type Summary } from './stats.js';
import { HealthProbe, WaiterLoad, type Waiter } from './waiters-load.js';
import { MODES, startSystem, type Mode, type System } from './waiters-system.js';

const USAGE = `usage: npm run bench:waiters -- [options]
  --mode M          stack (worker + API in one process, in-process feed; default), redis (apart, feed over Redis),
                    history (apart, no feed: bounded history long-polls and sweeps)
  --waiters N       long-polls held at once (default 10000)
  --streams S       SSE streams held at once (default 1000)
  --requests R      requests they wait on (default 1000)
  --hot H           of the long-polls, how many wait on the first request (default 1000)
  --ramp P          waiters connected per second (default 2000)
  --decide K        requests decided while every waiter is held, the hot one first (default 100)
  --decide-rate D   decisions (Signals) per second (default 20)
  --hold SEC        seconds all waiters are held before the decisions (default 5)
  --env KEY=VALUE   extra environment for the service (repeatable)
  --profile DIR     write V8 CPU profiles of the service's processes under DIR
  --label TEXT      recorded in the result
  --out FILE        result path (default bench/results/waiters-<mode>-<time>.json)`;

interface Options {
  mode: Mode;
  waiters: number;
  streams: number;
  requests: number;
  hot: number;
  ramp: number;
  decide: number;
  decideRate: number;
  holdSec: number;
  env: Record<string, string>;
  profile: string | undefined;
  label: string | null;
  out: string;
}

const POLL_SEC = 60;
const CREATE_CONCURRENCY = 16;
const TOLD_DEADLINE_MS = 60_000;
const log = (msg: string) => console.error(`[bench:waiters] ${msg}`);

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      mode: { type: 'string' },
      waiters: { type: 'string' },
      streams: { type: 'string' },
      requests: { type: 'string' },
      hot: { type: 'string' },
      ramp: { type: 'string' },
      decide: { type: 'string' },
      'decide-rate': { type: 'string' },
      hold: { type: 'string' },
      env: { type: 'string', multiple: true },
      label: { type: 'string' },
      profile: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return null;
  }
  const int = (name: string, v: string | undefined, fallback: number, min: number) => {
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}`);
    return n;
  };
  const mode = (values.mode ?? 'stack') as Mode;
  if (!MODES.includes(mode)) throw new Error(`--mode must be one of ${MODES.join(', ')}`);
  const waiters = int('waiters', values.waiters, 10_000, 0);
  const requests = int('requests', values.requests, 1000, 1);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    mode,
    waiters,
    streams: int('streams', values.streams, 1000, 0),
    requests,
    hot: Math.min(waiters, int('hot', values.hot, 1000, 0)),
    ramp: int('ramp', values.ramp, 2000, 1),
    decide: Math.min(requests, int('decide', values.decide, 100, 1)),
    decideRate: int('decide-rate', values['decide-rate'], 20, 1),
    holdSec: int('hold', values.hold, 5, 0),
    env: Object.fromEntries(
      (values.env ?? []).map((kv) => {
        const eq = kv.indexOf('=');
        if (eq < 1) throw new Error(`--env wants KEY=VALUE, got ${kv}`);
        return [kv.slice(0, eq), kv.slice(eq + 1)];
      }),
    ),
    profile: values.profile ? path.resolve(values.profile) : undefined,
    label: values.label ?? null,
    out: path.resolve(values.out ?? path.join(ROOT, 'bench', 'results', `waiters-${mode}-${stamp}.json`)),
  };
}

/** Long-polls: H on request 0, the rest spread over the others; SSE streams: one per request, round robin. */
function planWaiters(opts: Options, created: Created[]): Waiter[] {
  const waiter = (kind: Waiter['kind'], request: number): Waiter => ({
    kind,
    request,
    token: created[request]!.token,
    toldAt: null,
    status: null,
    decidedAt: null,
    repolls: 0,
    headersMs: null,
    parked: false,
    errors: [],
  });
  const polls = Array.from({ length: opts.waiters }, (_, i) =>
    waiter('poll', i < opts.hot || created.length === 1 ? 0 : 1 + ((i - opts.hot) % (created.length - 1))),
  );
  const streams = Array.from({ length: opts.streams }, (_, i) => waiter('sse', i % created.length));
  // Interleaved, so that streams and long-polls arrive together.
  const all: Waiter[] = [];
  for (let i = 0; i < Math.max(polls.length, streams.length * 10); i++) {
    if (i < polls.length) all.push(polls[i]!);
    if (i % 10 === 0 && i / 10 < streams.length) all.push(streams[i / 10]!);
  }
  return all;
}

interface ApiFootprint {
  rssMB: number;
  openFds: number;
  maxOpenFiles: string;
}

function footprint(pid: number): ApiFootprint {
  const usage = readUsage(pid);
  let openFds = -1;
  let maxOpenFiles = '?';
  try {
    openFds = readdirSync(`/proc/${pid}/fd`).length;
    maxOpenFiles = /Max open files\s+(\S+)\s+(\S+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))?.[1] ?? '?';
  } catch {
    // Not Linux.
  }
  return { rssMB: usage?.rssMB ?? -1, openFds, maxOpenFiles };
}

/** The machine's count of connections the kernel dropped because a listen queue was full (all processes). */
function listenOverflows(): number {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    const header = lines.find((l) => l.startsWith('TcpExt:'))!.split(' ');
    const values = lines.filter((l) => l.startsWith('TcpExt:'))[1]!.split(' ');
    return Number(values[header.indexOf('ListenOverflows')] ?? -1);
  } catch {
    return -1;
  }
}

function rpcDelta(before: ServerScrape | null, after: ServerScrape | null): Record<string, number> {
  const out: Record<string, number> = {};
  if (!before || !after) return out;
  for (const op of ['DescribeWorkflowExecution', 'QueryWorkflow', 'GetWorkflowExecutionHistory']) {
    out[op] = (after.get(op) ?? 0) - (before.get(op) ?? 0);
  }
  return out;
}

/**
 * Waits until no created request has a workflow task pending: the waiters then meet requests at rest, as in life
 * (a request waits minutes for its humans), not the worker's backlog of creates.
 */
async function quiescent(temporal: Client, created: Created[]): Promise<number> {
  const started = performance.now();
  let busy = created;
  while (busy.length > 0) {
    const still: Created[] = [];
    await runPool(busy.length, 16, 600_000, async (i) => {
      const d = await temporal.workflowService.describeWorkflowExecution({
        namespace: 'default',
        execution: { workflowId: busy[i]!.requestId },
      });
      if (d.pendingWorkflowTask || (d.pendingActivities?.length ?? 0) > 0) still.push(busy[i]!);
    });
    busy = still;
    if (busy.length > 0) await sleep(500);
  }
  return Math.round((performance.now() - started) / 100) / 10;
}

const per = (n: number, d: number) => (d > 0 ? Math.round((n / d) * 1000) / 1000 : null);

async function run(opts: Options) {
  const loadavgStart = machineLoad().loadavg1;
  const system: System = await startSystem(opts.mode, opts.env, log, opts.profile);
  const connection = await Connection.connect({ address: system.temporalAddress });
  const temporal = new Client({ connection, namespace: 'default' });
  const load = new WaiterLoad(system.url, POLL_SEC);
  const probe = new HealthProbe(system.url, 20);
  try {
    log(`creating ${opts.requests} requests`);
    const client = new GuardClient(system.url, '');
    const created: Created[] = [];
    const creates = await runPool(opts.requests, CREATE_CONCURRENCY, 600_000, async (i) => {
      created[i] = (await client.create(BENCH_ACTIONS.simple, i)).created;
    });
    if (creates.failed) throw new Error(`creates failed: ${creates.errors.join('; ')}`);
    const settleSec = await quiescent(temporal, created);
    log(`the worker was done with them ${settleSec} s after the last create`);
    const idle = footprint(system.apiPid);

    const waiters = planWaiters(opts, created);
    log(`holding ${opts.waiters} long-polls and ${opts.streams} SSE streams (${opts.ramp}/s)`);
    probe.phase = 'ramp';
    const cpu: Record<string, Record<string, PhaseUsage>> = {};
    const pids = { ...system.pids, loadgen: process.pid };
    let monitor = new UsageMonitor(pids);
    const rpcsBeforeRamp = await scrapeServer(system.serverMetricsUrl);
    const overflowsBefore = listenOverflows();
    const rampStart = performance.now();
    let parkedStreams = 0;
    const running: Promise<void>[] = [];
    for (let i = 0; i < waiters.length; i++) {
      // Timers have a 1 ms floor: sleep only when ahead of the schedule, or the ramp could not exceed 1,000/s.
      const ahead = rampStart + (i * 1000) / opts.ramp - performance.now();
      if (ahead > 1) await sleep(ahead);
      const w = waiters[i]!;
      running.push(w.kind === 'poll' ? load.poll(w) : load.stream(w, () => (parkedStreams += 1)));
    }
    const rampSec = (performance.now() - rampStart) / 1000;
    // Long-polls say nothing until the change; SSE streams send the state at once: wait until every stream has it.
    for (const deadline = Date.now() + 60_000; parkedStreams < opts.streams && Date.now() < deadline;) {
      await sleep(100);
    }
    await sleep(2000);
    cpu.ramp = monitor.stop();
    const overflows = listenOverflows() - overflowsBefore;
    probe.phase = 'hold';
    monitor = new UsageMonitor(pids);
    const rpcsAfterRamp = await scrapeServer(system.serverMetricsUrl);
    await sleep(opts.holdSec * 1000);
    const held = footprint(system.apiPid);
    cpu.hold = monitor.stop();
    monitor = new UsageMonitor(pids);

    log(`deciding ${opts.decide} of the ${created.length} requests (${opts.decideRate}/s, by Signal)`);
    probe.phase = 'decide';
    const signalledAt: number[] = [];
    const decideStart = performance.now();
    const decisions = await runPool(opts.decide, 32, 600_000, async (i) => {
      await sleep(Math.max(0, decideStart + (i * 1000) / opts.decideRate - performance.now()));
      signalledAt[i] = Date.now();
      await temporal.workflow.getHandle(created[i]!.requestId).signal(approveSignal, { userId: APPROVER });
    });
    const ofDecided = waiters.filter((w) => w.request < opts.decide);
    for (const deadline = Date.now() + TOLD_DEADLINE_MS; Date.now() < deadline; await sleep(100)) {
      if (ofDecided.every((w) => w.toldAt !== null)) break;
    }
    // Every waiter was held until now; the undecided ones still are.
    const stillHeld = footprint(system.apiPid);
    cpu.decide = monitor.stop();
    probe.phase = 'after';
    const rpcsAfterDecide = await scrapeServer(system.serverMetricsUrl);
    load.stop();
    await Promise.allSettled(running);
    await probe.stop();

    /** Decision → told: from the workflow's decidedAt (the API's part), or from the Signal (end to end). */
    const latency = (from: 'decidedAt' | 'signal', kind?: Waiter['kind'], request?: number) =>
      summarize(
        ofDecided
          .filter((w) => (!kind || w.kind === kind) && (request === undefined || w.request === request))
          .filter((w) => w.toldAt !== null && (from === 'signal' || w.decidedAt !== null))
          .map((w) => w.toldAt! - (from === 'signal' ? signalledAt[w.request]! : w.decidedAt!)),
      );
    const health = (phases: string[]) =>
      summarize(probe.samples.filter((s) => phases.includes(s.phase)).map((s) => s.ms));
    const heldWaiters = opts.waiters + opts.streams;
    const rampRpcs = rpcDelta(rpcsBeforeRamp, rpcsAfterRamp);
    const decideRpcs = rpcDelta(rpcsAfterRamp, rpcsAfterDecide);
    const result = {
      version: 1,
      label: opts.label,
      command: `npm run bench:waiters -- ${process.argv.slice(2).join(' ')}`.trim(),
      finishedAt: new Date().toISOString(),
      options: { ...opts, out: undefined },
      machine: { cores: machineLoad().cores, node: process.version, loadavgStart, loadavgEnd: machineLoad().loadavg1 },
      rampSec: Math.round(rampSec * 10) / 10,
      decisions: { done: decisions.done, failed: decisions.failed, wallSec: Math.round(decisions.wallMs / 100) / 10 },
      told: {
        count: ofDecided.filter((w) => w.toldAt !== null && w.status === 'approved').length,
        of: ofDecided.length,
        notTold: ofDecided.filter((w) => w.toldAt === null).length,
        wrongStatus: ofDecided.filter((w) => w.toldAt !== null && w.status !== 'approved').length,
        withinOneSecond: ofDecided.filter((w) => w.toldAt !== null && w.toldAt - (w.decidedAt ?? Infinity) <= 1000)
          .length,
        toldUndecided: waiters.filter((w) => w.request >= opts.decide && w.toldAt !== null).length,
      },
      latencyMs: {
        fromDecidedAt: {
          all: latency('decidedAt'),
          longPoll: latency('decidedAt', 'poll'),
          sse: latency('decidedAt', 'sse'),
          hot: latency('decidedAt', 'poll', 0),
        },
        fromSignal: { all: latency('signal'), hot: latency('signal', 'poll', 0) },
        // The decisions in order, in five groups: a latency that grows from the first to the last is a backlog.
        byDecisionFifth: Array.from({ length: 5 }, (_, k) => {
          const size = Math.ceil(opts.decide / 5);
          const inFifth = (w: Waiter) => w.request >= k * size && w.request < (k + 1) * size;
          return summarize(
            ofDecided
              .filter((w) => inFifth(w) && w.toldAt !== null && w.decidedAt !== null)
              .map((w) => w.toldAt! - w.decidedAt!),
          );
        }),
      },
      errors: { ...load.counters, healthzErrors: probe.errors, listenOverflowsDuringRamp: overflows },
      repolls: waiters.reduce((n, w) => n + w.repolls, 0),
      sseHeadersMs: summarize(waiters.filter((w) => w.kind === 'sse' && w.headersMs !== null).map((w) => w.headersMs!)),
      healthzMs: { ramp: health(['ramp']), held: health(['hold', 'decide']), all: health(['ramp', 'hold', 'decide']) },
      memory: {
        idleRssMB: idle.rssMB,
        heldRssMB: held.rssMB,
        whileDecidingRssMB: stillHeld.rssMB,
        perWaiterKB: per((held.rssMB - idle.rssMB) * 1024, heldWaiters),
        openFds: held.openFds,
        maxOpenFiles: held.maxOpenFiles,
      },
      temporalReads: {
        ramp: rampRpcs,
        perWaiterAtConnect: per((rampRpcs.DescribeWorkflowExecution ?? 0) + (rampRpcs.QueryWorkflow ?? 0), heldWaiters),
        decide: decideRpcs,
        perDecision: per((decideRpcs.DescribeWorkflowExecution ?? 0) + (decideRpcs.QueryWorkflow ?? 0), decisions.done),
      },
      cpuPct: Object.fromEntries(
        Object.entries(cpu).map(([phase, u]) => [
          phase,
          Object.fromEntries(Object.entries(u).map(([k, v]) => [k, v.cpuPct])),
        ]),
      ),
      sampleErrors: waiters.flatMap((w) => w.errors).slice(0, 5),
      serviceOutput: system
        .output()
        .split('\n')
        .filter((l) => l.trim() !== '')
        .slice(-30),
    };
    return result;
  } finally {
    load.stop();
    await probe.stop().catch(() => undefined);
    await connection.close();
    await system.close();
  }
}

function report(r: Awaited<ReturnType<typeof run>>): string {
  const s = (x: Summary | null) => (x ? `p50 ${x.p50} / p99 ${x.p99} / max ${x.max} ms (n=${x.count})` : 'n/a');
  return [
    `mode ${r.options.mode}: ${r.options.waiters} long-polls + ${r.options.streams} SSE on ${r.options.requests} requests (hot ${r.options.hot}); load average ${r.machine.loadavgStart} → ${r.machine.loadavgEnd} on ${r.machine.cores} cores`,
    `waiters of the ${r.options.decide} decided requests told: ${r.told.count}/${r.told.of} (within 1 s of decidedAt: ${r.told.withinOneSecond}; not told: ${r.told.notTold}; wrong: ${r.told.wrongStatus}); waiters of undecided requests told anything terminal: ${r.told.toldUndecided}`,
    `decidedAt → told: all ${s(r.latencyMs.fromDecidedAt.all)}`,
    `    long-poll ${s(r.latencyMs.fromDecidedAt.longPoll)}; SSE ${s(r.latencyMs.fromDecidedAt.sse)}; hot ${s(r.latencyMs.fromDecidedAt.hot)}`,
    `Signal sent → told: all ${s(r.latencyMs.fromSignal.all)}; hot ${s(r.latencyMs.fromSignal.hot)}`,
    `decidedAt → told p50 / p99 by fifth of the decisions, in order: ${r.latencyMs.byDecisionFifth
      .map((x) => (x ? `${x.p50} / ${x.p99}` : 'n/a'))
      .join(', ')} ms`,
    `errors: 503 ${r.errors.unavailable503}, other status ${r.errors.otherStatus}, connection ${r.errors.connectionErrors}, SSE header timeouts ${r.errors.sseHeaderTimeouts}, healthz ${r.errors.healthzErrors}; listen-queue overflows in the ramp (machine-wide) ${r.errors.listenOverflowsDuringRamp}; re-polls ${r.repolls}`,
    `SSE connect → headers: ${s(r.sseHeadersMs)}`,
    `/healthz: ramp ${s(r.healthzMs.ramp)}; held + deciding ${s(r.healthzMs.held)}`,
    `API memory: ${r.memory.idleRssMB} → ${r.memory.heldRssMB} MB RSS = ${r.memory.perWaiterKB} KB per held waiter; open fds ${r.memory.openFds} (limit ${r.memory.maxOpenFiles})`,
    `Temporal reads: ${r.temporalReads.perWaiterAtConnect} per waiter at connect ${JSON.stringify(r.temporalReads.ramp)}; ${r.temporalReads.perDecision} per decision ${JSON.stringify(r.temporalReads.decide)}`,
    `CPU % of one core: ${Object.entries(r.cpuPct)
      .map(([phase, u]) => `${phase} ${JSON.stringify(u)}`)
      .join('; ')}`,
    `ramp ${r.rampSec} s; decisions ${r.decisions.done} (failed ${r.decisions.failed}) in ${r.decisions.wallSec} s`,
  ].join('\n');
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (!opts) return;
  const result = await run(opts);
  mkdirSync(path.dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(result, null, 2));
  console.log(report(result));
  log(`result written to ${path.relative(process.cwd(), opts.out)}`);
}

main().catch((err: unknown) => {
  log(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
