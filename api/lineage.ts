import type { Plan } from '../domain/plan.js';
import { AlreadyStartedError, type RequestGateway } from '../gateway/types.js';
import type { ApprovalInput } from '../workflows/messages.js';

const DAY_MS = 24 * 3600 * 1000;
export const MAX_REREQUESTS_PER_DAY = 5;
/** Each lost race means another replica just started a re-request; a few rounds settle any realistic burst. */
const MAX_START_ATTEMPTS = 8;

export interface LineageMember {
  requestId: string;
  startMs: number;
}

export type ReRequestVerdict = { ok: true } | { ok: false; error: 'cooldown' | 'rate_limited'; retryAfterSec: number };

/**
 * SPEC section 3, as a pure function of the lineage: at most MAX_REREQUESTS_PER_DAY re-requests in any 24 h, and
 * none within `cooldownSec` of the lineage's latest request (the original itself counts as one of them).
 */
export function judgeReRequest(opts: {
  members: LineageMember[];
  originalStartMs: number;
  cooldownSec: number;
  nowMs: number;
}): ReRequestVerdict {
  const { members, originalStartMs, cooldownSec, nowMs } = opts;
  const recent = members
    .map((m) => m.startMs)
    .filter((t) => t > nowMs - DAY_MS)
    .sort((a, b) => a - b);
  if (recent.length >= MAX_REREQUESTS_PER_DAY) {
    // A slot frees up when the oldest of the last MAX_REREQUESTS_PER_DAY leaves the 24 h window.
    const freesAt = (recent[recent.length - MAX_REREQUESTS_PER_DAY] ?? nowMs) + DAY_MS;
    return { ok: false, error: 'rate_limited', retryAfterSec: secondsUntil(freesAt, nowMs) };
  }
  const latest = Math.max(originalStartMs, ...members.map((m) => m.startMs));
  const coolUntil = latest + cooldownSec * 1000;
  if (nowMs < coolUntil) return { ok: false, error: 'cooldown', retryAfterSec: secondsUntil(coolUntil, nowMs) };
  return { ok: true };
}

function secondsUntil(atMs: number, nowMs: number): number {
  return Math.max(1, Math.ceil((atMs - nowMs) / 1000));
}

/** Re-requests of lineage L are named L_r1, L_r2, ...: the workflow id is what makes replicas agree. */
export function memberId(lineageId: string, seq: number): string {
  return `${lineageId}_r${seq}`;
}

function nextSeq(lineageId: string, members: LineageMember[]): number {
  const prefix = `${lineageId}_r`;
  const seqs = members
    .filter((m) => m.requestId.startsWith(prefix))
    .map((m) => Number(m.requestId.slice(prefix.length)))
    .filter(Number.isInteger);
  return Math.max(0, ...seqs) + 1;
}

/**
 * Starts the next request of a lineage if the cooldown and the daily cap allow it. Members are counted through
 * Temporal visibility, so every API replica sees the same lineage. Visibility is eventually consistent: a request
 * started a moment ago may not be listed yet. Sequential workflow ids close that gap: whoever computes a number
 * already taken loses the start, learns that member's start time from its input, and judges again with it included.
 */
export async function startReRequest(
  gateway: RequestGateway,
  opts: { original: ApprovalInput; plan: Plan; agent: string | null; now?: () => number },
): Promise<{ ok: true; input: ApprovalInput } | Extract<ReRequestVerdict, { ok: false }>> {
  const { original, plan } = opts;
  const now = opts.now ?? Date.now;
  const lineageId = original.lineageId ?? original.requestId;
  const cooldownSec = original.plan.reRequest.cooldownSec;
  const listed = await gateway.list({ lineageId }, 1000);
  const members: LineageMember[] = listed.map((r) => ({ requestId: r.requestId, startMs: Date.parse(r.createdAt) }));
  for (let attempt = 0; attempt < MAX_START_ATTEMPTS; attempt++) {
    const nowMs = now();
    const verdict = judgeReRequest({ members, originalStartMs: Date.parse(original.createdAt), cooldownSec, nowMs });
    if (!verdict.ok) return verdict;
    const input: ApprovalInput = {
      requestId: memberId(lineageId, nextSeq(lineageId, members)),
      request: original.request,
      plan,
      createdAt: new Date(nowMs).toISOString(),
      expiresAt: new Date(nowMs + plan.timeoutSec * 1000).toISOString(),
      lineageId,
      agent: opts.agent,
    };
    try {
      await gateway.start(input, { idempotent: false });
      return { ok: true, input };
    } catch (err) {
      if (!(err instanceof AlreadyStartedError)) throw err;
      const taken = await gateway.input(input.requestId);
      members.push({ requestId: input.requestId, startMs: Date.parse(taken.createdAt) });
    }
  }
  return { ok: false, error: 'cooldown', retryAfterSec: Math.max(1, cooldownSec) };
}
