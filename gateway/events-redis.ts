import { Redis } from 'ioredis';
import { formatChange, parseChange, type ChangeFeed, type ChangeListener, type StateChange } from './events.js';

export interface RedisFeedOptions {
  url: string;
  /** One channel per namespace and task queue: replicas of one deployment hear each other, others do not. */
  namespace: string;
  taskQueue: string;
  /**
   * This process publishes (a worker): it says so every second, so subscribers know someone publishes at all (a
   * worker without REDIS_URL, or cut off from Redis, would otherwise leave them trusting a silent feed).
   */
  publisher?: boolean;
  log?: (msg: string) => void;
}

const HEARTBEAT_MS = 1000;
/** A subscriber that hears nobody for this long counts the feed as down (and falls back to reading Temporal). */
const SILENCE_MS = 3500;
const HEARTBEAT = JSON.stringify({ heartbeat: true });

/** Exported for tests and operators (`redis-cli SUBSCRIBE …`). */
export function changeChannel(namespace: string, taskQueue: string): string {
  return `guard:changes:${namespace}:${taskQueue}`;
}

const clientOptions = {
  lazyConnect: true,
  connectTimeout: 2000,
  // A notice is only worth something now: queued while Redis is away it would arrive after listeners resynced.
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
} as const;

/**
 * The change feed between processes, over Redis pub/sub (at most once: a notice published while a subscriber is
 * disconnected is lost, which is why a subscriber reports every reconnection and its listeners re-read). The
 * publishing and subscribing connections are made on first use: a worker only publishes, an API only subscribes.
 */
export class RedisChangeFeed implements ChangeFeed {
  private readonly channel: string;
  private readonly listeners = new Set<ChangeListener>();
  private publisher: Redis | null = null;
  private subscriber: Redis | null = null;
  private subscribed = false;
  private heardAt = 0;
  private status = false;
  private closed = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private silence: NodeJS.Timeout | null = null;
  private readonly log: (msg: string) => void;
  private publishDown = false;

  constructor(private readonly opts: RedisFeedOptions) {
    this.channel = changeChannel(opts.namespace, opts.taskQueue);
    this.log = opts.log ?? (() => {});
    if (opts.publisher) {
      this.heartbeat = setInterval(() => this.send(HEARTBEAT), HEARTBEAT_MS);
      this.heartbeat.unref();
      this.send(HEARTBEAT);
    }
  }

  /** Subscribed, and a publisher was heard lately. */
  get connected(): boolean {
    return this.status;
  }

  publish(change: StateChange): void {
    this.send(formatChange(change));
  }

  private send(message: string): void {
    if (this.closed) return;
    const publisher = (this.publisher ??= this.connectPublisher());
    publisher.publish(this.channel, message).then(
      () => {
        if (!this.publishDown) return;
        this.publishDown = false;
        this.log('change feed: publishing to Redis again');
      },
      (err: Error) => {
        if (this.publishDown) return;
        this.publishDown = true;
        this.log(`change feed: cannot publish to Redis (${err.message}); API replicas fall back to reading Temporal`);
      },
    );
  }

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    this.subscriber ??= this.connectSubscriber();
    listener.onStatus(this.status);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.silence) clearInterval(this.silence);
    this.listeners.clear();
    await Promise.all([this.publisher, this.subscriber].map((c) => c && quit(c)));
  }

  private connectPublisher(): Redis {
    const client = new Redis(this.opts.url, clientOptions);
    client.on('error', () => undefined);
    client.connect().catch(() => undefined);
    return client;
  }

  private connectSubscriber(): Redis {
    // Resubscribed by hand on each connection, so that "connected" is said only once the subscription is in place.
    const client = new Redis(this.opts.url, { ...clientOptions, autoResubscribe: false });
    let failing = false;
    client.on('error', (err: Error) => {
      if (failing) return;
      failing = true;
      this.log(`change feed: Redis unavailable (${err.message}); waiters are served from Temporal meanwhile`);
    });
    client.on('ready', () => {
      client.subscribe(this.channel).then(
        () => {
          if (failing) this.log('change feed: subscribed to Redis again');
          failing = false;
          this.subscribed = true;
          this.updateStatus();
        },
        () => client.disconnect(true),
      );
    });
    client.on('close', () => {
      this.subscribed = false;
      this.updateStatus();
    });
    client.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      this.heardAt = Date.now();
      const change = parseChange(message);
      this.updateStatus();
      if (!change) return;
      for (const l of [...this.listeners]) l.onChange(change);
    });
    this.silence = setInterval(() => this.updateStatus(), HEARTBEAT_MS / 2);
    this.silence.unref();
    client.connect().catch(() => undefined);
    return client;
  }

  private updateStatus(): void {
    const up = this.subscribed && Date.now() - this.heardAt < SILENCE_MS;
    if (up === this.status || this.closed) return;
    this.status = up;
    if (!up && this.subscribed) this.log('change feed: no publisher heard on Redis; waiters are served from Temporal');
    for (const l of [...this.listeners]) l.onStatus(up);
  }
}

async function quit(client: Redis): Promise<void> {
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}
