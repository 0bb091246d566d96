/**
 * The watcher's logic against a fake of Temporal: which reads it makes, when waiters are told, what a lost notice,
 * a feed outage, an unpersisted notice or a dead server do to them. The real thing runs in
 * test/integration/waiters.test.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalChangeFeed, type ChangeFeed, type ChangeListener, type StateChange } from '../../gateway/events.js';
import { NotFoundError } from '../../gateway/types.js';
import type { FollowBatch, Limit, WatchSource } from '../../gateway/watch-source.js';
import { StateWatcher, TemporalUnavailableError, type WatcherOptions } from '../../gateway/watcher.js';
import { initialState } from '../../domain/request-state.js';
import type { RequestView } from '../../workflows/messages.js';
import { makePlan, makeRequest } from '../fixtures/plans.js';
import { eventually } from '../helpers/eventually.js';

function view(status: RequestView['status'], version: number, requestId = 'req_1'): RequestView {
  const base = initialState({
    requestId,
    request: makeRequest(),
    plan: makePlan(),
    createdAt: '2026-11-27T00:00:00.000Z',
    expiresAt: '2026-11-27T01:00:00.000Z',
  });
  return { ...base, status, version, slack: null };
}

/** Temporal as the watcher sees it: persisted views, history long-polls that answer on commit, a health check. */
class FakeTemporal implements WatchSource {
  readonly persisted = new Map<string, RequestView>();
  readonly reads: string[] = [];
  readonly follows = new Set<string>();
  inFlight = 0;
  maxInFlight = 0;
  readDelayMs = 0;
  health: 'ok' | 'refused' | 'slow' = 'ok';
  private readonly waiting = new Map<string, Array<(b: FollowBatch) => void>>();

  commit(v: RequestView): void {
    this.persisted.set(v.requestId, v);
    const waiters = this.waiting.get(v.requestId) ?? [];
    this.waiting.delete(v.requestId);
    for (const w of waiters) w({ reading: { view: v }, closed: false, nextPageToken: new Uint8Array([1]) });
  }

  /** Reads asked for the persisted state only (no query while a task is pending). */
  memoOnlyReads = 0;

  read(requestId: string, limit: Limit, opts: { memoOnly?: boolean } = {}): Promise<RequestView> {
    if (opts.memoOnly) this.memoOnlyReads += 1;
    return limit(() => this.readNow(requestId));
  }

  private async readNow(requestId: string): Promise<RequestView> {
    this.reads.push(requestId);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.readDelayMs) await sleep(this.readDelayMs);
      if (this.health === 'refused') throw Object.assign(new Error('UNAVAILABLE'), { code: 14 });
      const v = this.persisted.get(requestId);
      if (!v) throw new NotFoundError(requestId);
      return v;
    } finally {
      this.inFlight -= 1;
    }
  }

  follow(requestId: string, pageToken: Uint8Array | null, signal: AbortSignal): Promise<FollowBatch> {
    const v = this.persisted.get(requestId);
    if (pageToken === null)
      return Promise.resolve({ reading: v ? { view: v } : null, closed: false, nextPageToken: new Uint8Array([1]) });
    this.follows.add(requestId);
    return new Promise((resolve, reject) => {
      const list = this.waiting.get(requestId) ?? [];
      list.push(resolve);
      this.waiting.set(requestId, list);
      signal.addEventListener('abort', () => {
        this.follows.delete(requestId);
        reject(new Error('aborted'));
      });
    });
  }

  async checkHealth(): Promise<void> {
    if (this.health === 'refused') throw Object.assign(new Error('UNAVAILABLE: connection refused'), { code: 14 });
    if (this.health === 'slow') throw Object.assign(new Error('DEADLINE_EXCEEDED'), { code: 4 });
  }

  readsOf(requestId: string): number {
    return this.reads.filter((r) => r === requestId).length;
  }
}

/** A feed the test drives by hand: up or down, notices delivered or lost. */
class ManualFeed implements ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();
  connected = true;
  publish(change: StateChange): void {
    if (!this.connected) return;
    for (const l of this.listeners) l.onChange(change);
  }
  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    listener.onStatus(this.connected);
    return () => this.listeners.delete(listener);
  }
  setConnected(up: boolean): void {
    this.connected = up;
    for (const l of this.listeners) l.onStatus(up);
  }
  async close(): Promise<void> {}
}

const fast: WatcherOptions = {
  tickMs: 20,
  healthProbeMs: 20,
  uncoveredSweepMs: 100,
  sweepMs: 60_000,
  catchUpMs: 1_000,
  recheckMs: 500,
};
const watchers: StateWatcher[] = [];
function watcher(source: WatchSource, opts: WatcherOptions = {}): StateWatcher {
  const w = new StateWatcher(source, { ...fast, ...opts });
  watchers.push(w);
  return w;
}
afterEach(() => {
  for (const w of watchers.splice(0)) w.close();
});

/** The untouched source: a decided request is answered from what this process already knows. */
const untouchable: WatchSource = {
  read: () => Promise.reject(new Error('read')),
  follow: () => Promise.reject(new Error('follow')),
  checkHealth: () => Promise.resolve(),
};

describe("a waiter's first read", () => {
  test('is of the persisted state (no query) for a waiter; a plain read may wait for the task in flight', async () => {
    const t = new FakeTemporal();
    const w = watcher(t);
    t.commit(view('ready_for_approval', 1));
    expect((await w.current('req_1', { persisted: true })).version).toBe(1);
    expect(t.memoOnlyReads).toBe(1);
    expect((await w.current('req_1')).version).toBe(1);
    expect(t.memoOnlyReads).toBe(1);
    expect(t.readsOf('req_1')).toBe(2);
  });

  test('a plain read does not take the answer of a persisted-only read in flight; the other way round it does', async () => {
    const t = new FakeTemporal();
    t.readDelayMs = 50;
    const w = watcher(t);
    t.commit(view('ready_for_approval', 1));
    await Promise.all([w.current('req_1', { persisted: true }), w.current('req_1')]);
    expect(t.readsOf('req_1')).toBe(2);
    await Promise.all([w.current('req_1'), w.current('req_1', { persisted: true })]);
    expect(t.readsOf('req_1')).toBe(3);
    expect(t.memoOnlyReads).toBe(1);
  });
});

describe('the first Slack post (it changes no version)', () => {
  const posted = (v: RequestView): RequestView => ({
    ...v,
    notification: { slack: 'posted', permalink: 'https://acme.slack.com/archives/C1/p1' },
  });

  test('reaches subscribers once, and a long-poll answers it at its bound; nothing else of the same version does', async () => {
    const t = new FakeTemporal();
    const w = watcher(t, { tickMs: 60_000 });
    t.commit(view('ready_for_approval', 1));
    const seen: RequestView[] = [];
    const stop = w.subscribe('req_1', (v) => seen.push(v));
    const bound = w.waitForChange('req_1', 1, 400);
    await eventually(() => (t.follows.has('req_1') ? true : undefined), { timeoutMs: 1000 });
    // Each commit answers the history long-poll in flight (the fake keeps no events between two rounds).
    for (const v of [
      view('ready_for_approval', 1),
      posted(view('ready_for_approval', 1)),
      posted(view('ready_for_approval', 1)),
    ]) {
      t.commit(v);
      await sleep(50);
    }
    expect(await bound).toMatchObject({ version: 1, notification: { slack: 'posted' } });
    expect(seen.map((v) => v.notification.slack)).toEqual(['pending', 'posted']);
    stop();
  });

  test('a bound with nothing new and the post still pending answers null', async () => {
    const t = new FakeTemporal();
    const w = watcher(t);
    t.commit(view('ready_for_approval', 1));
    await expect(w.waitForChange('req_1', 1, 100)).resolves.toBeNull();
  });
});

describe('decided requests', () => {
  test('a decision learnt before a waiter subscribes is handed to it at once, without reading Temporal', async () => {
    const w = watcher(untouchable);
    w.publish(view('approved', 3));
    expect(w.decided('req_1')).toBe(true);
    await expect(w.waitForChange('req_1', 1, 5_000)).resolves.toMatchObject({ status: 'approved', version: 3 });
    const seen: number[] = [];
    const stop = w.subscribe('req_1', (v) => seen.push(v.version));
    stop();
    expect(seen).toEqual([3]);
    expect(w.listenerCount('req_1')).toBe(0);
    await expect(w.current('req_1')).resolves.toMatchObject({ status: 'approved' });
  });

  test('an open request is not taken for decided', () => {
    const w = watcher(untouchable);
    w.publish(view('ready_for_approval', 2));
    expect(w.decided('req_1')).toBe(false);
  });
});

describe('the change feed', () => {
  test('a notice wakes every waiter of a request with one read, however many wait', async () => {
    const t = new FakeTemporal();
    const feed = new LocalChangeFeed();
    const w = watcher(t, { feed });
    t.commit(view('ready_for_approval', 1));
    const first = await w.current('req_1');
    const waiters = Array.from({ length: 500 }, () => w.waitForChange('req_1', first.version, 10_000));
    await eventually(() => (w.listenerCount('req_1') === 500 ? true : undefined), { timeoutMs: 2000 });
    const readsBefore = t.readsOf('req_1');
    t.commit(view('approved', 2));
    feed.publish({ requestId: 'req_1', version: 2 });
    const told = await Promise.all(waiters);
    expect(new Set(told.map((v) => v?.status))).toEqual(new Set(['approved']));
    expect(t.readsOf('req_1') - readsBefore).toBe(1);
    expect(t.follows.size).toBe(0);
    expect(w.stats()).toMatchObject({ historyPolls: 0, watches: 0 });
  });

  test('a notice sent before the server persisted the task: the state is read again until it shows that version', async () => {
    const t = new FakeTemporal();
    const feed = new LocalChangeFeed();
    const w = watcher(t, { feed });
    t.commit(view('ready_for_approval', 1));
    await w.current('req_1');
    const waiting = w.waitForChange('req_1', 1, 10_000);
    feed.publish({ requestId: 'req_1', version: 2 });
    await eventually(() => (t.readsOf('req_1') >= 3 ? true : undefined), { timeoutMs: 2000 });
    t.commit(view('approved', 2));
    await expect(waiting).resolves.toMatchObject({ status: 'approved', version: 2 });
    expect(w.stats().unconfirmedNotices).toBe(0);
  });

  test("a notice's catch-up reads the persisted state only (never a query), close together until it shows", async () => {
    const t = new FakeTemporal();
    const feed = new LocalChangeFeed();
    const w = watcher(t, { feed });
    t.commit(view('ready_for_approval', 1));
    await w.current('req_1');
    const told = w.waitForChange('req_1', 1, 5_000);
    feed.publish({ requestId: 'req_1', version: 2 });
    await eventually(() => (t.memoOnlyReads >= 3 ? true : undefined), { timeoutMs: 2000, what: 'three reads' });
    const before = t.memoOnlyReads;
    t.commit(view('approved', 2));
    await expect(told).resolves.toMatchObject({ version: 2 });
    // Told by the next of those reads (the history long-poll is not involved with the feed up).
    expect(t.memoOnlyReads).toBeGreaterThan(before);
    expect(t.follows.size).toBe(0);
  });

  test('a notice that is never persisted wakes nobody and is given up after the catch-up window', async () => {
    const t = new FakeTemporal();
    const feed = new LocalChangeFeed();
    const w = watcher(t, { feed });
    t.commit(view('ready_for_approval', 1));
    await w.current('req_1');
    const seen: number[] = [];
    const stop = w.subscribe('req_1', (v) => seen.push(v.version));
    feed.publish({ requestId: 'req_1', version: 2 });
    await eventually(() => (w.stats().unconfirmedNotices === 1 ? true : undefined), { timeoutMs: 5000 });
    stop();
    expect(seen).toEqual([1]);
  });

  test('a notice heard just before the waiter subscribed (its first read older than the commit) still wakes it', async () => {
    const t = new FakeTemporal();
    const feed = new LocalChangeFeed();
    const w = watcher(t, { feed });
    t.commit(view('ready_for_approval', 1));
    const first = await w.current('req_1');
    // The worker announced version 2 and the server persists it a moment later; the waiter read version 1 before.
    feed.publish({ requestId: 'req_1', version: 2 });
    t.commit(view('approved', 2));
    await expect(w.waitForChange('req_1', first.version, 5_000)).resolves.toMatchObject({ version: 2 });
  });

  test('a lost notice: the sweep tells the waiter, and the feed is not trusted for a while (history long-polls)', async () => {
    const t = new FakeTemporal();
    const feed = new ManualFeed();
    const w = watcher(t, { feed, sweepMs: 200 });
    t.commit(view('ready_for_approval', 1));
    await w.current('req_1');
    const waiting = w.waitForChange('req_1', 1, 10_000);
    t.commit(view('ready_for_approval', 2));
    await expect(waiting).resolves.toMatchObject({ version: 2 });
    expect(w.stats().reads.sweep).toBeGreaterThanOrEqual(1);
    const seen: number[] = [];
    const stop = w.subscribe('req_1', (v) => seen.push(v.version));
    await eventually(() => (w.stats().lostNotices === 1 ? true : undefined), { timeoutMs: 5000 });
    expect(w.stats()).toMatchObject({ feedConnected: true, feedTrusted: false });
    await eventually(() => (t.follows.has('req_1') ? true : undefined), { timeoutMs: 2000 });
    t.commit(view('approved', 3));
    await eventually(() => (seen.includes(3) ? true : undefined), { timeoutMs: 2000 });
    stop();
  });

  test('a change the feed announced in time is no lost notice', async () => {
    const t = new FakeTemporal();
    const feed = new ManualFeed();
    const w = watcher(t, { feed, sweepMs: 100 });
    t.commit(view('ready_for_approval', 1));
    await w.current('req_1');
    const waiting = w.waitForChange('req_1', 1, 10_000);
    t.commit(view('approved', 2));
    feed.publish({ requestId: 'req_1', version: 2 });
    await expect(waiting).resolves.toMatchObject({ version: 2 });
    await sleep(2500);
    expect(w.stats()).toMatchObject({ lostNotices: 0, feedTrusted: true });
  });

  test('while the feed covers a request, a new waiter is answered without a read', async () => {
    const t = new FakeTemporal();
    const w = watcher(t, { feed: new LocalChangeFeed() });
    t.commit(view('ready_for_approval', 1));
    const stop = w.subscribe('req_1', () => {});
    await eventually(() => (t.readsOf('req_1') === 1 ? true : undefined), { timeoutMs: 1000 });
    await sleep(50);
    for (let i = 0; i < 20; i++) await w.current('req_1');
    expect(t.readsOf('req_1')).toBe(1);
    stop();
  });
});

describe('a stuck request', () => {
  const stuck = { since: '2026-11-27T00:00:05.000Z', attempts: 3, cause: 'workflow task failed (X): boom' };

  test('is read again on every answer, even covered by the feed, and says so until it is no longer stuck', async () => {
    const t = new FakeTemporal();
    const w = watcher(t, { feed: new LocalChangeFeed() });
    t.commit(view('ready_for_approval', 1));
    const stop = w.subscribe('req_1', () => {});
    await eventually(() => (t.readsOf('req_1') === 1 ? true : undefined), { timeoutMs: 1000 });
    // Its task starts failing: nothing announces it and the version stays; an answer older than recheckMs reads again.
    t.persisted.set('req_1', { ...view('ready_for_approval', 1), stuck });
    await expect(w.current('req_1')).resolves.not.toHaveProperty('stuck');
    await sleep(600);
    const before = t.readsOf('req_1');
    await expect(w.current('req_1')).resolves.toMatchObject({ stuck });
    await expect(w.current('req_1')).resolves.toMatchObject({ stuck });
    expect(t.readsOf('req_1')).toBeGreaterThanOrEqual(before + 2);
    // Fixed, at the same version: the next answer no longer says stuck.
    t.persisted.set('req_1', view('ready_for_approval', 1));
    expect((await w.current('req_1')).stuck).toBeUndefined();
    stop();
  });
});

describe('without the feed, or while it is down', () => {
  test('history long-polls are bounded; requests beyond the bound are swept, and every waiter is told', async () => {
    const t = new FakeTemporal();
    const w = watcher(t, { maxHistoryPolls: 2 });
    const ids = ['req_a', 'req_b', 'req_c', 'req_d', 'req_e'];
    for (const id of ids) t.commit(view('ready_for_approval', 1, id));
    // req_a has the most waiters: it gets a long-poll first.
    const waiting = ids.flatMap((id, i) =>
      Array.from({ length: i === 0 ? 3 : 1 }, () => w.waitForChange(id, 1, 10_000).then((v) => ({ id, v }))),
    );
    await eventually(() => (t.follows.size === 2 ? true : undefined), { timeoutMs: 2000 });
    expect(t.follows.has('req_a')).toBe(true);
    expect(w.stats().historyPolls).toBe(2);
    for (const id of ids) t.commit(view('approved', 2, id));
    const told = await Promise.all(waiting);
    expect(told.every(({ v }) => v?.version === 2)).toBe(true);
  });

  test('a new waiter is followed by a history long-poll at once, not at the next tick', async () => {
    const t = new FakeTemporal();
    // No tick within the test: only the watch's own start can follow it.
    const w = watcher(t, { tickMs: 60_000, uncoveredSweepMs: 60_000 });
    t.commit(view('ready_for_approval', 1));
    const waiting = w.waitForChange('req_1', 1, 10_000);
    await eventually(() => (t.follows.has('req_1') ? true : undefined), { timeoutMs: 1000 });
    const started = Date.now();
    t.commit(view('approved', 2));
    expect((await waiting)?.version).toBe(2);
    expect(Date.now() - started).toBeLessThan(500);
    expect(w.stats().historyPolls).toBe(1);
  });

  test('the feed drops: history long-polls take over; it comes back: every watch is read again, polls end', async () => {
    const t = new FakeTemporal();
    const feed = new ManualFeed();
    const w = watcher(t, { feed });
    t.commit(view('ready_for_approval', 1));
    await w.current('req_1');
    const seen: number[] = [];
    const stop = w.subscribe('req_1', (v) => seen.push(v.version));
    feed.setConnected(false);
    await eventually(() => (t.follows.has('req_1') ? true : undefined), { timeoutMs: 2000 });
    t.commit(view('ready_for_approval', 2));
    await eventually(() => (seen.includes(2) ? true : undefined), { timeoutMs: 2000 });
    // A change made while the feed was away carries no notice: the reconnection's read finds it.
    t.persisted.set('req_1', view('approved', 3));
    feed.setConnected(true);
    await eventually(() => (seen.includes(3) ? true : undefined), { timeoutMs: 2000 });
    await eventually(() => (t.follows.size === 0 ? true : undefined), { timeoutMs: 2000 });
    stop();
  });
});

describe('the wait bound: never answered with stale state', () => {
  test('covered by the feed: the bound passes without a read', async () => {
    const t = new FakeTemporal();
    const w = watcher(t, { feed: new LocalChangeFeed() });
    t.commit(view('ready_for_approval', 1));
    await w.current('req_1');
    const reads = t.reads.length;
    await expect(w.waitForChange('req_1', 1, 100)).resolves.toBeNull();
    expect(t.reads.length).toBe(reads);
  });

  test('not covered (a change nobody announced): the bound reads again and answers the change', async () => {
    const t = new FakeTemporal();
    const feed = new ManualFeed();
    const w = watcher(t, { feed, maxHistoryPolls: 0, uncoveredSweepMs: 60_000 });
    t.commit(view('ready_for_approval', 1));
    await w.current('req_1');
    feed.setConnected(false);
    t.persisted.set('req_1', view('approved', 2));
    await expect(w.waitForChange('req_1', 1, 100)).resolves.toMatchObject({ status: 'approved', version: 2 });
  });
});

describe('Temporal unreachable', () => {
  test('open waiters are answered at once with TemporalUnavailableError; streams hear it', async () => {
    const t = new FakeTemporal();
    const w = watcher(t, { feed: new LocalChangeFeed() });
    t.commit(view('ready_for_approval', 1));
    await w.current('req_1');
    const waiting = w.waitForChange('req_1', 1, 30_000);
    const errors: Error[] = [];
    w.subscribe(
      'req_1',
      () => {},
      (err) => errors.push(err),
    );
    t.health = 'refused';
    await expect(waiting).rejects.toBeInstanceOf(TemporalUnavailableError);
    expect(errors).toHaveLength(1);
    expect(w.listenerCount('req_1')).toBe(0);
    t.health = 'ok';
    await expect(w.current('req_1')).resolves.toMatchObject({ version: 1 });
    expect(w.stats().temporalDown).toBe(false);
  });

  test('a slow health check is not an outage until it keeps failing', async () => {
    const t = new FakeTemporal();
    const w = watcher(t, { feed: new LocalChangeFeed(), healthProbeMs: 200 });
    t.commit(view('ready_for_approval', 1));
    await w.current('req_1');
    const waiting = w.waitForChange('req_1', 1, 30_000);
    t.health = 'slow';
    await sleep(300);
    t.health = 'ok';
    await sleep(500);
    expect(w.stats().temporalDown).toBe(false);
    t.health = 'slow';
    await expect(waiting).rejects.toBeInstanceOf(TemporalUnavailableError);
  });

  test('the supervisor reports the outage: waiters are told without waiting for a health check', async () => {
    const t = new FakeTemporal();
    const w = watcher(t, { feed: new LocalChangeFeed(), healthProbeMs: 60_000 });
    t.commit(view('ready_for_approval', 1));
    await w.current('req_1');
    const waiting = w.waitForChange('req_1', 1, 30_000);
    w.reportOutage('dev server exited');
    await expect(waiting).rejects.toBeInstanceOf(TemporalUnavailableError);
  });
});

test('reads are bounded: many requests read at once wait their turn, none is refused', async () => {
  const t = new FakeTemporal();
  t.readDelayMs = 20;
  const w = watcher(t, { maxReads: 4 });
  const ids = Array.from({ length: 40 }, (_, i) => `req_${i}`);
  for (const id of ids) t.commit(view('ready_for_approval', 1, id));
  const views = await Promise.all(ids.map((id) => w.current(id)));
  expect(views.map((v) => v.requestId)).toEqual(ids);
  expect(t.maxInFlight).toBe(4);
});
