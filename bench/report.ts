/** The run's result as one JSON document, its targets judged, and the table printed at the end. */
import type { Summary } from './stats.js';
import { ratio } from './stats.js';
import type { MachineCpu, PhaseUsage } from './procs.js';
import type { SdkPhase, ServerPhase } from './sdk-metrics.js';

export interface LatencyRow {
  latency: Summary | null;
  perSec?: number;
}

export interface LoadSimResult {
  version: 1;
  label: string | null;
  command: string;
  startedAt: string;
  finishedAt: string;
  options: { requests: number; concurrency: number; pending: number; timers: number; timerRate: number };
  machine: { cores: number; node: string; loadavgStart: number; loadavgEnd: number; cpu?: MachineCpu };
  service: { mode: 'embedded' | 'external'; temporal: 'embedded' | 'external'; env: Record<string, string> };
  create: { atZero: LatencyRow; atPending: LatencyRow | null };
  slackAck: Summary | null;
  notification: {
    longPoll: { notify: Summary | null; clickToNotify: Summary | null };
    sse: { notify: Summary | null; clickToNotify: Summary | null } | null;
  };
  approvalLoop: { latency: Summary | null; approvalsPerSec: number };
  timers: { count: number; escalationLateness: Summary | null; expiryLateness: Summary | null };
  pending: {
    count: number;
    fillSec: number;
    settled: boolean;
    /** Resident memory with the backlog held. */
    rssMB: Record<string, number>;
    /** create p99 at P over create p99 at 0. */
    createP99Change: number | null;
  } | null;
  floor: {
    start: LatencyRow;
    /** A bare Signal: what a Slack click's answer costs at least (the click is answered once Temporal has it). */
    signal: LatencyRow;
    update: LatencyRow;
    loop: LatencyRow;
    startAtPending: LatencyRow | null;
  };
  ratios: {
    createP99ToFloorStartP99: number | null;
    createP99ToFloorStartP99AtPending: number | null;
    slackAckP99ToFloorSignalP99: number | null;
    slackAckP99ToFloorUpdateP99: number | null;
    approvalLoopP99ToFloorLoopP99: number | null;
    approvalsPerSecToFloorLoopsPerSec: number | null;
  };
  /** CPU and memory of each process during each phase. */
  resources: Record<string, Record<string, PhaseUsage>>;
  /** CPU milliseconds per approval (approval loop) vs per floor loop, by the processes doing the work. */
  cpuMsPerApproval: { service: number | null; floor: number | null };
  sdk: Record<string, SdkPhase | null>;
  /** Temporal server RPCs and database operations per request of each phase (when its metrics are known). */
  temporalServer: Record<string, ServerPhase | null>;
  targets: Target[];
  failures: string[];
}

export interface Target {
  name: string;
  target: string;
  value: number | null;
  met: boolean | null;
}

export function judgeTargets(r: Omit<LoadSimResult, 'targets'>): Target[] {
  const lt = (v: number | null | undefined, max: number) => (v == null ? null : v < max);
  const le = (v: number | null | undefined, max: number) => (v == null ? null : v <= max);
  const worstNotify = Math.max(
    r.notification.longPoll.notify?.p99 ?? -Infinity,
    r.notification.sse?.notify?.p99 ?? -Infinity,
  );
  const notify = Number.isFinite(worstNotify) ? worstNotify : null;
  const timerP99 = Math.max(r.timers.escalationLateness?.p99 ?? -Infinity, r.timers.expiryLateness?.p99 ?? -Infinity);
  const timers = Number.isFinite(timerP99) ? timerP99 : null;
  const pendingChange = r.pending?.createP99Change ?? null;
  return [
    { name: 'notification p99 (worst of long-poll, SSE)', target: '< 50 ms', value: notify, met: lt(notify, 50) },
    { name: 'Slack ack p99', target: '< 100 ms', value: r.slackAck?.p99 ?? null, met: lt(r.slackAck?.p99, 100) },
    {
      name: 'create p99 / floor start p99',
      target: '≤ 1.5×',
      value: r.ratios.createP99ToFloorStartP99,
      met: le(r.ratios.createP99ToFloorStartP99, 1.5),
    },
    {
      name: 'timer lateness p99 (worst of escalation, expiry)',
      target: '< 500 ms',
      value: timers,
      met: lt(timers, 500),
    },
    {
      name: `create p99 at ${r.options.pending} open / at 0`,
      target: '≤ 1.2×',
      value: pendingChange,
      met: r.pending ? le(pendingChange, 1.2) : null,
    },
  ];
}

export function ratios(
  r: Pick<LoadSimResult, 'create' | 'slackAck' | 'approvalLoop' | 'floor'>,
): LoadSimResult['ratios'] {
  return {
    createP99ToFloorStartP99: ratio(r.create.atZero.latency?.p99, r.floor.start.latency?.p99),
    createP99ToFloorStartP99AtPending: ratio(r.create.atPending?.latency?.p99, r.floor.startAtPending?.latency?.p99),
    slackAckP99ToFloorSignalP99: ratio(r.slackAck?.p99, r.floor.signal.latency?.p99),
    slackAckP99ToFloorUpdateP99: ratio(r.slackAck?.p99, r.floor.update.latency?.p99),
    approvalLoopP99ToFloorLoopP99: ratio(r.approvalLoop.latency?.p99, r.floor.loop.latency?.p99),
    approvalsPerSecToFloorLoopsPerSec: ratio(r.approvalLoop.approvalsPerSec, r.floor.loop.perSec),
  };
}

const fmt = (v: number | null | undefined, unit = '') => (v == null ? 'n/a' : `${v}${unit}`);

function pad(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

/** The human-readable summary: latencies against the floor, then the targets. */
export function formatTable(r: LoadSimResult): string {
  const row = (name: string, s: Summary | null | undefined, rate?: number, floor?: Summary | null, fr?: number) => [
    name,
    fmt(s?.p50),
    fmt(s?.p95),
    fmt(s?.p99),
    rate === undefined ? '' : `${rate}/s`,
    floor === undefined ? '' : `${fmt(floor?.p99)}${fr === undefined ? '' : ` (${fr}/s)`}`,
    floor === undefined ? '' : fmt(ratio(s?.p99, floor?.p99), '×'),
  ];
  const p = r.options.pending;
  const lines: string[][] = [
    ['metric (ms)', 'p50', 'p95', 'p99', 'rate', 'floor p99', 'p99 ratio'],
    row('create', r.create.atZero.latency, r.create.atZero.perSec, r.floor.start.latency, r.floor.start.perSec),
    ...(r.create.atPending
      ? [
          row(
            `create @${p} open`,
            r.create.atPending.latency,
            r.create.atPending.perSec,
            r.floor.startAtPending?.latency ?? null,
            r.floor.startAtPending?.perSec,
          ),
        ]
      : []),
    row('Slack click ack vs Signal', r.slackAck, undefined, r.floor.signal.latency, r.floor.signal.perSec),
    row('Slack click ack vs Update', r.slackAck, undefined, r.floor.update.latency, r.floor.update.perSec),
    row('decision→agent, long-poll', r.notification.longPoll.notify),
    r.notification.sse ? row('decision→agent, SSE', r.notification.sse.notify) : ['decision→agent, SSE', 'n/a'],
    row('click→agent, long-poll', r.notification.longPoll.clickToNotify),
    ...(r.notification.sse ? [row('click→agent, SSE', r.notification.sse.clickToNotify)] : []),
    row(
      'approval loop (create→agent)',
      r.approvalLoop.latency,
      r.approvalLoop.approvalsPerSec,
      r.floor.loop.latency,
      r.floor.loop.perSec,
    ),
    row('escalation lateness', r.timers.escalationLateness),
    row('expiry lateness', r.timers.expiryLateness),
  ];
  const loop = r.resources.approvalLoop ?? {};
  const mem = (name: string) => fmt(r.pending?.rssMB[name] ?? loop[name]?.rssMB, ' MB');
  const resources = [
    ['process', 'CPU % (approval loop)', 'RSS end of loop', ...(r.pending ? [`RSS @${p} open`] : [])],
    ...['api', 'worker', 'temporal', 'floorWorker', 'loadgen'].map((name) => [
      name,
      fmt(loop[name]?.cpuPct, '%'),
      fmt(loop[name]?.rssMB, ' MB'),
      ...(r.pending ? [mem(name)] : []),
    ]),
  ];
  const targets = [
    ['target', 'wanted', 'measured', 'met'],
    ...r.targets.map((t) => [t.name, t.target, fmt(t.value), t.met === null ? 'n/a' : t.met ? 'yes' : 'NO']),
  ];
  return [
    pad(lines),
    '',
    `CPU per approval: service ${fmt(r.cpuMsPerApproval.service, ' ms')} (api+worker+temporal), ` +
      `floor ${fmt(r.cpuMsPerApproval.floor, ' ms')} (floor worker+temporal)`,
    pad(resources),
    '',
    pad(targets),
  ].join('\n');
}
