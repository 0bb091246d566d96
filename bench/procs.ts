/**
 * The service's processes as the load harness sees them: spawned children with their output kept for errors, and
 * their CPU time and resident memory read from /proc (Linux), so the service is measured apart from the load.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { spawnWatched, type WatchedProcess } from '../dev/procs.js';

const OUTPUT_TAIL = 100;

export type Child = WatchedProcess;

export function spawnChild(name: string, command: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Child {
  return spawnWatched(name, command, args, { cwd, env, outputTail: OUTPUT_TAIL });
}

let clockTicks: number | null = null;
function ticksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export interface ProcUsage {
  /** User + system CPU seconds since the process started. */
  cpuSec: number;
  rssMB: number;
  /** Peak resident set since the process started (VmHWM). */
  hwmMB: number;
}

/** null when the process is gone or /proc is not there. */
export function readUsage(pid: number): ProcUsage | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: fields are counted after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuSec = (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    return { cpuSec, rssMB: round1(kb('VmRSS') / 1024), hwmMB: round1(kb('VmHWM') / 1024) };
  } catch {
    return null;
  }
}

export interface PhaseUsage {
  /** Average CPU use over the phase, in % of one core. */
  cpuPct: number;
  cpuSec: number;
  rssMB: number;
  peakRssMB: number;
}

/**
 * Follows named processes during one phase: CPU seconds spent between start and stop, resident memory at the end
 * and its peak (sampled every `intervalMs`).
 */
export class UsageMonitor {
  private readonly start = new Map<string, ProcUsage>();
  private readonly peak = new Map<string, number>();
  private readonly startedAt = performance.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pids: Record<string, number | undefined>,
    intervalMs = 250,
  ) {
    for (const [name, pid] of this.known()) {
      const u = readUsage(pid);
      if (u) this.start.set(name, u);
    }
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  private known(): Array<[string, number]> {
    return Object.entries(this.pids).filter((e): e is [string, number] => e[1] !== undefined);
  }

  private sample(): void {
    for (const [name, pid] of this.known()) {
      const u = readUsage(pid);
      if (u) this.peak.set(name, Math.max(this.peak.get(name) ?? 0, u.rssMB));
    }
  }

  stop(): Record<string, PhaseUsage> {
    clearInterval(this.timer);
    const wallSec = (performance.now() - this.startedAt) / 1000;
    const out: Record<string, PhaseUsage> = {};
    for (const [name, pid] of this.known()) {
      const first = this.start.get(name);
      const last = readUsage(pid);
      if (!first || !last) continue;
      const cpuSec = last.cpuSec - first.cpuSec;
      out[name] = {
        cpuPct: round1((cpuSec / Math.max(wallSec, 0.001)) * 100),
        cpuSec: round1(cpuSec * 100) / 100,
        rssMB: last.rssMB,
        peakRssMB: Math.max(this.peak.get(name) ?? 0, last.rssMB),
      };
    }
    return out;
  }
}

export const round1 = (v: number): number => Math.round(v * 10) / 10;

/** The 1-, 5- and 15-minute load averages (`uptime`'s); [-1, -1, -1] without /proc. */
export function loadAverages(): [number, number, number] {
  try {
    const [a, b, c] = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
    return [a ?? -1, b ?? -1, c ?? -1];
  } catch {
    return [-1, -1, -1];
  }
}

/** The 1-minute load average and core count: the report says how busy the machine was. */
export function machineLoad(): { loadavg1: number; cores: number } {
  try {
    const [one] = readFileSync('/proc/loadavg', 'utf8').split(' ');
    return { loadavg1: Number(one), cores: Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) };
  } catch {
    return { loadavg1: -1, cores: -1 };
  }
}

/**
 * What the machine itself did during a run, which the load average does not show: the share of CPU time the
 * hypervisor gave to other guests (`steal` in /proc/stat), and a fixed piece of CPU work timed before and after (a
 * slower host makes every process slower at once: the ratios to the floor cancel it only if it holds for the run).
 */
export interface MachineCpu {
  /** Stolen ÷ all CPU time over the run, %; null without /proc/stat. */
  stealPct: number | null;
  /** Milliseconds of the same work (speedCheck()) before the run and after it: lower is faster. */
  speedCheckMs: { start: number; end: number };
}

export function startMachineCpu(): { finish(): MachineCpu } {
  const before = cpuTimes();
  const start = speedCheck();
  return {
    finish() {
      const after = cpuTimes();
      const total = before && after ? after.total - before.total : 0;
      const stealPct = before && after && total > 0 ? round1(((after.steal - before.steal) / total) * 100) : null;
      return { stealPct, speedCheckMs: { start, end: speedCheck() } };
    },
  };
}

/** The machine's CPU time so far, in clock ticks (all cores): the stolen part and the total. */
function cpuTimes(): { steal: number; total: number } | null {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    if (fields.length < 8 || fields.some((n) => !Number.isFinite(n))) return null;
    return { steal: fields[7]!, total: fields.reduce((a, b) => a + b, 0) };
  } catch {
    return null;
  }
}

/** Milliseconds for a fixed piece of single-threaded work (hashing and arithmetic), ~0.3 s on this machine. */
export function speedCheck(): number {
  const t0 = performance.now();
  let digest = Buffer.alloc(32);
  for (let i = 0; i < 100_000; i += 1) digest = createHash('sha256').update(digest).digest();
  let x = 0;
  for (let i = 0; i < 20_000_000; i += 1) x += Math.sqrt(i);
  if (!Number.isFinite(x)) throw new Error('unreachable');
  return round1(performance.now() - t0);
}
