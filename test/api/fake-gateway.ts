import { initialState, isTerminal, reduce, type Command, type DomainEvent } from '../../domain/request-state.js';
import {
  AlreadyStartedError,
  NotFoundError,
  type ClickMeta,
  type ClickName,
  type CommandInputs,
  type CommandName,
  type CommandOutcome,
  type HistoryLine,
  type OpenRequestRow,
  type RequestFilter,
  type RequestGateway,
  type RequestRow,
  type SentClick,
  type StartOutcome,
} from '../../gateway/types.js';
import { workflowIdOf } from '../../gateway/ids.js';
import type { ApprovalInput, RequestView } from '../../workflows/messages.js';

interface Stored {
  input: ApprovalInput;
  view: RequestView;
  clicks: Set<string>;
  lines: HistoryLine[];
}

/** A refused click, as the workflow would tell the clicker (ephemerally) in the real service. */
export interface RefusedClick {
  requestId: string;
  clickId: string;
  reason: string;
}

/** What Temporal's client throws when the server cannot be reached (the API answers 503). */
export class UnavailableError extends Error {
  readonly code = 14;
  override name = 'ServiceError';
}

function toCommand<N extends CommandName>(name: N, input: CommandInputs[N]): Command {
  switch (name) {
    case 'personaAck':
      return { type: 'persona_ack', ...(input as CommandInputs['personaAck']) };
    case 'approve':
      return { type: 'approve', ...(input as CommandInputs['approve']) };
    case 'deny':
      return { type: 'deny', ...(input as CommandInputs['deny']) };
    case 'approveWithEdits':
      return { type: 'override', ...(input as CommandInputs['approveWithEdits']) };
    case 'cancel':
      return { type: 'cancel', ...(input as CommandInputs['cancel']) };
    default:
      return { type: 'admin_decision', ...(input as CommandInputs['adminDecision']) };
  }
}

/**
 * The gateway of the route tests: requests live in memory and change through the real reducer, exactly as the
 * workflow applies commands, so routes are tested in-process against the same rules without a Temporal server.
 * Timers do not run: a test moves time with `apply(id, { type: 'expire' })`.
 */
export class InMemoryGateway implements RequestGateway {
  /** By workflow id, as Temporal holds them (a keyed request's id differs from its workflow's: gateway/ids.ts). */
  readonly requests = new Map<string, Stored>();
  readonly refusedClicks: RefusedClick[] = [];
  private readonly listeners = new Map<string, Set<(view: RequestView) => void>>();
  /** While true every call fails as if Temporal were down. */
  unavailable = false;
  private eventId = 0;

  async start(input: ApprovalInput, opts: { idempotent: boolean }): Promise<StartOutcome> {
    this.check();
    const existing = this.requests.get(workflowIdOf(input.requestId));
    if (existing) {
      if (!opts.idempotent) throw new AlreadyStartedError(`request ${input.requestId} exists`);
      return { created: false, existing: existing.input, view: existing.view };
    }
    const view: RequestView = { ...initialState(input), slack: null };
    this.requests.set(workflowIdOf(input.requestId), { input, view, clicks: new Set(), lines: [] });
    this.line(input.requestId, 'WorkflowExecutionStarted', `${input.request.action} requested`);
    return { created: true };
  }

  async view(requestId: string): Promise<RequestView> {
    return this.get(requestId).view;
  }

  async input(requestId: string): Promise<ApprovalInput> {
    return this.get(requestId).input;
  }

  async command<N extends CommandName>(requestId: string, name: N, input: CommandInputs[N]): Promise<CommandOutcome> {
    this.check();
    if (!this.requests.has(requestId))
      return { ok: false, reason: 'not_found', message: `request ${requestId} not found` };
    const t = this.apply(requestId, toCommand(name, input));
    return t.ok ? { ok: true, view: t.view } : { ok: false, reason: t.reason, message: t.message };
  }

  async click<N extends ClickName>(
    requestId: string,
    name: N,
    input: CommandInputs[N],
    meta: ClickMeta,
  ): Promise<SentClick> {
    this.check();
    const stored = this.find(requestId);
    if (!stored) return { ok: false, reason: 'not_found', message: `request ${requestId} not found` };
    if (isTerminal(stored.view.status)) {
      return { ok: false, reason: 'already_decided', message: 'this request is already decided' };
    }
    if (stored.clicks.has(meta.clickId)) return { ok: true };
    stored.clicks.add(meta.clickId);
    const t = this.apply(requestId, toCommand(name, input));
    if (!t.ok) this.refusedClicks.push({ requestId, clickId: meta.clickId, reason: t.reason });
    return { ok: true };
  }

  /** Applies a command the way the workflow does (tests use it for timers: escalate, expire). */
  apply(
    requestId: string,
    command: Command,
  ): { ok: true; view: RequestView; events: DomainEvent[] } | { ok: false; reason: never; message: string } {
    const stored = this.get(requestId);
    const t = reduce(stored.view, stored.input.plan, command, new Date().toISOString());
    if (!t.ok) return t as never;
    stored.view = { ...t.state, slack: stored.view.slack };
    this.line(requestId, 'StateChanged', `${command.type} → ${t.state.status}`);
    for (const listener of [...(this.listeners.get(requestId) ?? [])]) listener(stored.view);
    return { ok: true, view: stored.view, events: t.events };
  }

  waitForChange(requestId: string, sinceVersion: number, timeoutMs: number): Promise<RequestView | null> {
    return new Promise((resolve) => {
      let stop = () => {};
      const timer = setTimeout(() => {
        stop();
        resolve(null);
      }, timeoutMs);
      stop = this.subscribe(requestId, (view) => {
        if (view.version <= sinceVersion) return;
        clearTimeout(timer);
        stop();
        resolve(view);
      });
    });
  }

  subscribe(requestId: string, listener: (view: RequestView) => void): () => void {
    const set = this.listeners.get(requestId) ?? new Set();
    this.listeners.set(requestId, set);
    set.add(listener);
    return () => set.delete(listener);
  }

  listenerCount(requestId: string): number {
    return this.listeners.get(requestId)?.size ?? 0;
  }

  async history(requestId: string) {
    const stored = this.get(requestId);
    return { input: stored.input, lines: stored.lines };
  }

  async list(filter: RequestFilter, limit: number): Promise<RequestRow[]> {
    this.check();
    return [...this.requests.values()]
      .filter(({ input, view }) => matches(filter, input, view))
      .slice(0, limit)
      .map(({ input, view }) => ({
        requestId: input.requestId,
        status: view.status,
        action: input.request.action,
        requester: input.request.meta.requester.id,
        lineageId: input.lineageId,
        createdAt: input.createdAt,
        expiresAt: input.expiresAt,
        closedAt: view.decidedAt,
        workflowStatus: isTerminal(view.status) ? 'COMPLETED' : 'RUNNING',
      }));
  }

  async openRequests(max: number): Promise<{ requests: OpenRequestRow[]; truncated: boolean }> {
    this.check();
    const open = [...this.requests.values()].filter(({ view }) => !isTerminal(view.status));
    const requests = open.slice(0, max).map(({ input, view }) => ({
      action: input.request.action,
      status: view.status,
      personasPending: Object.entries(view.personaState)
        .filter(([, p]) => !p.acked)
        .map(([n]) => n),
      startedAt: new Date(input.createdAt),
    }));
    return { requests, truncated: open.length > max };
  }

  async checkHealth(): Promise<void> {
    this.check();
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  /** Forgets a request, as the purge sweeper's delete does. */
  purge(requestId: string): void {
    if (this.find(requestId)) this.requests.delete(workflowIdOf(requestId));
  }

  private find(requestId: string): Stored | undefined {
    const stored = this.requests.get(workflowIdOf(requestId));
    return stored?.input.requestId === requestId ? stored : undefined;
  }

  private get(requestId: string): Stored {
    this.check();
    const stored = this.find(requestId);
    if (!stored) throw new NotFoundError(`request ${requestId} not found`);
    return stored;
  }

  private check(): void {
    if (this.unavailable) throw new UnavailableError('14 UNAVAILABLE: connection refused');
  }

  private line(requestId: string, type: string, summary: string): void {
    this.requests
      .get(requestId)
      ?.lines.push({ eventId: ++this.eventId, time: new Date().toISOString(), type, summary });
  }
}

function matches(filter: RequestFilter, input: ApprovalInput, view: RequestView): boolean {
  return (
    (filter.status === undefined || view.status === filter.status) &&
    (filter.action === undefined || input.request.action === filter.action) &&
    (filter.requester === undefined || input.request.meta.requester.id === filter.requester) &&
    (filter.lineageId === undefined || input.lineageId === filter.lineageId)
  );
}
