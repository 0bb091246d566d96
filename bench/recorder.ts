/** One phase of a run, measured: CPU and memory of each process, the worker's SDK metrics, the server's work. */
import { UsageMonitor, type PhaseUsage } from './procs.js';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  scrapeSdk,
  scrapeServer,
  sdkDelta,
  serverDelta,
  type SdkPhase,
  type ServerPhase,
  type ServerScrape,
} from './sdk-metrics.js';
import type { Service } from './service.js';
import { log } from './log.js';

/** Runs one phase while following the processes' CPU and memory and the worker's SDK metrics. */
export class Recorder {
  readonly resources: Record<string, Record<string, PhaseUsage>> = {};
  readonly sdk: Record<string, SdkPhase | null> = {};
  readonly server: Record<string, ServerPhase | null> = {};
  readonly failures: string[] = [];

  constructor(private readonly service: Service) {}

  private settledServer(): Promise<ServerScrape | null> {
    return stableServer(this.service.serverMetricsUrl);
  }

  async phase<T extends { pool?: { done: number; failed: number; errors: string[]; timedOut: boolean } | null }>(
    name: string,
    run: () => Promise<T>,
  ): Promise<T> {
    log(`phase ${name}`);
    const serverBefore = await this.settledServer();
    const before = await scrapeSdk(this.service.sdkMetricsUrl);
    const monitor = new UsageMonitor(this.service.pids);
    const result = await run();
    this.resources[name] = monitor.stop();
    const serverAfter = await this.settledServer();
    this.sdk[name] = sdkDelta(before, await scrapeSdk(this.service.sdkMetricsUrl));
    const pool = result.pool;
    const ops = pool?.done ?? 0;
    this.server[name] = serverDelta(serverBefore, serverAfter, ops);
    if (pool?.failed) this.failures.push(`${name}: ${pool.failed} failed (${pool.errors.join('; ')})`);
    if (pool?.timedOut) this.failures.push(`${name}: stopped by --phase-timeout`);
    return result;
  }
}

/**
 * The server's counters once they stopped moving: it reports its metrics in batches, so a scrape right after a
 * phase misses its tail and the next phase would count it. Waits (up to 20 s) for two equal scrapes in a row.
 */
async function stableServer(url: string | null): Promise<ServerScrape | null> {
  let last = await scrapeServer(url);
  for (let i = 0; last && i < 40; i++) {
    await sleep(500);
    const next = await scrapeServer(url);
    if (!next || next.get('persistence') === last.get('persistence')) return next ?? last;
    last = next;
  }
  return last;
}

/** CPU ms of the named processes per operation over a phase. */
export function cpuMsPer(usage: Record<string, PhaseUsage> | undefined, names: string[], ops: number): number | null {
  if (!usage || ops === 0) return null;
  const present = names.filter((name) => usage[name]);
  if (present.length === 0) return null;
  const cpuSec = present.reduce((s, name) => s + usage[name]!.cpuSec, 0);
  return Math.round(((cpuSec * 1000) / ops) * 10) / 10;
}
