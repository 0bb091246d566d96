/**
 * Helpers for the waiter suites: a feed that can lose notices, an SSE reader and long-polls against a given API (the
 * real redis-server of their own is test/helpers/redis-server.ts).
 */
import { LocalChangeFeed, type ChangeFeed, type ChangeListener, type StateChange } from '../../gateway/events.js';

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
