import type { z } from 'zod';
import { errorResponseSchema } from '../../../domain/api-schemas.js';
import { errorFromAnswer, GuardError, UnavailableError } from './errors.js';

export interface HttpOptions {
  baseUrl: string;
  agentKey?: string | undefined;
  fetch?: typeof fetch | undefined;
  /** Tries of one call when the service is unreachable, rate limits (429) or is unavailable (502/503/504). */
  maxAttempts?: number | undefined;
  /** First backoff between tries, doubled each time up to `maxBackoffMs`; a Retry-After answer overrides it. */
  backoffMs?: number | undefined;
  maxBackoffMs?: number | undefined;
  /** A Retry-After longer than this is not waited out: the error is thrown at once. */
  maxRetryAfterSec?: number | undefined;
  /** Bound of one HTTP exchange (a long-poll gets its wait bound on top). */
  requestTimeoutMs?: number | undefined;
}

export interface SendOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** Extra time the server may legitimately take (a long-poll's wait bound). */
  extraTimeoutMs?: number;
  signal?: AbortSignal | undefined;
}

/** One HTTP exchange: the JSON answer, or a typed error and whether trying again may help (and when). */
export type Refusal = { ok: false; error: GuardError; retryable: boolean; delayMs: number | null };
export type Attempt = { ok: true; status: number; json: unknown } | Refusal;

const RETRY_STATUSES = new Set([429, 502, 503, 504]);

export class Http {
  readonly baseUrl: string;
  private readonly fetchFn: typeof fetch;
  private readonly agentKey: string | undefined;
  readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly maxRetryAfterSec: number;
  private readonly requestTimeoutMs: number;

  constructor(opts: HttpOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.fetchFn = opts.fetch ?? fetch;
    this.agentKey = opts.agentKey;
    this.maxAttempts = opts.maxAttempts ?? 5;
    this.backoffMs = opts.backoffMs ?? 250;
    this.maxBackoffMs = opts.maxBackoffMs ?? 8000;
    this.maxRetryAfterSec = opts.maxRetryAfterSec ?? 60;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
  }

  /** A call with retries; every try sends the same headers, so an Idempotency-Key makes retries safe. */
  async call<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    opts: SendOptions = {},
  ): Promise<z.infer<S>> {
    for (let tries = 1; ; tries++) {
      const result = await this.attempt(method, path, opts);
      if (result.ok) return parseAnswer(schema, result.json, result.status);
      if (!result.retryable || tries >= this.maxAttempts) throw result.error;
      await sleep(result.delayMs ?? this.backoff(tries), opts.signal);
    }
  }

  async attempt(method: string, path: string, opts: SendOptions = {}): Promise<Attempt> {
    const timeout = AbortSignal.timeout(this.requestTimeoutMs + (opts.extraTimeoutMs ?? 0));
    let res: Response;
    let json: unknown;
    try {
      res = await this.fetchFn(`${this.baseUrl}${path}`, {
        method,
        headers: this.headers(opts),
        ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
        signal: opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout,
      });
      json = await readJson(res);
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      return { ok: false, error: unreachable(this.baseUrl, err), retryable: true, delayMs: null };
    }
    if (res.ok) return { ok: true, status: res.status, json };
    return this.refusal(res, json);
  }

  /** Opens a Server-Sent Events stream; the caller reads `body` with `serverSentEvents`. */
  async stream(path: string, signal: AbortSignal): Promise<{ ok: true; body: ReadableStream<Uint8Array> } | Refusal> {
    let res: Response;
    try {
      res = await this.fetchFn(`${this.baseUrl}${path}`, {
        headers: { ...this.headers({}), accept: 'text/event-stream' },
        signal,
      });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      return { ok: false, error: unreachable(this.baseUrl, err), retryable: true, delayMs: null };
    }
    if (res.ok && res.body) return { ok: true, body: res.body };
    return this.refusal(res, await readJson(res).catch(() => null));
  }

  backoff(tries: number): number {
    return Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (tries - 1));
  }

  private headers(opts: SendOptions): Record<string, string> {
    return {
      accept: 'application/json',
      ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(this.agentKey ? { authorization: `Bearer ${this.agentKey}` } : {}),
      ...opts.headers,
    };
  }

  private refusal(res: Response, json: unknown): Refusal {
    const parsed = errorResponseSchema.safeParse(json);
    const body = parsed.success ? parsed.data : null;
    const retryAfterSec = parseRetryAfter(res.headers.get('retry-after')) ?? body?.retryAfterSec ?? null;
    const retryable =
      RETRY_STATUSES.has(res.status) && (retryAfterSec === null || retryAfterSec <= this.maxRetryAfterSec);
    const error = errorFromAnswer(res.status, body, retryAfterSec);
    return { ok: false, error, retryable, delayMs: retryAfterSec === null ? null : retryAfterSec * 1000 };
  }
}

/** The answer as the shared schema types it; anything else is a typed error, not a surprise further on. */
export function parseAnswer<S extends z.ZodType>(schema: S, json: unknown, status: number): z.infer<S> {
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  throw new GuardError(`unexpected answer: ${parsed.error.message}`, 'invalid_response', status);
}

async function readJson(res: Response): Promise<unknown> {
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function unreachable(baseUrl: string, err: unknown): UnavailableError {
  const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
  return new UnavailableError(`cannot reach ${baseUrl}: ${cause}`, 'unreachable', 0);
}

/** Retry-After in seconds, from either of its forms (delay-seconds or an HTTP date). */
export function parseRetryAfter(value: string | null): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface ServerSentEvent {
  event: string;
  data: string;
  /** The latest `retry:` reconnection delay the server asked for on this stream, if any. */
  retryMs: number | null;
}

/** The events of a `text/event-stream` body, as the EventSource spec parses them (comments skipped). */
export async function* serverSentEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<ServerSentEvent> {
  let buffer = '';
  let retryMs: number | null = null;
  let event = { event: 'message', data: [] as string[] };
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      if (line === '') {
        if (event.data.length > 0) yield { event: event.event, data: event.data.join('\n'), retryMs };
        event = { event: 'message', data: [] };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event.event = value;
      else if (field === 'data') event.data.push(value);
      else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value);
    }
  }
}
