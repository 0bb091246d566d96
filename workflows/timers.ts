import { condition } from '@temporalio/workflow';
import type { ApprovalRequest } from './request.js';
import { postEscalationNotice } from './slack-message.js';

/**
 * Waits for a decision while both timers run from the request's start (the expiry does not inherit the
 * escalation's lateness): escalation once at expiresAt − escalateBeforeSec, then expiry. Each is stamped with its
 * deadline, not the workflow clock: a new worker answering a query replays a fired timer before any task commits it,
 * with the clock of the last completed task, and that view must equal the one later committed.
 */
export async function runTimers(req: ApprovalRequest): Promise<void> {
  const { expiresAt, plan } = req.input;
  const expiresAtMs = Date.parse(expiresAt);
  const escalation = plan.escalation ? escalateAt(req, expiresAtMs - plan.escalation.escalateBeforeSec * 1000) : null;
  const decided = await decidedBefore(req, expiresAtMs);
  await escalation;
  if (!decided) req.fire({ type: 'expire' }, expiresAt);
}

async function escalateAt(req: ApprovalRequest, atMs: number): Promise<void> {
  if (await decidedBefore(req, atMs)) return;
  if (req.fire({ type: 'escalate' }, new Date(atMs).toISOString())) req.track(postEscalationNotice(req));
}

/** Resolves true as soon as the request is decided, false when `deadlineMs` passes first. */
async function decidedBefore(req: ApprovalRequest, deadlineMs: number): Promise<boolean> {
  const remaining = deadlineMs - Date.now();
  if (remaining <= 0) return req.decided;
  return condition(() => req.decided, remaining);
}
