/**
 * Open-loop load: work arrives at a rate (Poisson arrivals), whether or not earlier work finished, as approvals
 * arrive in real life. Closed-loop concurrency saturates a small machine by construction (each lane sends its next
 * request as soon as the last one returns), so its latency measures the queue it builds; here latency stays flat
 * until the system cannot keep up, and the rate where that happens is the figure.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Created, GuardClient } from './client.js';
import type { Floor } from './floor.js';
import { BENCH_ACTIONS } from './policy.js';
import { summarize, type Summary } from './stats.js';

export interface Arrivals {
  /** Arrivals offered (the Poisson process's count over the window). */
  offered: number;
  done: number;
  failed: number;
  /** Arrivals not started because `maxInFlight` were still running (the system had stopped keeping up). */
  shed: number;
  errors: string[];
  /** Completions per second over the arrival window plus the drain. */
  perSec: number;
  wallMs: number;
  maxInFlight: number;
}

/** Exponential inter-arrival times with mean 1/rate: a Poisson process of `rate` per second. */
export function nextGapMs(rate: number, random: () => number = Math.random): number {
  return (-Math.log(1 - random()) / rate) * 1000;
}

/**
 * Starts `task` at Poisson arrivals of `rate`/s for `durationMs`, each on its own (no lane waits for another), and
 * waits (at most `drainMs`) for those in flight. At `maxInFlight` running tasks an arrival is shed and counted.
 */
export async function arrive(
  rate: number,
  durationMs: number,
  task: (i: number) => Promise<void>,
  { maxInFlight = 2000, drainMs = 60_000 } = {},
): Promise<Arrivals> {
  const started = performance.now();
  const result: Arrivals = {
    offered: 0,
    done: 0,
    failed: 0,
    shed: 0,
    errors: [],
    perSec: 0,
    wallMs: 0,
    maxInFlight: 0,
  };
  const running = new Set<Promise<void>>();
  for (let at = nextGapMs(rate); at < durationMs; at += nextGapMs(rate)) {
    const wait = started + at - performance.now();
    if (wait > 0) await sleep(wait);
    const i = result.offered++;
    if (running.size >= maxInFlight) {
      result.shed++;
      continue;
    }
    const p: Promise<void> = task(i).then(
      () => void result.done++,
      (err: unknown) => {
        result.failed++;
        if (result.errors.length < 5) result.errors.push(err instanceof Error ? err.message : String(err));
      },
    );
    running.add(p);
    result.maxInFlight = Math.max(result.maxInFlight, running.size);
    void p.finally(() => running.delete(p));
  }
  const drained = new AbortController();
  await Promise.race([
    Promise.all(running),
    sleep(drainMs, undefined, { signal: drained.signal }).catch(() => undefined),
  ]).finally(() => drained.abort());
  result.wallMs = performance.now() - started;
  result.perSec = Math.round((result.done / (result.wallMs / 1000)) * 10) / 10;
  return result;
}

export interface FloorAtRate {
  rate: number;
  arrivals: Arrivals;
  /** start → Update → result, per arrival: the floor loop, unchanged from the closed-loop harness. */
  loop: Summary | null;
  start: Summary | null;
  update: Summary | null;
}

/** The floor at `rate`: each arrival starts the bare workflow, Updates it (which ends it) and reads the result. */
export async function floorAtRate(floor: Floor, rate: number, durationMs: number): Promise<FloorAtRate> {
  const loop: number[] = [];
  const start: number[] = [];
  const update: number[] = [];
  const arrivals = await arrive(rate, durationMs, async () => {
    const t = await floor.timedLoop(`floor-${randomUUID()}`);
    start.push(t.startMs);
    update.push(t.updateMs);
    loop.push(t.loopMs);
  });
  return { rate, arrivals, loop: summarize(loop), start: summarize(start), update: summarize(update) };
}

/**
 * A bare Signal at `rate` to floor workflows started beforehand (what a Slack click's answer costs at least): the
 * ids are used in turn, and the caller ends the workflows afterwards.
 */
export async function floorSignalsAtRate(
  floor: Floor,
  ids: string[],
  rate: number,
  durationMs: number,
): Promise<{ rate: number; arrivals: Arrivals; signal: Summary | null }> {
  const ms: number[] = [];
  const arrivals = await arrive(
    rate,
    durationMs,
    async (i) => void ms.push(await floor.timedSignal(ids[i % ids.length]!)),
  );
  return { rate, arrivals, signal: summarize(ms) };
}

export interface ServiceAtRate {
  rate: number;
  arrivals: Arrivals;
  /** create → the waiting agent has `approved`, per arrival. */
  loop: Summary | null;
  create: Summary | null;
  /** Signed click sent → Slack's 200. */
  ack: Summary | null;
  /** The workflow's decidedAt → the waiting agent has it, long-poll and SSE agents (alternate arrivals). */
  notifyLongPoll: Summary | null;
  notifySse: Summary | null;
  /** Timer requests created meanwhile (see `timerRate`), whose lateness the caller reads from the audit log. */
  timerRequests: Created[];
}

const WAIT_SEC = 30;

/**
 * The service at `rate`: each arrival is one approval (create, an agent waits by long-poll or SSE in turn, a signed
 * click approves, the agent is told). Beside them, requests that escalate and expire arrive at `timerRate`/s, so
 * the timers are measured under the same load.
 */
export async function serviceAtRate(
  client: GuardClient,
  rate: number,
  durationMs: number,
  timerRate: number,
): Promise<ServiceAtRate> {
  const s = {
    loop: [] as number[],
    create: [] as number[],
    ack: [] as number[],
    lp: [] as number[],
    sse: [] as number[],
  };
  const timerRequests: Created[] = [];
  const timers =
    timerRate > 0
      ? arrive(
          timerRate,
          durationMs,
          async (i) => void timerRequests.push((await client.create(BENCH_ACTIONS.timer, i)).created),
        )
      : null;
  const arrivals = await arrive(rate, durationMs, (i) => approveOnce(client, i, i % 2 === 0 ? 'longpoll' : 'sse', s));
  await timers;
  return {
    rate,
    arrivals,
    loop: summarize(s.loop),
    create: summarize(s.create),
    ack: summarize(s.ack),
    notifyLongPoll: summarize(s.lp),
    notifySse: summarize(s.sse),
    timerRequests,
  };
}

async function approveOnce(
  client: GuardClient,
  i: number,
  mode: 'longpoll' | 'sse',
  s: { loop: number[]; create: number[]; ack: number[]; lp: number[]; sse: number[] },
): Promise<void> {
  const t0 = performance.now();
  const { created, ms } = await client.create(BENCH_ACTIONS.simple, i);
  s.create.push(ms);
  const told = mode === 'longpoll' ? await viaLongPoll(client, created) : await viaSse(client, created);
  if (told.status !== 'approved') throw new Error(`approval ended ${told.status}`);
  s.ack.push(told.ackMs);
  if (told.decidedAt) (mode === 'longpoll' ? s.lp : s.sse).push(told.at - Date.parse(told.decidedAt));
  s.loop.push(performance.now() - t0);
}

interface Told {
  status: string;
  decidedAt: string | null;
  at: number;
  ackMs: number;
}

async function viaLongPoll(client: GuardClient, created: Created): Promise<Told> {
  const waiting = client.waitTerminal(created.token, WAIT_SEC, 3);
  const click = await client.click(created);
  const answer = await waiting;
  return { status: answer.status, decidedAt: answer.decidedAt, at: answer.at, ackMs: click.ms };
}

async function viaSse(client: GuardClient, created: Created): Promise<Told> {
  const stream = await client.openStream(created.token, WAIT_SEC * 1000);
  if (!stream) throw new Error('no SSE route');
  try {
    // The first event is the state at connect: from then on the stream is subscribed to changes.
    if (!(await stream.next())) throw new Error('SSE stream ended before its first event');
    const click = await client.click(created);
    for (let event = await stream.next(); event; event = await stream.next()) {
      if (event.terminal) return { status: event.status, decidedAt: event.decidedAt, at: event.at, ackMs: click.ms };
    }
    throw new Error('SSE stream ended before the decision');
  } finally {
    stream.close();
  }
}
