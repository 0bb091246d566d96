/** The open-loop run's table: the knee, the figures at 80 % of it (and with requests held open), the targets. */
import type { AtRate, OpenResult, PerOp } from './open-run.js';
import type { Summary } from './stats.js';

const cell = (v: unknown, w: number) => String(v ?? 'n/a').padEnd(w);
export const pct = (s: Summary | null) => (s ? `${s.p50} / ${s.p95} / ${s.p99}` : 'n/a');

export function table(head: string[], rows: unknown[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? 'n/a').length)) + 2);
  return [head, ...rows]
    .map((r) =>
      r
        .map((v, i) => cell(v, widths[i]!))
        .join('')
        .trimEnd(),
    )
    .join('\n');
}

function kneeLines(r: OpenResult): string[] {
  if (!r.knee) return [];
  const { floor, service, ratio } = r.knee;
  const steps = (name: string, k: typeof floor) =>
    k.steps.map((s) => [
      name,
      s.rate,
      `${s.done}/${s.offered}`,
      s.perSec,
      s.p50,
      s.p99,
      s.held ? 'held' : `broke: ${s.broke}`,
    ]);
  return [
    `knee (criteria: p99 ≤ ${floor.criteria.p99Ms} ms, ≥ ${floor.criteria.completion * 100} % completed, no failure; a broken rate is run twice)`,
    table(
      ['loop', 'rate/s', 'done', 'per s', 'p50', 'p99', ''],
      [...steps('floor', floor), ...steps('approvals', service)],
    ),
    `max sustainable: approvals ${service.maxRate ?? 'n/a'}/s, floor loops ${floor.maxRate ?? 'n/a'}/s, ratio ${ratio ?? 'n/a'}`,
    '',
  ];
}

function atRateLines(title: string, a: AtRate, r: OpenResult): string[] {
  const s = a.service;
  return [
    `${title} (${a.rate} arrivals/s; ms p50 / p95 / p99)`,
    table(
      ['figure', 'service', 'floor'],
      [
        ['create / floor start', pct(s.create), pct(r.floor.start)],
        ['Slack ack / bare Signal', pct(s.ack), pct(r.floor.signal)],
        ['decision → agent, long-poll', pct(s.notifyLongPoll), ''],
        ['decision → agent, SSE', pct(s.notifySse), ''],
        ['approval / floor loop', pct(s.loop), pct(r.floor.loop)],
        ['escalation lateness', pct(a.timers?.escalationLateness ?? null), ''],
        ['expiry lateness', pct(a.timers?.expiryLateness ?? null), ''],
      ],
    ),
  ];
}

function costLines(r: OpenResult): string[] {
  const row = (name: string, p: PerOp) => [
    name,
    p.cpuMs,
    p.dbOps,
    p.workflowTasks,
    p.activityTasks,
    p.localActivities,
    p.wftScheduleToStartMs,
    p.wftExecutionMs,
    p.cacheMisses,
  ];
  return [
    'cost per operation',
    table(
      [
        '',
        'CPU ms',
        'DB ops',
        'wf tasks',
        'act. tasks',
        'local act.',
        'wft sched→start ms',
        'wft exec ms',
        'cache misses',
      ],
      [
        row('approval', r.atZero.perApproval),
        row('floor loop', r.floor.perLoop),
        ...(r.pending ? [row(`approval, ${r.pending.count} open`, r.pending.at.perApproval)] : []),
      ],
    ),
  ];
}

function pendingLines(r: OpenResult): string[] {
  if (!r.pending) return [];
  const p = r.pending;
  const names = Object.keys(p.rssAfterMB);
  return [
    '',
    ...atRateLines(`with ${p.count} open requests (filled in ${p.fillSec} s)`, p.at, r),
    table(
      ['process', 'RSS before MB', `RSS with ${p.count} open MB`, 'KB per open request'],
      names.map((n) => [n, p.rssBeforeMB[n], p.rssAfterMB[n], p.kbPerOpen[n]]),
    ),
  ];
}

export function formatOpenTable(r: OpenResult): string {
  return [
    ...kneeLines(r),
    ...atRateLines('at 80 % of the maximum', r.atZero, r),
    '',
    ...costLines(r),
    ...pendingLines(r),
    '',
    table(
      ['target', 'wanted', 'measured', 'met'],
      r.targets.map((t) => [t.name, t.target, t.value, t.met === null ? 'n/a' : t.met ? 'yes' : 'NO']),
    ),
  ].join('\n');
}
