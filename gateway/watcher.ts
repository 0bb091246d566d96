import type { Client } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { isTerminal } from '../domain/request-state.js';
import type { RequestView } from '../workflows/messages.js';
import { readBatch } from './history.js';

const TERMINAL_CACHE_SIZE = 10_000;

type Listener = (view: RequestView) => void;

interface Watch {
  listeners: Set<Listener>;
  latest: RequestView | null;
  abort: AbortController;
}

/**
 * Wakes waiters (long-poll and SSE) when a request's state changes, without polling: one server-side
 * history long-poll per watched request, shared by every waiter on it in this process. The history carries
 * the states themselves: an Update's result, the memo the workflow writes at every change (a Signal's or a
 * timer's), the workflow's result. Only a view too large for the memo (written as null) costs a query.
 * Waiters hear only versions newer than theirs.
 */
export class StateWatcher {
  private readonly watches = new Map<string, Watch>();
  private readonly terminal = new Map<string, RequestView>();

  constructor(
    private readonly client: Client,
    private readonly read: (requestId: string) => Promise<RequestView>,
  ) {}

  async current(requestId: string): Promise<RequestView> {
    const cached = this.terminal.get(requestId);
    if (cached) return cached;
    const view = await this.read(requestId);
    this.remember(view);
    return view;
  }

  /** True when this process knows the request reached a terminal state (which never changes). */
  decided(requestId: string): boolean {
    return this.terminal.has(requestId);
  }

  /** Resolves with the first view newer than `sinceVersion`, or null when `timeoutMs` passes first. */
  waitForChange(requestId: string, sinceVersion: number, timeoutMs: number): Promise<RequestView | null> {
    return new Promise((resolve) => {
      let unsubscribe = () => {};
      const timer = setTimeout(() => {
        unsubscribe();
        resolve(null);
      }, timeoutMs);
      unsubscribe = this.subscribe(requestId, (view) => {
        if (view.version <= sinceVersion) return;
        clearTimeout(timer);
        unsubscribe();
        resolve(view);
      });
    });
  }

  /** Calls `listener` with every newer view until the returned function is called. */
  subscribe(requestId: string, listener: Listener): () => void {
    // Decided already (a click's outcome may land between a waiter's first read and its subscription): say so now.
    const decided = this.terminal.get(requestId);
    if (decided) {
      listener(decided);
      return () => {};
    }
    let watch = this.watches.get(requestId);
    if (!watch) {
      watch = { listeners: new Set(), latest: null, abort: new AbortController() };
      this.watches.set(requestId, watch);
      void this.follow(requestId, watch);
    }
    watch.listeners.add(listener);
    if (watch.latest) listener(watch.latest);
    return () => {
      watch.listeners.delete(listener);
      if (watch.listeners.size === 0) this.stop(requestId, watch);
    };
  }

  /** A view learnt elsewhere (an Update's result) reaches local waiters without waiting for the long-poll. */
  publish(view: RequestView): void {
    this.remember(view);
    const watch = this.watches.get(view.requestId);
    if (watch) this.deliver(watch, view);
  }

  /** How many listeners follow a request in this process; a closed stream must leave none behind. */
  listenerCount(requestId: string): number {
    return this.watches.get(requestId)?.listeners.size ?? 0;
  }

  close(): void {
    for (const [id, watch] of this.watches) this.stop(id, watch);
  }

  private stop(requestId: string, watch: Watch): void {
    watch.abort.abort();
    if (this.watches.get(requestId) === watch) this.watches.delete(requestId);
  }

  private deliver(watch: Watch, view: RequestView): void {
    if (watch.latest && watch.latest.version >= view.version) return;
    watch.latest = view;
    for (const listener of [...watch.listeners]) listener(view);
  }

  private remember(view: RequestView): void {
    if (!isTerminal(view.status)) return;
    if (this.terminal.size >= TERMINAL_CACHE_SIZE) {
      const oldest = this.terminal.keys().next().value;
      if (oldest !== undefined) this.terminal.delete(oldest);
    }
    this.terminal.set(view.requestId, view);
  }

  private async follow(requestId: string, watch: Watch): Promise<void> {
    let nextPageToken: Uint8Array | undefined;
    let failures = 0;
    while (!watch.abort.signal.aborted) {
      try {
        const res = await this.client.connection.withAbortSignal(watch.abort.signal, () =>
          this.client.workflowService.getWorkflowExecutionHistory({
            namespace: this.client.options.namespace,
            execution: { workflowId: requestId },
            nextPageToken: nextPageToken ?? null,
            waitNewEvent: true,
            skipArchival: true,
          }),
        );
        failures = 0;
        const events = res.history?.events ?? [];
        const closed = !res.nextPageToken || res.nextPageToken.length === 0;
        const reading = readBatch(events, (p) => this.decodeView(p));
        if (reading && 'view' in reading) this.publish(reading.view);
        else if (reading || (closed && !watch.latest)) this.deliver(watch, await this.current(requestId));
        // No token means the history is complete: the workflow has closed and nothing more will change.
        if (closed) return;
        nextPageToken = res.nextPageToken ?? undefined;
      } catch {
        if (watch.abort.signal.aborted) return;
        // Temporal briefly unreachable: back off instead of spinning; waiters still time out on their own.
        failures += 1;
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** failures)));
      }
    }
  }

  /** The view a payload holds; null when payload codecs are configured (their decoding is async: query instead). */
  private decodeView(payloads: Payload[] | null | undefined): RequestView | null {
    const converter = this.client.options.loadedDataConverter;
    const payload = payloads?.[0];
    if (!payload || converter.payloadCodecs.length > 0) return null;
    const view = converter.payloadConverter.fromPayload<RequestView>(payload);
    return view && typeof view.version === 'number' && typeof view.requestId === 'string' ? view : null;
  }
}
