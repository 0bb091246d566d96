import { isTerminal, postSettled } from '../domain/request-state.js';
import type { RequestView } from '../workflows/messages.js';
import type { ChangeFeed, StateChange } from './events.js';
import { NotFoundError } from './types.js';
import type { WatchSource } from './watch-source.js';

/** Temporal cannot be reached: open waiters are told at once instead of holding a state that may be stale. */
export class TemporalUnavailableError extends Error {
  override name = 'TemporalUnavailableError';
  /** gRPC UNAVAILABLE, so the API's error handler answers 503 `temporal_unavailable` as for any other call. */
  readonly code = 14;
  constructor(message = 'UNAVAILABLE: the workflow service cannot be reached') {
    super(message);
  }
}

export interface WatcherOptions {
  /** Where the worker's state changes are heard; null: history long-polls and sweeps only. */
  feed?: ChangeFeed | null;
  /** History long-polls this process holds at most (used while the feed is absent or down). */
  maxHistoryPolls?: number;
  /** A request the feed covers is re-read at least this often (a notice may be lost: a publisher's outage). */
  sweepMs?: number;
  /** A request covered by neither the feed nor a history long-poll is re-read this often, as reads allow. */
  uncoveredSweepMs?: number;
  /** Background re-reads (sweeps) per second, at most. */
  sweepReadsPerSec?: number;
  /** Reads of Temporal in flight at most; more wait their turn (never refused). */
  maxReads?: number;
  /**
   * An open request's state answered from the watch is at most this old; older, it is read again: a task that keeps
   * failing changes no version and sends no notice, only a read shows the request stuck.
   */
  recheckMs?: number;
  /** How long after a notice its version is read for before the notice counts as never persisted. */
  catchUpMs?: number;
  /** How often Temporal's health is checked while waiters are held. */
  healthProbeMs?: number;
  /** How often sweeps, history long-poll assignments and health checks are considered. */
  tickMs?: number;
  /**
   * How long after its decision a request may still exist (the purge window, RETENTION_MAX_AGE_SEC): a decided view
   * is never served from this process's memory past it, so a purged request is not answered.
   */
  maxAgeMs?: number;
  log?: (msg: string) => void;
}

export const WATCHER_DEFAULTS = {
  maxHistoryPolls: 100,
  sweepMs: 60_000,
  uncoveredSweepMs: 2_000,
  sweepReadsPerSec: 200,
  maxReads: 128,
  catchUpMs: 6_000,
  recheckMs: 15_000,
  healthProbeMs: 1_000,
  tickMs: 250,
  maxAgeMs: Infinity,
} as const;

/** Counters for tests and the benchmark. */
export interface WatcherStats {
  watches: number;
  listeners: number;
  historyPolls: number;
  feedConnected: boolean;
  /** Connected, and not caught losing a notice lately: watches it covers are answered without reading. */
  feedTrusted: boolean;
  temporalDown: boolean;
  notices: number;
  /** Reads of Temporal made, by why they were made, and those that failed. */
  reads: { foreground: number; catchUp: number; resync: number; sweep: number; failed: number };
  /** Notices whose version never showed in the persisted state within the catch-up window. */
  unconfirmedNotices: number;
  /** Changes read that no notice announced: each makes the feed untrusted for a while. */
  lostNotices: number;
}

interface Subscriber {
  view(view: RequestView): void;
  error(err: Error): void;
}

interface Watch {
  requestId: string;
  subscribers: Set<Subscriber>;
  latest: RequestView | null;
  /** When the read behind `latest` started (ms since the epoch); 0: never read. */
  checkedAt: number;
  /** Feed epoch in which `latest` was read with the feed up: the feed covers the watch while that epoch lasts. */
  coveredEpoch: number;
  /** The highest version a notice announced. */
  want: number;
  /** A notice said the first Slack post settled (no new version) after the state held: read until it shows. */
  wantPosted: boolean;
  poll: AbortController | null;
  /** The history long-poll has answered once: it follows the request from there. */
  pollLive: boolean;
  refreshing: boolean;
  /** A notice arrived during a refresh: read again after it. */
  again: boolean;
  closed: boolean;
}

interface ReadResult {
  view: RequestView;
  startedAt: number;
  /** The feed was up, in this epoch, when the read started. */
  epoch: number | null;
}

const TERMINAL_CACHE_SIZE = 10_000;
/** Recent notices, so that a watch created just after a notice (its read older than the commit) still hears it. */
const RECENT_CHANGES_MAX = 50_000;
const RECENT_CHANGES_TTL_MS = 60_000;
/** A watch may start from a read at most this old (younger than the recent notices it is checked against). */
const SEED_MAX_AGE_MS = 10_000;
const LAST_READS_MAX = 50_000;
/** A read showed a version no notice announced: how long the notice may still be on its way. */
const NOTICE_GRACE_MS = 2_000;
/** A feed caught losing a notice is not trusted for this long (history long-polls and sweeps serve meanwhile). */
const DISTRUST_MS = 5 * 60_000;
/**
 * Re-reads after a notice until its version is persisted: the notice is sent when the workflow's activation
 * completes, before the worker has run the task's local activities (the Slack update, the archive) and the server has
 * the task. Each read is a describe (the memo), so they come close together: at most 100 ms between them after the
 * first few, for 6 s in all (a task past that is a worker in trouble: the sweeps and the stuck check take over).
 */
function catchUpDelays(windowMs: number): number[] {
  const delays = [0, 10, 20, 30, 50, 75];
  let total = delays.reduce((a, b) => a + b, 0);
  while (total < windowMs) {
    delays.push(100);
    total += 100;
  }
  return delays;
}
const HEALTH_DEADLINE_MS = 2_000;
/** Consecutive health checks past their deadline before Temporal counts as down (a loaded server is slow, not dead). */
const SLOW_CHECKS_TO_DOWN = 3;
const POLL_BACKOFF_MAX_MS = 5_000;
const GRPC_UNAVAILABLE = 14;

/** Why a read is made: a waiter's answer, a notice's catch-up (both first in line), a resync or a sweep. */
type Lane = 'foreground' | 'catchUp' | 'resync' | 'sweep';
const HIGH: ReadonlySet<Lane> = new Set(['foreground', 'catchUp']);

const versionOf = (view: RequestView | null) => view?.version ?? -1;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Wakes waiters (long-polls and SSE streams) when a request's state changes, at any number of waiters:
 * - The change feed (events.ts) tells which request reached which version; the watcher then reads the persisted
 *   state once per request, however many wait on it, and re-reads until it shows that version.
 * - While the feed is connected, the requests it covers (read since it connected) are current without reading:
 *   new waiters and wait bounds are answered from the watch. The trust is checked: a periodic sweep re-reads every
 *   watched request, and a version that no notice announced (a lost notice: a worker publishing elsewhere, a
 *   publisher cut off from Redis) makes the feed untrusted for a while, as if it were down.
 * - While the feed is absent, down or untrusted, up to `maxHistoryPolls` requests are followed by a server-side
 *   history long-poll each (the busiest first); the others are re-read by a rate-limited sweep (slower, never
 *   refused), and a wait bound is answered with a fresh read; when the feed is back every watch is read again.
 * - While Temporal is down, waiters are answered with TemporalUnavailableError at once.
 * Reads go through a bounded number of concurrent calls; waiters beyond it wait, they are never refused.
 */
export class StateWatcher {
  private readonly watches = new Map<string, Watch>();
  private readonly terminal = new Map<string, RequestView>();
  private readonly recent = new Map<string, { version: number; at: number }>();
  /** Notices older than this may have been evicted from `recent`. */
  private recentFloor = Date.now();
  private readonly lastReads = new Map<string, ReadResult>();
  private readonly inflight = new Map<string, { run: Promise<ReadResult>; memoOnly: boolean }>();
  private readonly highQueue: Array<() => void> = [];
  private readonly lowQueue: Array<() => void> = [];
  private reading = 0;
  private lowReading = 0;
  private polls = 0;
  private epoch = 0;
  /** The feed is connected and trusted: notices are heard. */
  private feedUp = false;
  private feedConnected = false;
  private distrustUntil = 0;
  private down = false;
  private slowChecks = 0;
  private probing = false;
  private lastProbe = 0;
  private sweepBudget = 0;
  private readonly opts: Required<Omit<WatcherOptions, 'feed' | 'log'>>;
  private readonly feed: ChangeFeed | null;
  private readonly log: (msg: string) => void;
  private readonly unsubscribeFeed: () => void;
  private readonly ticker: NodeJS.Timeout;
  private readonly catchUpDelays: number[];
  private readonly counts = {
    notices: 0,
    foreground: 0,
    catchUp: 0,
    resync: 0,
    sweep: 0,
    failed: 0,
    unconfirmed: 0,
    lostNotices: 0,
  };

  constructor(
    private readonly source: WatchSource,
    options: WatcherOptions = {},
  ) {
    const { feed = null, log = () => {}, ...rest } = options;
    this.opts = { ...WATCHER_DEFAULTS, ...stripUndefined(rest) };
    this.feed = feed;
    this.log = log;
    this.catchUpDelays = catchUpDelays(this.opts.catchUpMs);
    this.unsubscribeFeed = feed
      ? feed.subscribe({ onChange: (c) => this.onChange(c), onStatus: (up) => this.onFeedStatus(up) })
      : () => {};
    this.ticker = setInterval(() => this.tick(), this.opts.tickMs);
    this.ticker.unref();
  }

  /**
   * The current state: known-current without a read when a watch is covered, else read (once per request).
   * `persisted`: the persisted state, not waiting for a workflow task in flight (RequestGateway.view).
   */
  async current(requestId: string, { persisted = false }: { persisted?: boolean } = {}): Promise<RequestView> {
    const cached = this.cached(requestId);
    if (cached) return cached;
    const w = this.watches.get(requestId);
    if (w?.latest && this.answerable(w)) return w.latest;
    const { view } = await this.read(requestId, 'foreground', persisted);
    return view;
  }

  /** True when this process knows the request reached a terminal state (which never changes). */
  decided(requestId: string): boolean {
    return this.cached(requestId) !== null;
  }

  private cached(requestId: string): RequestView | null {
    const view = this.terminal.get(requestId);
    if (!view) return null;
    if (Date.now() - Date.parse(view.decidedAt ?? view.createdAt) < this.opts.maxAgeMs) return view;
    this.terminal.delete(requestId);
    return null;
  }

  /**
   * Resolves with the first view newer than `sinceVersion`; when `timeoutMs` passes first and the state is (known to
   * be, or read again to be) still that version, with that view once its first Slack post settled (the post changes
   * no version), else null. Rejects with TemporalUnavailableError while Temporal is down.
   */
  waitForChange(requestId: string, sinceVersion: number, timeoutMs: number): Promise<RequestView | null> {
    return new Promise((resolve, reject) => {
      let settled = false;
      let unsubscribe = () => {};
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        unsubscribe();
        fn();
      };
      // At the bound: a newer view, or the same version once its Slack post settled, or null.
      const answer = (view: RequestView | null) =>
        view && (view.version > sinceVersion || (view.version === sinceVersion && postSettled(view))) ? view : null;
      const timer = setTimeout(() => {
        if (settled) return;
        const w = this.watches.get(requestId);
        const known = w && this.answerable(w) ? w.latest : null;
        settle(() => {
          if (known) return resolve(answer(known));
          this.read(requestId, 'foreground').then(
            ({ view }) => resolve(answer(view)),
            (err: unknown) => (err instanceof NotFoundError ? resolve(null) : reject(err)),
          );
        });
      }, timeoutMs);
      unsubscribe = this.subscribe(
        requestId,
        (view) => {
          if (view.version > sinceVersion) settle(() => resolve(view));
        },
        (err) => settle(() => reject(err)),
      );
    });
  }

  /**
   * Calls `listener` with every newer view until the returned function is called; `onError` hears that Temporal
   * is down (the subscription has then ended).
   */
  subscribe(requestId: string, listener: (view: RequestView) => void, onError?: (err: Error) => void): () => void {
    // Decided already (a click's outcome may land between a waiter's first read and its subscription): say so now.
    const decided = this.cached(requestId);
    if (decided) {
      listener(decided);
      return () => {};
    }
    if (this.down) {
      onError?.(new TemporalUnavailableError());
      return () => {};
    }
    const sub: Subscriber = { view: listener, error: (err) => onError?.(err) };
    const w = this.watches.get(requestId) ?? this.createWatch(requestId);
    w.subscribers.add(sub);
    if (w.latest) listener(w.latest);
    this.probeSoon();
    return () => {
      w.subscribers.delete(sub);
      if (w.subscribers.size === 0) this.dropWatch(w);
    };
  }

  /** A view learnt elsewhere (an Update's result, persisted) reaches local waiters without a read. */
  publish(view: RequestView): void {
    this.remember(view);
    this.noteRecent({ requestId: view.requestId, version: view.version });
    const w = this.watches.get(view.requestId);
    if (w) this.offer(w, view);
  }

  /** How many listeners follow a request in this process; a closed stream must leave none behind. */
  listenerCount(requestId: string): number {
    return this.watches.get(requestId)?.subscribers.size ?? 0;
  }

  /** Someone who knows (the embedded server's supervisor) says Temporal is gone: tell every waiter now. */
  reportOutage(reason: string): void {
    this.markDown(new Error(reason));
  }

  stats(): WatcherStats {
    let listeners = 0;
    for (const w of this.watches.values()) listeners += w.subscribers.size;
    const c = this.counts;
    return {
      watches: this.watches.size,
      listeners,
      historyPolls: this.polls,
      feedConnected: this.feedConnected,
      feedTrusted: this.feedUp,
      temporalDown: this.down,
      notices: c.notices,
      reads: { foreground: c.foreground, catchUp: c.catchUp, resync: c.resync, sweep: c.sweep, failed: c.failed },
      unconfirmedNotices: c.unconfirmed,
      lostNotices: c.lostNotices,
    };
  }

  close(): void {
    clearInterval(this.ticker);
    this.unsubscribeFeed();
    for (const w of [...this.watches.values()]) this.dropWatch(w);
  }

  // ----------------------------------------------------------------------------------------------------------
  // Watches

  private createWatch(requestId: string): Watch {
    const w: Watch = {
      requestId,
      subscribers: new Set(),
      latest: null,
      checkedAt: 0,
      coveredEpoch: -1,
      want: -1,
      wantPosted: false,
      poll: null,
      pollLive: false,
      refreshing: false,
      again: false,
      closed: false,
    };
    this.watches.set(requestId, w);
    // Start from the read the waiter's first answer came from, if recent: any change persisted after it started
    // was announced by a notice, and a notice that came before this watch is still in `recent`.
    const seed = this.lastReads.get(requestId);
    const now = Date.now();
    if (seed && now - seed.startedAt < SEED_MAX_AGE_MS && seed.startedAt >= this.recentFloor) {
      this.adopt(w, seed);
      const announced = this.recent.get(requestId);
      if (announced && announced.version > versionOf(w.latest)) w.want = announced.version;
      // Without the feed, a history long-poll (whose first round reads it all) or a sweep follows it (below).
      if (w.want > versionOf(w.latest) || (this.feedUp && !this.covered(w))) this.refresh(w, 'catchUp');
    } else {
      this.refresh(w, 'catchUp');
    }
    // Without the feed, a free history long-poll follows it now, not at the next tick: a decision made in between
    // would wait for it (up to tickMs; 90 ms more at the median for an SSE stream opened just before the click).
    // Half the long-polls stay for the tick, which gives them to the requests with the most waiters.
    if (!this.feedUp && this.polls + 1 <= this.opts.maxHistoryPolls / 2) this.startPoll(w);
    return w;
  }

  private dropWatch(w: Watch): void {
    w.closed = true;
    w.poll?.abort();
    if (this.watches.get(w.requestId) === w) this.watches.delete(w.requestId);
  }

  /** The feed has carried every change since the watch's state was read. */
  private covered(w: Watch): boolean {
    return this.feedUp && w.coveredEpoch === this.epoch;
  }

  /**
   * A waiter may be answered from the watch: its state is current, and recent enough to say whether the request is
   * stuck (a task that keeps failing changes no version and sends no notice: only a read shows it).
   */
  private answerable(w: Watch): boolean {
    if (!this.fresh(w) || !w.latest || w.latest.stuck) return false;
    return isTerminal(w.latest.status) || Date.now() - w.checkedAt < this.opts.recheckMs;
  }

  /** The watch's state is current as far as this process can know without reading. */
  private fresh(w: Watch): boolean {
    return w.pollLive || (this.covered(w) && w.want <= versionOf(w.latest));
  }

  private offer(w: Watch, view: RequestView): void {
    this.remember(view);
    if (w.latest && view.version === w.latest.version) {
      // The first Slack post settled (no new version: its permalink, or that it failed): subscribers hear it (a
      // stream sends it, a long-poll answers it at its bound). A waiter may have started from the persisted state
      // before the post.
      if (settledSince(w.latest, view)) {
        w.latest = view;
        for (const sub of [...w.subscribers]) sub.view(view);
        return;
      }
      // Found stuck, or no longer: the same state, read again.
      if (!!view.stuck !== !!w.latest.stuck) w.latest = view;
    }
    if (view.version <= versionOf(w.latest)) return;
    w.latest = view;
    for (const sub of [...w.subscribers]) sub.view(view);
  }

  private adopt(w: Watch, read: ReadResult): void {
    // The feed is trusted, and checked: a covered watch whose read shows a version nobody announced lost a notice.
    if (w.latest && this.covered(w) && read.epoch === this.epoch && read.view.version > w.latest.version) {
      this.suspect(w.requestId, read.view.version);
    }
    if (read.startedAt >= w.checkedAt) {
      w.checkedAt = read.startedAt;
      if (read.epoch !== null && read.epoch === this.epoch) w.coveredEpoch = read.epoch;
    }
    this.offer(w, read.view);
  }

  /**
   * Reads the watch's state until it shows the version last announced (a notice comes before the server persisted
   * its task), giving up after the catch-up window: a notice whose task was never persisted changes nothing.
   */
  private refresh(w: Watch, lane: Lane): void {
    if (w.refreshing) {
      w.again = true;
      return;
    }
    w.refreshing = true;
    void this.catchUp(w, lane).finally(() => {
      w.refreshing = false;
      if (w.again && !w.closed) {
        w.again = false;
        this.refresh(w, 'catchUp');
      }
    });
  }

  private async catchUp(w: Watch, lane: Lane): Promise<void> {
    for (const delay of this.catchUpDelays) {
      if (delay > 0) await sleep(delay);
      if (w.closed) return;
      w.again = false;
      try {
        // Waiting for an announced version: its task writes the memo when it completes, read until it shows.
        const memoOnly = lane === 'catchUp' && w.latest !== null && (w.want > versionOf(w.latest) || w.wantPosted);
        this.adopt(w, await this.read(w.requestId, lane, memoOnly));
      } catch {
        // Not found (purged) or Temporal away: the health check and the sweep take it from here.
        return;
      }
      if (w.latest && postSettled(w.latest)) w.wantPosted = false;
      if ((w.want <= versionOf(w.latest) && !w.wantPosted) || (w.latest && isTerminal(w.latest.status))) return;
      lane = 'catchUp';
    }
    this.counts.unconfirmed += 1;
    w.wantPosted = false;
  }

  // ----------------------------------------------------------------------------------------------------------
  // The change feed

  /** A notice normally comes before the state it announces is readable; give it a moment, then call it lost. */
  private suspect(requestId: string, version: number): void {
    const check = () => {
      if ((this.recent.get(requestId)?.version ?? -1) >= version) return;
      this.counts.lostNotices += 1;
      if (Date.now() >= this.distrustUntil) {
        this.log(
          `change feed: ${requestId} reached version ${version} without a notice (a worker that does not publish ` +
            `here? every worker needs the same REDIS_URL as the APIs); not trusting the feed for ` +
            `${DISTRUST_MS / 60_000} min`,
        );
      }
      this.distrustUntil = Date.now() + DISTRUST_MS;
      this.updateFeed();
    };
    if ((this.recent.get(requestId)?.version ?? -1) >= version) return;
    setTimeout(check, NOTICE_GRACE_MS).unref();
  }

  private onChange(change: StateChange): void {
    this.counts.notices += 1;
    this.noteRecent(change);
    const w = this.watches.get(change.requestId);
    if (!w) return;
    // A notice of the version held: a change without a new version, the first Slack post settling. Read until the
    // post shows, if the state held is from before it.
    if (w.latest && change.version === w.latest.version && !postSettled(w.latest)) {
      w.wantPosted = true;
      this.refresh(w, 'catchUp');
      return;
    }
    if (change.version <= versionOf(w.latest)) return;
    w.want = Math.max(w.want, change.version);
    this.refresh(w, 'catchUp');
  }

  private onFeedStatus(connected: boolean): void {
    this.feedConnected = connected;
    this.updateFeed();
  }

  /** The feed counts when it is connected and has not been caught losing a notice lately. */
  private updateFeed(): void {
    const up = this.feedConnected && Date.now() >= this.distrustUntil;
    if (up === this.feedUp) return;
    const first = this.epoch === 0;
    this.epoch += 1;
    this.feedUp = up;
    if (!up) this.log('change feed down: waiters are woken from Temporal (history long-polls, sweeps)');
    else if (!first) this.log(`change feed back: re-reading ${this.watches.size} watched request(s)`);
    // Reconnected: changes made while away were not heard; every watch is read again (and is covered once read).
    if (up) for (const w of this.watches.values()) this.refresh(w, 'resync');
    else this.tick();
  }

  private noteRecent(change: StateChange): void {
    const now = Date.now();
    const prev = this.recent.get(change.requestId);
    if (prev && prev.version >= change.version) return;
    this.recent.delete(change.requestId);
    this.recent.set(change.requestId, { version: change.version, at: now });
    while (this.recent.size > RECENT_CHANGES_MAX) this.evictOldestRecent();
  }

  private evictOldestRecent(): void {
    const first = this.recent.entries().next().value;
    if (!first) return;
    this.recent.delete(first[0]);
    this.recentFloor = Math.max(this.recentFloor, first[1].at);
  }

  // ----------------------------------------------------------------------------------------------------------
  // Sweeps, history long-polls and health, every tick

  private tick(): void {
    const now = Date.now();
    while (this.recent.size > 0) {
      const first = this.recent.values().next().value;
      if (!first || now - first.at < RECENT_CHANGES_TTL_MS) break;
      this.evictOldestRecent();
    }
    for (const [id, read] of this.lastReads) {
      if (now - read.startedAt < SEED_MAX_AGE_MS) break;
      this.lastReads.delete(id);
    }
    if (this.distrustUntil > 0 && now >= this.distrustUntil) this.updateFeed();
    if (this.watches.size === 0) return;
    this.probeSoon();
    this.sweepBudget = Math.min(
      this.opts.sweepReadsPerSec,
      this.sweepBudget + (this.opts.sweepReadsPerSec * this.opts.tickMs) / 1000,
    );
    const stale: Watch[] = [];
    const unfollowed: Watch[] = [];
    for (const w of this.watches.values()) {
      if (this.feedUp) {
        // The feed carries this one: a history long-poll left from an outage is no longer needed.
        if (w.poll && this.covered(w)) w.poll.abort();
        const due = this.covered(w) ? this.opts.sweepMs : this.opts.uncoveredSweepMs;
        if (now - w.checkedAt > due) stale.push(w);
      } else if (!w.poll) {
        unfollowed.push(w);
      } else if (!w.pollLive && now - w.checkedAt > this.opts.uncoveredSweepMs) {
        // Its long-poll is failing (backing off): keep reading it meanwhile.
        stale.push(w);
      }
    }
    // Requests with the most waiters get the history long-polls first.
    unfollowed.sort((a, b) => b.subscribers.size - a.subscribers.size);
    for (const w of unfollowed) {
      if (this.polls < this.opts.maxHistoryPolls) this.startPoll(w);
      else if (now - w.checkedAt > this.opts.uncoveredSweepMs) stale.push(w);
    }
    stale.sort((a, b) => a.checkedAt - b.checkedAt);
    for (const w of stale) {
      if (this.sweepBudget < 1) break;
      if (w.refreshing) continue;
      this.sweepBudget -= 1;
      this.refresh(w, 'sweep');
    }
  }

  private startPoll(w: Watch): void {
    const abort = new AbortController();
    w.poll = abort;
    this.polls += 1;
    void this.follow(w, abort.signal).finally(() => {
      this.polls -= 1;
      if (w.poll === abort) {
        w.poll = null;
        w.pollLive = false;
      }
    });
  }

  private async follow(w: Watch, signal: AbortSignal): Promise<void> {
    let pageToken: Uint8Array | null = null;
    let failures = 0;
    while (!signal.aborted && !w.closed) {
      try {
        const startedAt = Date.now();
        const batch = await this.source.follow(w.requestId, pageToken, signal);
        failures = 0;
        this.markUp();
        if (batch.reading && 'view' in batch.reading) this.offer(w, batch.reading.view);
        else if (batch.reading || (batch.closed && !w.latest)) this.refresh(w, 'catchUp');
        if (!w.pollLive) {
          w.pollLive = true;
          w.checkedAt = Math.max(w.checkedAt, startedAt);
        }
        if (batch.closed) return;
        pageToken = batch.nextPageToken;
      } catch {
        if (signal.aborted) return;
        w.pollLive = false;
        // Temporal briefly unreachable: back off instead of spinning; the health check tells waiters if it is down.
        failures += 1;
        await sleep(Math.min(POLL_BACKOFF_MAX_MS, 100 * 2 ** failures));
      }
    }
  }

  private probeSoon(): void {
    if (this.probing || Date.now() - this.lastProbe < this.opts.healthProbeMs) return;
    this.probing = true;
    this.lastProbe = Date.now();
    this.source.checkHealth(HEALTH_DEADLINE_MS).then(
      () => {
        this.probing = false;
        this.slowChecks = 0;
        this.markUp();
      },
      (err: unknown) => {
        this.probing = false;
        const refused = (err as { code?: number }).code === GRPC_UNAVAILABLE;
        this.slowChecks = refused ? SLOW_CHECKS_TO_DOWN : this.slowChecks + 1;
        if (this.slowChecks >= SLOW_CHECKS_TO_DOWN) this.markDown(err);
      },
    );
  }

  private markUp(): void {
    if (!this.down) return;
    this.down = false;
    this.log('Temporal reachable again');
  }

  /** Every waiter is told at once; they come back with a new request once Temporal answers again. */
  private markDown(err: unknown): void {
    if (!this.down) this.log(`Temporal unreachable (${(err as Error).message}): answering waiters 503`);
    this.down = true;
    const failure = new TemporalUnavailableError();
    for (const w of [...this.watches.values()]) {
      this.dropWatch(w);
      for (const sub of [...w.subscribers]) sub.error(failure);
    }
  }

  // ----------------------------------------------------------------------------------------------------------
  // Reads: one in flight per request, a bounded number in all

  private read(requestId: string, lane: Lane, memoOnly = false): Promise<ReadResult> {
    const pending = this.inflight.get(requestId);
    // A read that waits for the task in flight serves a memo-only caller too; not the other way round.
    if (pending && (memoOnly || !pending.memoOnly)) return pending.run;
    this.counts[lane] += 1;
    const epoch = this.feedUp ? this.epoch : null;
    const high = HIGH.has(lane);
    const limit = <T>(call: () => Promise<T>) => this.limited(high, call);
    const run = (async () => {
      const startedAt = Date.now();
      try {
        const view = await this.source.read(requestId, limit, { memoOnly });
        this.markUp();
        const result: ReadResult = { view, startedAt, epoch: epoch === this.epoch ? epoch : null };
        this.remember(view);
        this.lastReads.delete(requestId);
        this.lastReads.set(requestId, result);
        if (this.lastReads.size > LAST_READS_MAX) this.lastReads.delete(this.lastReads.keys().next().value!);
        return result;
      } catch (err) {
        this.counts.failed += 1;
        throw err;
      }
    })().finally(() => {
      if (this.inflight.get(requestId)?.run === run) this.inflight.delete(requestId);
    });
    this.inflight.set(requestId, { run, memoOnly });
    return run;
  }

  /**
   * At most `maxReads` reads in flight, waiters' reads first; background ones (resyncs, sweeps) take at most half,
   * so a waiter's answer never queues behind a sweep.
   */
  private async limited<T>(high: boolean, fn: () => Promise<T>): Promise<T> {
    const lowMax = Math.max(1, Math.floor(this.opts.maxReads / 2));
    if (this.reading < this.opts.maxReads && (high || this.lowReading < lowMax)) {
      this.reading += 1;
      if (!high) this.lowReading += 1;
    } else {
      await new Promise<void>((r) => (high ? this.highQueue : this.lowQueue).push(r));
    }
    try {
      return await fn();
    } finally {
      this.reading -= 1;
      if (!high) this.lowReading -= 1;
      this.dispatch(lowMax);
    }
  }

  /** Hands free slots to queued reads (the slot is counted here, before the woken read runs). */
  private dispatch(lowMax: number): void {
    while (this.reading < this.opts.maxReads) {
      const high = this.highQueue.shift();
      if (high) {
        this.reading += 1;
        high();
        continue;
      }
      if (this.lowReading >= lowMax) return;
      const low = this.lowQueue.shift();
      if (!low) return;
      this.reading += 1;
      this.lowReading += 1;
      low();
    }
  }

  private remember(view: RequestView): void {
    if (!isTerminal(view.status)) return;
    if (this.terminal.size >= TERMINAL_CACHE_SIZE) {
      const oldest = this.terminal.keys().next().value;
      if (oldest !== undefined) this.terminal.delete(oldest);
    }
    this.terminal.set(view.requestId, view);
  }
}

/** `next` is `prev` (same version) once its first Slack post settled. */
function settledSince(prev: RequestView, next: RequestView): boolean {
  return !postSettled(prev) && postSettled(next);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
