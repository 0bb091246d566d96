import { Redis } from 'ioredis';

/** A request waits at most this long for Redis: the limiter then lets it pass, the replay cache answers 503. */
const COMMAND_TIMEOUT_MS = 1000;
/** How long start-up waits for a first connection before serving without Redis (it keeps trying). */
const STARTUP_WAIT_MS = 3000;

/**
 * The client the API replicas share state through (rate-limit counters, seen Slack signatures). Created unconnected
 * so the caller can attach its logging first; `connectRedis` starts it.
 */
export function createRedisClient(url: string): Redis {
  return new Redis(url, {
    lazyConnect: true,
    connectTimeout: 2000,
    commandTimeout: COMMAND_TIMEOUT_MS,
    // While Redis is away a command fails at once. Queued, it would still run on reconnection, after its request
    // was answered: a Slack delivery refused with 503 would then have its signature burnt for its retry.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
  });
}

/**
 * Connects, waiting a moment for the first connection, and logs each outage once (and its end); the client
 * reconnects by itself. Messages carry the error only, never the URL, which may hold a password.
 */
export async function connectRedis(client: Redis, log: (msg: string) => void): Promise<void> {
  let down = false;
  client.on('error', (err: Error) => {
    if (down) return;
    down = true;
    log(`redis unavailable: ${err.message}`);
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    log('redis reconnected');
  });
  const connected = client.connect().then(
    () => true,
    () => false,
  );
  const timedOut = new Promise<false>((resolve) => setTimeout(resolve, STARTUP_WAIT_MS, false).unref());
  if (!(await Promise.race([connected, timedOut]))) log('redis not reachable at start-up; serving without it');
}

/** Closes the connection, waiting for pending replies when it can. */
export async function closeRedis(client: Redis): Promise<void> {
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}
