/**
 * Temporal's own metrics, read before and after a phase. The worker's SDK metrics (TEMPORAL_METRICS_PORT) say where a
 * workflow task's time goes (waiting in the queue vs running in the worker); the server's (dev server --metrics-port)
 * say how many RPCs and database operations each approval costs it, ours against the floor's.
 */
const HISTOGRAMS = {
  workflowTaskScheduleToStart: 'temporal_workflow_task_schedule_to_start_latency',
  workflowTaskExecution: 'temporal_workflow_task_execution_latency',
  workflowTaskReplay: 'temporal_workflow_task_replay_latency',
  activityScheduleToStart: 'temporal_activity_schedule_to_start_latency',
  activityExecution: 'temporal_activity_execution_latency',
  localActivityExecution: 'temporal_local_activity_execution_latency',
} as const;
const COUNTERS = {
  stickyCacheHits: 'temporal_sticky_cache_hit',
  stickyCacheMisses: 'temporal_sticky_cache_miss',
} as const;

export type SdkScrape = Map<string, number>;

export interface SdkPhase {
  /** Mean milliseconds per task over the phase (null: no task of that kind ran). */
  meanMs: Record<keyof typeof HISTOGRAMS, number | null>;
  counts: Record<keyof typeof HISTOGRAMS | keyof typeof COUNTERS, number>;
  /** Workflows held in the worker's cache at the end of the phase. */
  stickyCacheSize: number | null;
}

/** Sums every series of each metric (labels dropped); null when the endpoint does not answer. */
export async function scrapeSdk(url: string | null): Promise<SdkScrape | null> {
  if (!url) return null;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    const totals: SdkScrape = new Map();
    for (const line of (await res.text()).split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      totals.set(m[1]!, (totals.get(m[1]!) ?? 0) + Number(m[2]));
    }
    return totals;
  } catch {
    return null;
  }
}

/** What happened between two scrapes. Histograms may be exported in seconds or milliseconds: both are read as ms. */
export function sdkDelta(before: SdkScrape | null, after: SdkScrape | null): SdkPhase | null {
  if (!before || !after) return null;
  const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
  const meanMs = {} as SdkPhase['meanMs'];
  const counts = {} as SdkPhase['counts'];
  for (const [key, base] of Object.entries(HISTOGRAMS) as Array<[keyof typeof HISTOGRAMS, string]>) {
    const seconds = after.has(`${base}_seconds_count`);
    const name = seconds ? `${base}_seconds` : base;
    const count = delta(`${name}_count`);
    const sum = delta(`${name}_sum`) * (seconds ? 1000 : 1);
    counts[key] = count;
    meanMs[key] = count > 0 ? Math.round((sum / count) * 10) / 10 : null;
  }
  for (const [key, name] of Object.entries(COUNTERS) as Array<[keyof typeof COUNTERS, string]>) {
    counts[key] = delta(name) || delta(`${name}_total`);
  }
  return { meanMs, counts, stickyCacheSize: after.get('temporal_sticky_cache_size') ?? null };
}

export type ServerScrape = Map<string, number>;

/** Prefix of a scrape's per-operation persistence counts (RPC names have no colon). */
const PERSISTENCE = 'persistence:';

export interface ServerPhase {
  /** Frontend RPCs (clients and workers) per operation of the phase, by RPC name. */
  rpcsPerOp: Record<string, number>;
  /**
   * Database operations per operation of the phase: the server's persistence requests, the visibility store's
   * included (its writes go to the same database on the dev server).
   */
  persistencePerOp: number;
  /**
   * The same by operation (`CreateWorkflowExecution`, `UpdateWorkflowExecution`, ...; the visibility store's as
   * `visibility:UpsertWorkflowExecution`, ...).
   */
  persistenceByKind: Record<string, number>;
}

/**
 * `service_requests` of the frontend by operation, and `persistence_requests` with `visibility_persistence_requests`
 * in total and by operation.
 */
export async function scrapeServer(url: string | null): Promise<ServerScrape | null> {
  if (!url) return null;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    const totals: ServerScrape = new Map();
    for (const line of (await res.text()).split('\n')) {
      const m = /^(service_requests|persistence_requests|visibility_persistence_requests)\{([^}]*)\}\s+(\S+)/.exec(
        line,
      );
      if (!m) continue;
      const labels = m[2]!;
      const op = /operation="([^"]+)"/.exec(labels)?.[1];
      const add = (key: string) => totals.set(key, (totals.get(key) ?? 0) + Number(m[3]));
      if (m[1] !== 'service_requests') {
        add('persistence');
        const store = m[1] === 'visibility_persistence_requests' ? 'visibility:' : '';
        if (op) add(`${PERSISTENCE}${store}${op}`);
        continue;
      }
      if (!labels.includes('service_name="frontend"')) continue;
      if (op) add(op);
    }
    return totals;
  } catch {
    return null;
  }
}

export function serverDelta(before: ServerScrape | null, after: ServerScrape | null, ops: number): ServerPhase | null {
  if (!before || !after || ops === 0) return null;
  const per = (name: string) => Math.round((((after.get(name) ?? 0) - (before.get(name) ?? 0)) / ops) * 100) / 100;
  const rpcsPerOp: Record<string, number> = {};
  const persistenceByKind: Record<string, number> = {};
  for (const name of after.keys()) {
    if (name === 'persistence') continue;
    const v = per(name);
    if (v <= 0) continue;
    if (name.startsWith(PERSISTENCE)) persistenceByKind[name.slice(PERSISTENCE.length)] = v;
    else rpcsPerOp[name] = v;
  }
  return { rpcsPerOp, persistencePerOp: per('persistence'), persistenceByKind };
}
