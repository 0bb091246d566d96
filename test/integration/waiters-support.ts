/**
 * Helpers for the waiter suites: a real redis-server of the test's own, a feed that can lose notices, an SSE reader
 * and long-polls against a given API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { LocalChangeFeed, type ChangeFeed, type ChangeListener, type StateChange } from '../../gateway/events.js';
import { freePort } from '../../temporal/dev-server.js';
import { eventually } from '../helpers/eventually.js';

export interface RedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** `redis-server` without persistence in a temp dir, on `port` (a free one by default); resolves once it answers. */
export async function startRedis(port?: number): Promise<RedisServer> {
  const p = port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), 'guard-waiters-redis-'));
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
    child.kill('SIGKILL');
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

/** The in-process feed, with a switch that makes it lose notices (as a publisher cut off from Redis would). */
export class LossyFeed implements ChangeFeed {
  private readonly inner = new LocalChangeFeed();
  losing = false;
  published = 0;
  readonly connected = true;

  publish(change: StateChange): void {
    this.published += 1;
    if (!this.losing) this.inner.publish(change);
  }

  subscribe(listener: ChangeListener): () => void {
    return this.inner.subscribe(listener);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

export interface WaitAnswer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  at: number;
}

/** One long-poll; `at` is when it was answered. */
export async function longPoll(base: string, token: string, timeoutSec: number): Promise<WaitAnswer> {
  const res = await fetch(`${base}/api/guard/wait?token=${encodeURIComponent(token)}&timeoutSec=${timeoutSec}`);
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as unknown, at: Date.now() };
}

export interface SseEvent {
  event: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data: any;
  retry: number | null;
  at: number;
}

/** An SSE stream read to its end: every event with the time it arrived, and how the stream ended. */
export interface SseStream {
  status: number;
  events: SseEvent[];
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

export async function openSse(base: string, token: string): Promise<SseStream> {
  const abort = new AbortController();
  const res = await fetch(`${base}/api/guard/wait-sse?token=${encodeURIComponent(token)}`, { signal: abort.signal });
  const events: SseEvent[] = [];
  const read = async () => {
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const fields = block.split('\n').filter((l) => !l.startsWith(':'));
          const field = (name: string) =>
            fields.filter((l) => l.startsWith(`${name}:`)).map((l) => l.slice(name.length + 1).trimStart());
          const data = field('data');
          if (data.length === 0) continue;
          const retry = field('retry')[0];
          events.push({
            event: field('event')[0] ?? 'message',
            data: JSON.parse(data.join('\n')) as unknown,
            retry: retry === undefined ? null : Number(retry),
            at: Date.now(),
          });
        }
      }
    } catch {
      // Aborted by close().
    }
  };
  return { status: res.status, events, ended: read(), close: () => abort.abort() };
}
