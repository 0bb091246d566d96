/**
 * The waiters' side of the benchmark: one socket per waiter (node:http, no pooling), long-polls that poll again on
 * their bound as an agent would, SSE streams read to their end, and a /healthz prober. Every answer is timed.
 */
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Waiter {
  kind: 'poll' | 'sse';
  request: number;
  token: string;
  /** When the terminal state arrived (ms since the epoch). */
  toldAt: number | null;
  status: string | null;
  /** The decision's time as the workflow recorded it (`decidedAt` of the terminal state). */
  decidedAt: number | null;
  /** Long-polls answered at their bound (not yet decided) and made again. */
  repolls: number;
  /** Connect → response headers. */
  headersMs: number | null;
  /** The first answer seen (long-poll) or the first state event (SSE) arrived: the waiter is parked. */
  parked: boolean;
  errors: string[];
}

export interface LoadCounters {
  unavailable503: number;
  otherStatus: number;
  connectionErrors: number;
  sseHeaderTimeouts: number;
}

const SSE_HEADERS_TIMEOUT_MS = 60_000;
const POLL_EXTRA_MS = 30_000;
const RETRY_MS = 1000;

export class WaiterLoad {
  readonly counters: LoadCounters = { unavailable503: 0, otherStatus: 0, connectionErrors: 0, sseHeaderTimeouts: 0 };
  private readonly open = new Set<http.ClientRequest>();
  private stopped = false;

  constructor(
    private readonly baseUrl: string,
    private readonly pollSec: number,
  ) {}

  /** Long-polls until the request is decided (or the load is stopped). */
  async poll(w: Waiter): Promise<void> {
    while (!this.stopped) {
      const res = await this.get(`/api/guard/wait?token=${encodeURIComponent(w.token)}&timeoutSec=${this.pollSec}`, {
        timeoutMs: this.pollSec * 1000 + POLL_EXTRA_MS,
      }).catch((err: Error) => ({ status: 0, text: err.message, at: Date.now(), headersMs: null }));
      if (this.stopped) return;
      if (res.status === 200) {
        const body = JSON.parse(res.text) as { status: string; terminal: boolean; decidedAt: string | null };
        if (body.terminal) {
          w.toldAt = res.at;
          w.status = body.status;
          w.decidedAt = body.decidedAt ? Date.parse(body.decidedAt) : null;
          return;
        }
        w.repolls += 1;
        continue;
      }
      this.fail(w, res.status, res.text);
      await sleep(RETRY_MS);
    }
  }

  /** One SSE stream, read until its terminal event; reconnects after an error as a client would. */
  async stream(w: Waiter, onParked: () => void): Promise<void> {
    while (!this.stopped && w.toldAt === null) {
      const ended = await this.streamOnce(w, onParked).catch((err: Error) => ({ status: 0, text: err.message }));
      if (w.toldAt !== null || this.stopped) return;
      if (ended.status !== 200) this.fail(w, ended.status, ended.text);
      await sleep(RETRY_MS);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const req of this.open) req.destroy();
    this.open.clear();
  }

  private fail(w: Waiter, status: number, text: string): void {
    if (status === 503) this.counters.unavailable503 += 1;
    else if (status === 0) this.counters.connectionErrors += 1;
    else this.counters.otherStatus += 1;
    if (w.errors.length < 3) w.errors.push(`${status} ${text.slice(0, 120)}`);
  }

  private streamOnce(w: Waiter, onParked: () => void): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const req = http.get(
        `${this.baseUrl}/api/guard/wait-sse?token=${encodeURIComponent(w.token)}`,
        { agent: false },
        (res) => {
          clearTimeout(headers);
          w.headersMs ??= performance.now() - started;
          if (res.statusCode !== 200) {
            let text = '';
            res.on('data', (c: Buffer) => (text += String(c)));
            res.on('end', () => {
              this.open.delete(req);
              resolve({ status: res.statusCode ?? 0, text });
            });
            return;
          }
          let buffer = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buffer += chunk;
            let cut: number;
            while ((cut = buffer.indexOf('\n\n')) >= 0) {
              const block = buffer.slice(0, cut);
              buffer = buffer.slice(cut + 2);
              const lines = block.split('\n');
              const data = lines.find((l) => l.startsWith('data: '));
              if (!data) continue;
              if (lines.includes('event: error')) {
                this.fail(w, 503, data);
                continue;
              }
              if (!lines.includes('event: state')) continue;
              const state = JSON.parse(data.slice(6)) as {
                status: string;
                terminal: boolean;
                decidedAt: string | null;
              };
              if (!w.parked) {
                w.parked = true;
                onParked();
              }
              if (state.terminal) {
                w.toldAt = Date.now();
                w.status = state.status;
                w.decidedAt = state.decidedAt ? Date.parse(state.decidedAt) : null;
              }
            }
          });
          res.on('end', () => {
            this.open.delete(req);
            resolve({ status: 200, text: '' });
          });
          res.on('error', (err) => {
            this.open.delete(req);
            reject(err);
          });
        },
      );
      const headers = setTimeout(() => {
        this.counters.sseHeaderTimeouts += 1;
        req.destroy(new Error('no response headers within 60 s'));
      }, SSE_HEADERS_TIMEOUT_MS);
      this.open.add(req);
      req.on('error', (err) => {
        clearTimeout(headers);
        this.open.delete(req);
        reject(err);
      });
    });
  }

  private get(
    route: string,
    opts: { timeoutMs: number },
  ): Promise<{ status: number; text: string; at: number; headersMs: number | null }> {
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const req = http.get(`${this.baseUrl}${route}`, { agent: false, timeout: opts.timeoutMs }, (res) => {
        const headersMs = performance.now() - started;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          this.open.delete(req);
          resolve({ status: res.statusCode ?? 0, text, at: Date.now(), headersMs });
        });
        res.on('error', (err) => {
          this.open.delete(req);
          reject(err);
        });
      });
      this.open.add(req);
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (err) => {
        this.open.delete(req);
        reject(err);
      });
    });
  }
}

/** Asks /healthz every `intervalMs` over one kept-alive connection; each sample is tagged with the phase it fell in. */
export class HealthProbe {
  readonly samples: Array<{ phase: string; ms: number }> = [];
  errors = 0;
  phase = 'idle';
  private running = true;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private readonly loop: Promise<void>;

  constructor(
    private readonly baseUrl: string,
    private readonly intervalMs: number,
  ) {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.agent.destroy();
  }

  private async run(): Promise<void> {
    while (this.running) {
      const started = performance.now();
      const phase = this.phase;
      const ok = await new Promise<boolean>((resolve) => {
        const req = http.get(`${this.baseUrl}/healthz`, { agent: this.agent, timeout: 30_000 }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode === 200));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', () => resolve(false));
      });
      const ms = performance.now() - started;
      if (ok) this.samples.push({ phase, ms });
      else this.errors += 1;
      await sleep(Math.max(0, this.intervalMs - ms));
    }
  }
}
