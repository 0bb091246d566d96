/**
 * The load phases against the service: creates, decisions by signed Slack clicks with an agent waiting (long-poll
 * or SSE), the whole approval loop, timers left to fire, and a backlog of open requests.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Created, GuardClient, WaitAnswer } from './client.js';
import { BENCH_ACTIONS, TIMER_ESCALATE_BEFORE_MS } from './policy.js';
import type { SlackTraffic } from './service.js';
import { perSecond, runPool, summarize, type PoolResult, type Summary } from './stats.js';

export interface Bounds {
  concurrency: number;
  /** No phase starts new work after this long. */
  phaseDeadlineMs: number;
}

export interface CreatePhase {
  latency: Summary | null;
  perSec: number;
  pool: PoolResult;
  created: Created[];
}

/** How long a long-poll waiter gets to be parked on the request before the click (it reads the state first). */
const LONGPOLL_ARM_MS = 100;
const WAIT_SEC = 30;
const STREAM_TIMEOUT_MS = 60_000;

export async function createPhase(
  client: GuardClient,
  action: string,
  count: number,
  bounds: Bounds,
  /** Creates per second at most (paced from the phase start); unpaced when absent. */
  ratePerSec?: number,
): Promise<CreatePhase> {
  const created: Created[] = [];
  const ms: number[] = [];
  const t0 = performance.now();
  const pool = await runPool(count, bounds.concurrency, bounds.phaseDeadlineMs, async (i) => {
    if (ratePerSec) await sleep(Math.max(0, t0 + (i * 1000) / ratePerSec - performance.now()));
    const r = await client.create(action, i);
    ms.push(r.ms);
    created.push(r.created);
  });
  return { latency: summarize(ms), perSec: perSecond(pool.done, pool.wallMs), pool, created };
}

export interface DecidePhase {
  available: boolean;
  /** Slack click → acknowledgement. */
  ack: Summary | null;
  /** The workflow's decidedAt → the waiting agent has the answer. */
  notify: Summary | null;
  /** Click sent → the waiting agent has the answer. */
  clickToNotify: Summary | null;
  pool: PoolResult | null;
  samples: { ack: number[]; notify: number[] };
}

/** Each request: an agent waits (long-poll or SSE), an approver clicks Approve, the agent hears the decision. */
export async function decidePhase(
  client: GuardClient,
  requests: Created[],
  mode: 'longpoll' | 'sse',
  bounds: Bounds,
): Promise<DecidePhase> {
  const ack: number[] = [];
  const notify: number[] = [];
  const clickToNotify: number[] = [];
  let available = true;
  const pool = await runPool(requests.length, bounds.concurrency, bounds.phaseDeadlineMs, async (i) => {
    if (!available) return;
    const req = requests[i]!;
    const decided = mode === 'longpoll' ? await decideLongPoll(client, req) : await decideSse(client, req);
    if (!decided) {
      available = false;
      return;
    }
    ack.push(decided.ackMs);
    if (decided.answer.decidedAt) notify.push(decided.answer.at - Date.parse(decided.answer.decidedAt));
    clickToNotify.push(decided.answer.at - decided.sentAt);
  });
  return {
    available,
    ack: summarize(ack),
    notify: summarize(notify),
    clickToNotify: summarize(clickToNotify),
    pool: available ? pool : null,
    samples: { ack, notify },
  };
}

interface Decided {
  ackMs: number;
  sentAt: number;
  answer: WaitAnswer;
}

async function decideLongPoll(client: GuardClient, req: Created): Promise<Decided> {
  const waiting = client.longPoll(req.token, WAIT_SEC);
  // The click must find the agent already waiting, as it would be in real use.
  await sleep(LONGPOLL_ARM_MS);
  const click = await client.click(req);
  const answer = await waiting;
  if (!answer.terminal) throw new Error(`long-poll answered ${answer.status}, not the decision`);
  return { ackMs: click.ms, sentAt: click.sentAt, answer };
}

async function decideSse(client: GuardClient, req: Created): Promise<Decided | null> {
  const stream = await client.openStream(req.token, STREAM_TIMEOUT_MS);
  if (!stream) return null;
  try {
    // The first event is the state at connect: from then on the stream is subscribed to changes.
    const first = await stream.next();
    if (!first) throw new Error('SSE stream ended before its first event');
    const click = await client.click(req);
    for (let event = await stream.next(); event; event = await stream.next()) {
      if (event.terminal) return { ackMs: click.ms, sentAt: click.sentAt, answer: event };
    }
    throw new Error('SSE stream ended before the decision');
  } finally {
    stream.close();
  }
}

export interface LoopPhase {
  /** Create → agent has the approval. */
  latency: Summary | null;
  approvalsPerSec: number;
  pool: PoolResult;
}

/** The whole approval per iteration: create, the agent long-polls, one click approves, the agent is told. */
export async function approvalLoopPhase(client: GuardClient, count: number, bounds: Bounds): Promise<LoopPhase> {
  const ms: number[] = [];
  const pool = await runPool(count, bounds.concurrency, bounds.phaseDeadlineMs, async (i) => {
    const t0 = performance.now();
    const { created } = await client.create(BENCH_ACTIONS.simple, i);
    const waiting = client.longPoll(created.token, WAIT_SEC);
    await client.click(created);
    const answer = await waiting;
    if (answer.status !== 'approved') {
      // The long-poll may have read the state before the click landed: ask once more.
      const again = await client.waitTerminal(created.token, WAIT_SEC, 2);
      if (again.status !== 'approved') throw new Error(`loop ended ${again.status}`);
    }
    ms.push(performance.now() - t0);
  });
  return { latency: summarize(ms), approvalsPerSec: perSecond(pool.done, pool.wallMs), pool };
}

export interface TimerPhase {
  count: number;
  /** Escalation fired − due (expiresAt − escalateBeforeSec); fired = the service's audit line for it. */
  escalationLateness: Summary | null;
  /** Expiry fired − expiresAt; fired = the service's audit line for it. */
  expiryLateness: Summary | null;
  pool: PoolResult;
}

/**
 * Requests left alone: each escalates 1 s before it expires, 3 s after creation; lateness is fired − due. "Fired" is
 * the wall-clock time the worker recorded the fact (its audit line): workflow time cannot say, since a timer's
 * activation carries the time the timer was due, not the time it ran. They are created at `ratePerSec`, so the
 * figure is the timers' own lateness, not the queue of a burst larger than the service's throughput.
 */
export async function timerPhase(
  client: GuardClient,
  count: number,
  bounds: Bounds,
  auditFile: string | null,
  ratePerSec: number,
): Promise<TimerPhase> {
  const created = await createPhase(client, BENCH_ACTIONS.timer, count, bounds, ratePerSec);
  const requests = created.created;
  const pool = await runPool(requests.length, requests.length, bounds.phaseDeadlineMs, async (i) => {
    const answer = await client.waitTerminal(requests[i]!.token, WAIT_SEC, 3);
    if (answer.status !== 'expired') throw new Error(`timer request ended ${answer.status}`);
  });
  const late = auditFile ? await timerLateness(auditFile, requests) : { escalation: [], expiry: [] };
  return {
    count: requests.length,
    escalationLateness: summarize(late.escalation),
    expiryLateness: summarize(late.expiry),
    pool,
  };
}

export async function timerLateness(
  auditFile: string,
  requests: Created[],
): Promise<{ escalation: number[]; expiry: number[] }> {
  const expires = new Map(requests.map((r) => [r.requestId, Date.parse(r.expiresAt)]));
  const escalation: number[] = [];
  const expiry: number[] = [];
  for (const line of (await readFile(auditFile, 'utf8')).split('\n')) {
    const escalated = line.includes('"request_escalated"');
    if (!escalated && !line.includes('"request_expired"')) continue;
    const e = JSON.parse(line) as { requestId?: string; time?: string };
    const expiresAt = e.requestId ? expires.get(e.requestId) : undefined;
    if (expiresAt === undefined || !e.time) continue;
    if (escalated) escalation.push(Date.parse(e.time) - (expiresAt - TIMER_ESCALATE_BEFORE_MS));
    else expiry.push(Date.parse(e.time) - expiresAt);
  }
  return { escalation, expiry };
}

/**
 * Waits until the service is idle: the fake Slack has had no call for `quietMs` (Slack posts and updates, then the
 * archive, trail each decision). Without a fake Slack (someone else's service) it just pauses.
 */
export async function settle(slack: SlackTraffic | null, quietMs: number, maxMs: number): Promise<void> {
  if (!slack) return void (await sleep(quietMs * 2));
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline) {
    if (Date.now() - slack.lastAt >= quietMs) return;
    await sleep(100);
  }
}

/** Waits (bounded) until the fake Slack has posted `count` messages, i.e. the backlog's workflows have all run. */
export async function awaitPosts(slack: SlackTraffic | null, count: number, maxMs: number): Promise<boolean> {
  if (!slack) return true;
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline) {
    if (slack.count('chat.postMessage') >= count) return true;
    await sleep(250);
  }
  return false;
}
