/**
 * The change feed: the worker announces that a request reached a new version, the APIs hear it and wake their
 * waiters by reading the committed state. In one process (`npm start`) it is an in-memory emitter; between replicas
 * it is Redis pub/sub (events-redis.ts). A notice is a hint, never the state itself: the workflow reports its facts
 * when its activation completes, before the server has persisted the task, so a listener reads the state that
 * Temporal holds (and reads again until it shows the announced version).
 */

/** A request's state reached `version` (announced by the worker; Temporal may not have persisted it yet). */
export interface StateChange {
  requestId: string;
  version: number;
}

export interface ChangeListener {
  onChange(change: StateChange): void;
  /**
   * The feed (re)connected (`true`: changes from now on are heard; any before may have been missed) or dropped
   * (`false`: changes may be missed until the next `true`).
   */
  onStatus(connected: boolean): void;
}

export interface ChangeFeed {
  /** Fire and forget: a notice that cannot be sent is lost, and listeners' sweeps make up for it. */
  publish(change: StateChange): void;
  /** Calls the listener's `onStatus` with the current status at once, then on every change of it. */
  subscribe(listener: ChangeListener): () => void;
  readonly connected: boolean;
  close(): Promise<void>;
}

/** Worker and API in one process: notices are delivered synchronously and never lost. */
export class LocalChangeFeed implements ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();
  readonly connected = true;

  publish(change: StateChange): void {
    for (const l of [...this.listeners]) l.onChange(change);
  }

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    listener.onStatus(true);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}

/** Parses a notice from the wire; null for anything malformed (the channel is shared: trust nothing). */
export function parseChange(text: string): StateChange | null {
  try {
    const v = JSON.parse(text) as Partial<StateChange> | null;
    if (!v || typeof v.requestId !== 'string' || v.requestId.length === 0 || v.requestId.length > 1000) return null;
    if (typeof v.version !== 'number' || !Number.isSafeInteger(v.version) || v.version < 0) return null;
    return { requestId: v.requestId, version: v.version };
  } catch {
    return null;
  }
}

export function formatChange(change: StateChange): string {
  return JSON.stringify({ requestId: change.requestId, version: change.version });
}
