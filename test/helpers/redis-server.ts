/** A real redis-server of the test's own (Debian's, installed by .ci/run), for the Redis and waiter suites. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../temporal/dev-server.js';
import { eventually } from './eventually.js';

export interface RedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * `redis-server` without persistence in a temp dir, on `port` (a free one by default); resolves once it answers PING.
 * `stop()` ends it with `stopWith` (SIGKILL: an outage with no goodbye; SIGTERM: a clean shutdown).
 */
export async function startRedis(port?: number, stopWith: NodeJS.Signals = 'SIGKILL'): Promise<RedisServer> {
  const p = port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), 'guard-redis-'));
  const args = ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  const child: ChildProcess = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d) => (output += String(d)));
  child.stderr?.on('data', (d) => (output += String(d)));
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (err) => {
      output += `\n${err.message} (is Debian's redis-server installed? .ci/run installs it)`;
      resolve();
    });
  });
  const url = `redis://127.0.0.1:${p}`;
  const stop = async () => {
    child.kill(stopWith);
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await eventually(
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`redis-server exited:\n${output}`);
        await probe.connect().catch(() => undefined);
        return (await probe.ping().catch(() => null)) === 'PONG' ? true : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 100, what: `redis-server on ${url}` },
    );
  } catch (err) {
    await stop();
    throw err;
  } finally {
    probe.disconnect();
  }
  return { url, port: p, stop };
}
