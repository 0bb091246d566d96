import { ApplicationFailure } from '@temporalio/activity';
import type { Gauge } from 'prom-client';
import type { SlackRef } from '../workflows/messages.js';

export type QueueOutcome = 'sent' | 'superseded';

interface Waiter {
  resolve: (outcome: QueueOutcome) => void;
  reject: (err: unknown) => void;
}

interface Entry {
  version: number;
  send: () => Promise<void>;
  waiters: Waiter[];
}

interface Lane {
  /** Waiting updates by message ts, in arrival order. */
  pending: Map<string, Entry>;
  running: boolean;
  pausedUntil: number;
}

const SENT_MEMORY = 10_000;

/**
 * The worker side of SLACK_UPDATE_QUEUE. chat.update calls wait here, one in flight per channel (Slack limits
 * calls per channel and method); a newer render of a message replaces one not sent yet, an older one is
 * never sent after a newer one; a 429 holds the whole channel back for its Retry-After instead of letting
 * every waiting update hit the limit too. `slack_update_queue_depth` is the number of updates waiting.
 */
export class SlackUpdateQueue {
  private readonly lanes = new Map<string, Lane>();
  private readonly lastSent = new Map<string, number>();
  private depth = 0;

  constructor(private readonly depthGauge: Gauge) {}

  submit(ref: SlackRef, version: number, send: () => Promise<void>): Promise<QueueOutcome> {
    const key = `${ref.channel}:${ref.ts}`;
    if ((this.lastSent.get(key) ?? 0) >= version) return Promise.resolve('superseded');
    const lane = this.lane(ref.channel);
    return new Promise<QueueOutcome>((resolve, reject) => {
      const waiter = { resolve, reject };
      const queued = lane.pending.get(ref.ts);
      if (queued && queued.version >= version) return resolve('superseded');
      if (queued) {
        for (const w of queued.waiters) w.resolve('superseded');
        lane.pending.set(ref.ts, { version, send, waiters: [waiter] });
      } else {
        lane.pending.set(ref.ts, { version, send, waiters: [waiter] });
        this.setDepth(this.depth + 1);
      }
      if (!lane.running) void this.drain(ref.channel, lane);
    });
  }

  private lane(channel: string): Lane {
    let lane = this.lanes.get(channel);
    if (!lane) {
      lane = { pending: new Map(), running: false, pausedUntil: 0 };
      this.lanes.set(channel, lane);
    }
    return lane;
  }

  /** Lanes are kept (one per channel the policy routes to) so a Retry-After pause outlives an empty queue. */
  private async drain(channel: string, lane: Lane): Promise<void> {
    lane.running = true;
    for (;;) {
      const wait = lane.pausedUntil - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const next = lane.pending.entries().next();
      if (next.done) break;
      const [ts, entry] = next.value;
      lane.pending.delete(ts);
      this.setDepth(this.depth - 1);
      await this.sendOne(`${channel}:${ts}`, lane, entry);
    }
    lane.running = false;
  }

  private async sendOne(key: string, lane: Lane, entry: Entry): Promise<void> {
    try {
      await entry.send();
      this.remember(key, entry.version);
      for (const w of entry.waiters) w.resolve('sent');
    } catch (err) {
      const pauseMs = rateLimitPauseMs(err);
      if (pauseMs > 0) lane.pausedUntil = Date.now() + pauseMs;
      for (const w of entry.waiters) w.reject(err);
    }
  }

  private remember(key: string, version: number): void {
    this.lastSent.delete(key);
    this.lastSent.set(key, version);
    if (this.lastSent.size > SENT_MEMORY) this.lastSent.delete(this.lastSent.keys().next().value as string);
  }

  private setDepth(depth: number): void {
    this.depth = depth;
    this.depthGauge.set(depth);
  }
}

function rateLimitPauseMs(err: unknown): number {
  if (!(err instanceof ApplicationFailure) || err.type !== 'slack_rate_limited') return 0;
  return typeof err.nextRetryDelay === 'number' ? err.nextRetryDelay : 0;
}
