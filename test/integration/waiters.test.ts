/**
 * Waiters at scale (issue 15 item 4), for correctness on the real dev server: waiters are woken by the change feed
 * the worker publishes (in process, or Redis pub/sub between API replicas), with no history long-poll per request;
 * while the feed is down, history long-polls (bounded) and sweeps take over; a long-poll is never answered with
 * stale state. The figures at scale come from the benchmark (`npm run bench:waiters`, docs/performance.md).
 */
import { randomUUID } from 'node:crypto';
import { RedisChangeFeed } from '../../gateway/events-redis.js';
import type { ApiServer } from '../../service/api-server.js';
import { approveSignal } from '../../workflows/messages.js';
import { eventually } from '../helpers/eventually.js';
import { PassThrough } from 'node:stream';
import { createAuditLog } from '../../observability/audit.js';
import { startWorker } from '../../worker/run.js';
import { startApi } from './fixtures.js';
import { ADMIN_TOKEN, SIGNING_SECRET, startHarness, workflowBundle, type Created, type Harness } from './harness.js';
import { apiClient } from './procs.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { LossyFeed, longPoll, openSse, type SseStream } from './waiters-support.js';

/** No history long-polls and no sweeps worth the name: a waiter told within the test was told by the feed. */
const FEED_ONLY = { WATCH_HISTORY_POLLS: '0', WATCH_SWEEP_SEC: '3600' };

async function parked(api: ApiServer, requestId: string, count: number): Promise<void> {
  await eventually(() => (api.gateway.listenerCount(requestId) >= count ? true : undefined), {
    timeoutMs: 10_000,
    intervalMs: 20,
    what: `${count} waiter(s) parked on ${requestId}`,
  });
}

/** A worker on the harness's task queue once its own stopped (audit of its own), announcing on `feed` if given. */
async function successorWorker(h: Harness, feed?: LossyFeed) {
  return startWorker({
    config: h.config,
    metrics: h.metrics,
    audit: createAuditLog({ stream: new PassThrough() }),
    workflowBundle: await workflowBundle(),
    log: () => {},
    ...(feed ? { onStateChange: (c: { requestId: string; version: number }) => feed.publish(c) } : {}),
  });
}

function lastState(stream: SseStream) {
  return stream.events.filter((e) => e.event === 'state').at(-1)?.data;
}

describe('one process (npm start): the in-process change feed', () => {
  const feed = new LossyFeed();
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ changes: feed, env: FEED_ONLY });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await feed.close();
  });

  test('waiters on many requests are woken by the event stream, with no history long-poll', async () => {
    const requests: Created[] = [];
    for (let i = 0; i < 12; i++) requests.push(await h.create('simple'));
    const polls = requests.map((r) => Array.from({ length: 20 }, () => longPoll(h.url, r.token, 30)));
    const streams = await Promise.all(requests.map((r) => openSse(h.url, r.token)));
    for (const r of requests) await parked(h.api, r.requestId, 21);
    const before = h.api.gateway.watcherStats();
    expect(before).toMatchObject({ feedConnected: true, historyPolls: 0, watches: 12, listeners: 252 });

    for (const r of requests) expect((await h.click('approve', r.requestId, 'U_ALICE')).status).toBe(200);

    for (const answers of await Promise.all(polls.map((p) => Promise.all(p)))) {
      for (const a of answers) expect(a).toMatchObject({ status: 200, body: { status: 'approved', terminal: true } });
    }
    await Promise.all(streams.map((s) => s.ended));
    for (const s of streams) expect(lastState(s)).toMatchObject({ status: 'approved', terminal: true });
    const after = h.api.gateway.watcherStats();
    expect(after).toMatchObject({ historyPolls: 0, watches: 0, listeners: 0 });
    expect(after.reads.sweep).toBe(0);
    expect(after.notices - before.notices).toBeGreaterThanOrEqual(requests.length);
    // Reads follow the request, not its waiters: one in flight per request, re-read (the memo, every 100 ms at
    // most) until it shows the click's version; 21 waiters each would be 252 reads.
    expect(after.reads.catchUp - before.reads.catchUp).toBeLessThan(before.listeners / 2);
  });
});

test("with the feed, a long-poll started before the first Slack post answers the post's outcome at its bound (a notice of the same version)", async () => {
  const feed = new LossyFeed();
  const h = await startHarness({ changes: feed, env: FEED_ONLY });
  try {
    await h.worker.shutdown();
    const created = await h.create('simple');
    const bounded = longPoll(h.url, created.token, 4);
    await parked(h.api, created.requestId, 1);
    const successor = await successorWorker(h, feed);
    try {
      expect(await bounded).toMatchObject({
        status: 200,
        body: { status: 'ready_for_approval', notification: { slack: 'posted' } },
      });
      expect(h.api.gateway.watcherStats()).toMatchObject({ historyPolls: 0 });
    } finally {
      await successor.shutdown();
    }
  } finally {
    await h.close();
    await feed.close();
  }
});

describe('a lost notice (a worker that publishes elsewhere)', () => {
  const feed = new LossyFeed();
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ changes: feed, env: { WATCH_HISTORY_POLLS: '10', WATCH_SWEEP_SEC: '1' } });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await feed.close();
  });

  test('the sweep tells the waiter, and the feed is not trusted for a while: history long-polls take over', async () => {
    const lost = await h.create('simple');
    const waiting = longPoll(h.url, lost.token, 30);
    await parked(h.api, lost.requestId, 1);
    feed.losing = true;
    try {
      await h.click('approve', lost.requestId, 'U_BOB');
      expect(await waiting).toMatchObject({ status: 200, body: { status: 'approved', decidedBy: 'U_BOB' } });
    } finally {
      feed.losing = false;
    }
    await eventually(() => (h.api.gateway.watcherStats().lostNotices > 0 ? true : undefined), { timeoutMs: 10_000 });
    expect(h.api.gateway.watcherStats()).toMatchObject({ feedConnected: true, feedTrusted: false });
    const next = await h.create('simple');
    const told = longPoll(h.url, next.token, 30);
    await parked(h.api, next.requestId, 1);
    await eventually(() => (h.api.gateway.watcherStats().historyPolls > 0 ? true : undefined), { timeoutMs: 5000 });
    await h.click('approve', next.requestId, 'U_ALICE');
    expect(await told).toMatchObject({ status: 200, body: { status: 'approved' } });
  });
});

describe('API replicas: Redis pub/sub', () => {
  let redis: RedisServer;
  let feed: RedisChangeFeed;
  let h: Harness;
  let other: ApiServer;

  beforeAll(async () => {
    redis = await startRedis();
    const taskQueue = `it-waiters-${randomUUID()}`;
    // The harness's worker publishes on Redis; its API (replica A) and `other` (replica B) hear it there.
    feed = new RedisChangeFeed({ url: redis.url, namespace: 'default', taskQueue, publisher: true });
    h = await startHarness({
      env: { REDIS_URL: redis.url, TEMPORAL_TASK_QUEUE: taskQueue, ...FEED_ONLY },
      changes: feed,
    });
    other = await startApi(h.config);
    for (const api of [h.api, other]) {
      await eventually(() => api.gateway.watcherStats().feedTrusted || undefined, {
        timeoutMs: 10_000,
        what: 'the replica to hear the feed',
      });
    }
  }, 90_000);

  afterAll(async () => {
    await other?.close();
    await h?.close();
    await feed?.close();
    await redis?.stop();
  });

  test('created and waited on one replica, decided on the other: the waiter hears it through Redis', async () => {
    const clicked = await h.create('simple');
    const poll = longPoll(h.url, clicked.token, 30);
    const stream = await openSse(h.url, clicked.token);
    await parked(h.api, clicked.requestId, 2);
    const onOther = apiClient(other.url, SIGNING_SECRET);
    expect((await onOther.click('approve', clicked.requestId, 'U_ALICE')).body).toMatchObject({ ok: true });
    expect(await poll).toMatchObject({ status: 200, body: { status: 'approved', decidedBy: 'U_ALICE' } });
    await stream.ended;
    expect(lastState(stream)).toMatchObject({ status: 'approved', terminal: true });

    // The other way round, with the decision as an Update (its result wakes only the deciding replica's waiters).
    const denied = await h.create('simple');
    const onB = longPoll(other.url, denied.token, 30);
    await parked(other, denied.requestId, 1);
    const decision = await h.post(
      `/api/admin/requests/${denied.requestId}/decision`,
      { decision: 'deny', actor: 'admin', reason: 'not now' },
      { 'x-admin-token': ADMIN_TOKEN },
    );
    expect(decision.status).toBe(200);
    expect(await onB).toMatchObject({ status: 200, body: { status: 'denied' } });
    for (const api of [h.api, other]) expect(api.gateway.watcherStats()).toMatchObject({ historyPolls: 0 });
  });

  test('Redis down: history long-polls (bounded) and sweeps wake the waiters; back up: the feed again', async () => {
    const bounded = await startApi({ ...h.config, WATCH_HISTORY_POLLS: 1 });
    try {
      await eventually(() => bounded.gateway.watcherStats().feedTrusted || undefined, { timeoutMs: 10_000 });
      const followed = await h.create('simple');
      const swept = await h.create('simple');
      await redis.stop();
      await eventually(() => (bounded.gateway.watcherStats().feedTrusted ? undefined : true), { timeoutMs: 10_000 });

      const many = [longPoll(bounded.url, followed.token, 30), longPoll(bounded.url, followed.token, 30)];
      const one = longPoll(bounded.url, swept.token, 30);
      await parked(bounded, followed.requestId, 2);
      await parked(bounded, swept.requestId, 1);
      // The request with more waiters gets the one history long-poll; the other is swept.
      await eventually(() => (bounded.gateway.watcherStats().historyPolls === 1 ? true : undefined), {
        timeoutMs: 5000,
      });
      // The swept request first (the long-poll slot stays taken meanwhile), then the followed one.
      await h.client.workflow.getHandle(swept.requestId).signal(approveSignal, { userId: 'U_ALICE' });
      expect(await one).toMatchObject({ status: 200, body: { status: 'approved' } });
      expect(bounded.gateway.watcherStats()).toMatchObject({ historyPolls: 1, listeners: 2 });
      expect(bounded.gateway.watcherStats().reads.sweep).toBeGreaterThan(0);
      await h.client.workflow.getHandle(followed.requestId).signal(approveSignal, { userId: 'U_ALICE' });
      for (const a of await Promise.all(many)) expect(a).toMatchObject({ status: 200, body: { status: 'approved' } });

      redis = await startRedis(redis.port);
      await eventually(() => bounded.gateway.watcherStats().feedTrusted || undefined, { timeoutMs: 15_000 });
      const after = await h.create('simple');
      const waiting = longPoll(bounded.url, after.token, 30);
      await parked(bounded, after.requestId, 1);
      await h.client.workflow.getHandle(after.requestId).signal(approveSignal, { userId: 'U_BOB' });
      expect(await waiting).toMatchObject({ status: 200, body: { status: 'approved' } });
      expect(bounded.gateway.watcherStats().historyPolls).toBe(0);
    } finally {
      await bounded.close();
    }
  }, 90_000);
});

describe('a workflow task in flight (no worker to run it yet)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  test("a waiter starts from the persisted state, without a query waiting on the task; it hears the task's change", async () => {
    await h.worker.shutdown();
    const created = await h.create('simple');
    // A query would wait for a worker up to its 5 s deadline; the persisted state is there at once.
    const started = Date.now();
    const first = await longPoll(h.url, created.token, 1);
    expect(first).toMatchObject({ status: 200, body: { status: 'ready_for_approval', terminal: false } });
    expect(first.body.notification).toEqual({ slack: 'pending' });
    expect(first.at - started).toBeLessThan(3000);
    const bounded = longPoll(h.url, created.token, 4);
    await parked(h.api, created.requestId, 1);
    // A worker runs the request's first task: the message is posted, which changes no version; the long-poll answers
    // it at its bound, and a stream opened now starts with it.
    const successor = await successorWorker(h);
    const stream = await openSse(h.url, created.token);
    const states = () => stream.events.filter((e) => e.event === 'state').map((e) => e.data);
    try {
      const bound = await bounded;
      expect(bound).toMatchObject({
        status: 200,
        body: { status: 'ready_for_approval', notification: { slack: 'posted' } },
      });
      await eventually(() => (states().length > 0 ? true : undefined), { timeoutMs: 5000, what: 'the first event' });
      expect(states()[0]).toMatchObject({ status: 'ready_for_approval', notification: { slack: 'posted' } });
      expect(states()[0].notification.permalink).toMatch(/^https:\/\//);
      const waiting = longPoll(h.url, created.token, 30);
      await parked(h.api, created.requestId, 2);
      expect((await h.click('approve', created.requestId, 'U_ALICE')).status).toBe(200);
      expect(await waiting).toMatchObject({ status: 200, body: { status: 'approved', decidedBy: 'U_ALICE' } });
      await stream.ended;
      expect(states()).toHaveLength(2);
      expect(lastState(stream)).toMatchObject({ status: 'approved', terminal: true });
    } finally {
      stream.close();
      await successor.shutdown();
    }
  });

  test('a stream whose request cannot post holds its first event 2 s at most', async () => {
    const created = await h.create('simple');
    const started = Date.now();
    const stream = await openSse(h.url, created.token);
    await eventually(() => (stream.events.some((e) => e.event === 'state') ? true : undefined), { timeoutMs: 5000 });
    expect(Date.now() - started).toBeLessThan(4000);
    expect(stream.events.find((e) => e.event === 'state')?.data).toMatchObject({ notification: { slack: 'pending' } });
    stream.close();
  });
});
