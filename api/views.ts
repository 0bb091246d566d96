import type { StateResponse, StatusResponse } from '../domain/api-schemas.js';
import { isTerminal } from '../domain/request-state.js';
import type { RequestView } from '../workflows/messages.js';
import type { ReceiptSigner } from './receipts.js';

function approverIds(view: RequestView): string[] {
  return view.approvals.map((a) => a.userId);
}

/** Views frozen before a field existed read as its default. */
function decision(view: RequestView) {
  return {
    decidedVia: view.decidedVia ?? null,
    breakGlass: view.breakGlass ?? false,
    notification: view.notification ?? { slack: 'pending' as const },
    ...(view.stuck ? { stuck: view.stuck } : {}),
  };
}

/**
 * Body of `GET|POST /api/guard/wait` and of each SSE `state` event: terminal answers carry the effective params
 * the agent may run and a signed receipt of the decision.
 */
export function waitBody(view: RequestView, receipts: ReceiptSigner): StateResponse {
  const terminal = isTerminal(view.status);
  return {
    requestId: view.requestId,
    action: view.action,
    status: view.status,
    terminal,
    approvers: approverIds(view),
    approvalsCount: view.approvals.length,
    minApprovals: view.minApprovals,
    personaState: view.personaState,
    escalated: view.escalated,
    expiresAt: view.expiresAt,
    decidedAt: view.decidedAt,
    decidedBy: view.decidedBy,
    reason: view.reason,
    payloadHash: view.payloadHash,
    version: view.version,
    ...decision(view),
    ...(terminal
      ? { effectiveParams: view.effectiveParams, overridden: view.overrides.length > 0, receipt: receipts.issue(view) }
      : {}),
  };
}

/** Body of `GET /api/guard/status` (SPEC section 3); terminal answers carry the signed receipt. */
export function statusBody(view: RequestView, receipts: ReceiptSigner): StatusResponse {
  const receipt = receipts.issue(view);
  return {
    requestId: view.requestId,
    action: view.action,
    status: view.status,
    approvalsCount: view.approvals.length,
    minApprovals: view.minApprovals,
    approvers: approverIds(view),
    requiredPersonas: Object.keys(view.personaState),
    personaState: view.personaState,
    escalated: view.escalated,
    createdAt: view.createdAt,
    expiresAt: view.expiresAt,
    decidedAt: view.decidedAt,
    decidedBy: view.decidedBy,
    payloadHash: view.payloadHash,
    overrides: view.overrides.map((o) => ({ by: o.by, at: o.at, keys: Object.keys(o.diff) })),
    version: view.version,
    ...decision(view),
    ...(receipt ? { receipt } : {}),
  };
}
