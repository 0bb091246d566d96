import { Redis } from 'ioredis';

/** A request waits at most this long for Redis: the limiter then lets it pass, the replay cache answers 503. */
const COMMAND_TIMEOUT_MS = 1000;

/**
 * The client the API replicas share state through (rate-limit counters, seen Slack signatures). Created unconnected
 * so the caller can attach its logging first; `connectRedis` starts it.
 */
export function createRedisClient(url: string): Redis {
  return new Redis(url, {
    lazyConnect: true,
    connectTimeout: 2000,
    commandTimeout: COMMAND_TIMEOUT_MS,
    // Fail a command after one reconnection attempt rather than queueing it while Redis is away.
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
  });
}

/**
 * Connects in the background and logs each outage once (and its end); it reconnects by itself. Messages carry the
 * error only, never the URL, which may hold a password.
 */
export function connectRedis(client: Redis, log: (msg: string) => void): void {
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
  client.connect().catch(() => undefined);
}

/** Closes the connection, waiting for pending replies when it can. */
export async function closeRedis(client: Redis): Promise<void> {
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}
