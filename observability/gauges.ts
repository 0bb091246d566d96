import type { LoadedPolicy } from '../domain/policy-loader.js';
import { OPEN_STATUSES } from '../domain/request-state.js';
import type { Metrics } from './metrics.js';

/**
 * The request gauges (`pending_requests`, `open_requests_status`, `oldest_open_request_age_seconds`,
 * `persona_pending_requests`) are read from Temporal visibility at scrape time, so every API replica reports the
 * same truth, whichever process created or decided the requests. A snapshot is shared for a short while so a
 * burst of scrapes costs one visibility query.
 */

export interface OpenRequest {
  action: string;
  status: string;
  personasPending: readonly string[];
  startedAt: Date;
}

export interface OpenRequestList {
  requests: OpenRequest[];
  /** More open requests exist than were listed (see MAX_LISTED): the gauges are lower bounds. */
  truncated: boolean;
}

/** Action → personas it requires: these label sets read 0 rather than vanish when nothing is open. */
export type KnownActions = () => Record<string, readonly string[]>;

export interface VisibilityGaugeOptions {
  metrics: Metrics;
  listOpen: () => Promise<OpenRequestList>;
  knownActions?: KnownActions;
  cacheMs?: number;
  now?: () => number;
  log?: (msg: string) => void;
}

export interface GaugeSnapshot {
  pending: Map<string, number>;
  byStatus: Map<string, Map<string, number>>;
  oldestAgeSec: Map<string, number>;
  personaPending: Map<string, Map<string, number>>;
}

const DEFAULT_CACHE_MS = 2000;
/** Bound on one scrape's listing: a gate with more open requests than this has bigger problems than a gauge. */
export const MAX_LISTED = 10_000;

/** Fills the four gauges at every scrape from `listOpen`, sharing one listing per `cacheMs`. */
export function installVisibilityGauges(opts: VisibilityGaugeOptions): void {
  const { metrics } = opts;
  const cacheMs = opts.cacheMs ?? DEFAULT_CACHE_MS;
  const now = opts.now ?? Date.now;
  let cached: { at: number; snapshot: Promise<GaugeSnapshot | null> } | null = null;

  const snapshot = (): Promise<GaugeSnapshot | null> => {
    const t = now();
    if (!cached || t - cached.at >= cacheMs) {
      cached = { at: t, snapshot: load(t) };
    }
    return cached.snapshot;
  };

  const load = async (t: number): Promise<GaugeSnapshot | null> => {
    try {
      const list = await opts.listOpen();
      if (list.truncated) opts.log?.(`more than ${MAX_LISTED} open requests: request gauges are lower bounds`);
      return summarize(list.requests, opts.knownActions?.() ?? {}, t);
    } catch (err) {
      // No data beats stale data: the gauges go empty until visibility answers again.
      opts.log?.(`request gauges unavailable: ${(err as Error).message}`);
      return null;
    }
  };

  metrics.visibility.refresh = async () => apply(metrics, await snapshot());
}

/** Counts open requests per label set; known actions (and their personas) start at 0. */
export function summarize(
  requests: readonly OpenRequest[],
  known: Record<string, readonly string[]>,
  nowMs: number,
): GaugeSnapshot {
  const s: GaugeSnapshot = {
    pending: new Map(),
    byStatus: new Map(),
    oldestAgeSec: new Map(),
    personaPending: new Map(),
  };
  const ensure = (action: string) => {
    if (!s.pending.has(action)) {
      s.pending.set(action, 0);
      s.oldestAgeSec.set(action, 0);
      s.byStatus.set(action, new Map(OPEN_STATUSES.map((st) => [st, 0])));
      s.personaPending.set(action, new Map());
    }
  };
  for (const [action, personas] of Object.entries(known)) {
    ensure(action);
    for (const p of personas) s.personaPending.get(action)?.set(p, 0);
  }
  for (const r of requests) {
    ensure(r.action);
    s.pending.set(r.action, (s.pending.get(r.action) ?? 0) + 1);
    const statuses = s.byStatus.get(r.action);
    statuses?.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    const age = Math.max(0, (nowMs - r.startedAt.getTime()) / 1000);
    s.oldestAgeSec.set(r.action, Math.max(s.oldestAgeSec.get(r.action) ?? 0, age));
    const personas = s.personaPending.get(r.action);
    for (const p of r.personasPending) personas?.set(p, (personas.get(p) ?? 0) + 1);
  }
  return s;
}

/** Replaces every label set, so one that disappeared (an action removed, a persona acked) is not left stale. */
function apply(metrics: Metrics, s: GaugeSnapshot | null): void {
  const { pendingRequests, openRequestsStatus, oldestOpenRequestAge, personaPendingRequests } = metrics;
  for (const g of [pendingRequests, openRequestsStatus, oldestOpenRequestAge, personaPendingRequests]) g.reset();
  if (!s) return;
  for (const [action, n] of s.pending) pendingRequests.set({ action }, n);
  for (const [action, age] of s.oldestAgeSec) oldestOpenRequestAge.set({ action }, age);
  for (const [action, statuses] of s.byStatus) {
    for (const [status, n] of statuses) openRequestsStatus.set({ action, status }, n);
  }
  for (const [action, personas] of s.personaPending) {
    for (const [persona, n] of personas) personaPendingRequests.set({ action, persona }, n);
  }
}

/** Actions of the loaded policy with the personas each requires. */
export function policyActions(loaded: LoadedPolicy | null): Record<string, readonly string[]> {
  if (!loaded) return {};
  return Object.fromEntries(Object.entries(loaded.policy.actions).map(([name, a]) => [name, a.personasRequired]));
}
