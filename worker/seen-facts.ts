import type { GuardEventBatch } from '../workflows/messages.js';

type Fact = GuardEventBatch['events'][number];

/**
 * The facts this worker has already recorded, for the requests it heard from most recently.
 *
 * A sink with `callDuringReplay: false` still runs again when the workflow task it ran in fails or times out and is
 * retried: a retry is not a replay (`InjectedSinkFunction.callDuringReplay` in @temporalio/worker lib/sinks.d.ts).
 * A request that ends while a Signal is arriving is one such retry (the server refuses to complete a run with new
 * events: UnhandledCommand), and its facts (`request_expired`, say) would be audited and counted twice.
 *
 * Each fact of a request happens at most once (one creation, one outcome, one escalation, one ack per persona, one
 * approval per approver), so its identity is a key. A retry comes seconds after the first attempt; the `capacity`
 * most recent requests are remembered and older ones forgotten, so nothing is held per request for ever. A retry
 * taken by another worker (this one died in between) can still repeat a fact: across workers the audit log is
 * at-least-once, and a line's `requestId` and `event` (plus `persona` or `actor`) identify its fact.
 */
export class SeenFacts {
  private readonly byRequest = new Map<string, Set<string>>();

  constructor(private readonly capacity = 10_000) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be ≥ 1, got ${capacity}`);
  }

  /** The facts of the batch not recorded before, now marked as recorded. */
  fresh(requestId: string, facts: readonly Fact[]): Fact[] {
    const seen = this.byRequest.get(requestId) ?? new Set<string>();
    // Most recently heard last: the first key is the one to forget.
    this.byRequest.delete(requestId);
    this.byRequest.set(requestId, seen);
    if (this.byRequest.size > this.capacity) this.byRequest.delete(this.byRequest.keys().next().value as string);
    return facts.filter((fact) => {
      const key = factKey(fact);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  }

  /** How many requests are remembered (at most `capacity`). */
  get size(): number {
    return this.byRequest.size;
  }
}

/** What makes a fact the same fact again: its kind, and who it is about where a request may have several. */
export function factKey(fact: Fact): string {
  switch (fact.type) {
    case 'persona_acked':
      return `persona_acked:${fact.persona}`;
    case 'approval_recorded':
    case 'override_applied':
      return `${fact.type}:${fact.actor}`;
    case 'request_approved':
    case 'request_denied':
    case 'request_expired':
    case 'request_cancelled':
      // A request has one outcome.
      return 'outcome';
    case 'request_created':
    case 'request_escalated':
    case 'notification_failed':
      return fact.type;
  }
}
