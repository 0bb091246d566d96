import type { WorkflowExecutionInfo } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { apiError } from '../../domain/api-schemas.js';
import { redactParams } from '../../domain/redaction.js';
import { STATUSES } from '../../domain/request-state.js';
import { GUARD_SEARCH_ATTRIBUTE_KEYS as sa } from '../../temporal/search-attributes.js';
import * as msg from '../../workflows/messages.js';
import type { ApiDeps } from '../deps.js';
import { HttpError } from '../errors.js';
import { ADMIN_SECURITY } from '../openapi.js';
import { readableHistory } from '../history.js';
import { NotFoundError } from '../requests.js';
import { statusBody } from '../views.js';
import { queryLiteral, visibilityQuery } from '../visibility.js';
import { requireAdmin } from './admin.js';
import { findView } from './guard.js';
import { answerCommand, commandAnswers } from './lifecycle.js';

const listQuery = z.object({
  status: z.enum(STATUSES).optional(),
  action: queryLiteral.optional(),
  requester: queryLiteral.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});
const idParams = z.object({ id: queryLiteral });
const actorField = z.string().trim().min(1).max(200);
const decisionBody = z.object({
  decision: z.enum(['approve', 'deny']),
  actor: actorField,
  reason: z.string().trim().min(1).max(2000),
});
const cancelBody = z.object({ actor: actorField, reason: z.string().trim().max(2000).optional() });

const listRowSchema = z.object({
  requestId: z.string(),
  status: z.string().nullable(),
  action: z.string().nullable(),
  requester: z.string().nullable(),
  lineageId: z.string().nullable(),
  createdAt: z.string(),
  expiresAt: z.string().nullable(),
  closedAt: z.string().nullable(),
  workflowStatus: z.string(),
});
const listResponseSchema = z.object({
  requests: z.array(listRowSchema),
  count: z.number().int(),
  limit: z.number().int(),
});

const admin = { tags: ['admin'], security: ADMIN_SECURITY };
const refused = { 400: apiError('invalid_payload'), 401: apiError('unauthorized') };

/**
 * Operator routes behind ADMIN_TOKEN: find requests through Temporal visibility, read one with its history, and
 * decide or cancel when Slack is down. Every act is audited with the operator's name.
 */
export function adminRequestRoutes(deps: ApiDeps) {
  return async (app: FastifyInstance) => {
    app.addHook('onRequest', async (req) => requireAdmin(deps, req));

    const list = {
      ...admin,
      summary: 'Find requests (Temporal visibility; eventually consistent)',
      querystring: listQuery,
      response: { 200: listResponseSchema.describe('The matching requests'), ...refused },
    };
    app.get('/api/admin/requests', { schema: list }, async (req) => {
      const q = listQuery.parse(req.query);
      const query = visibilityQuery({
        WorkflowType: 'approvalWorkflow',
        TaskQueue: deps.config.TEMPORAL_TASK_QUEUE,
        GuardStatus: q.status,
        GuardAction: q.action,
        GuardRequester: q.requester,
      });
      const found = await deps.gateway.list(query, q.limit);
      return { requests: found.map(listRow), count: found.length, limit: q.limit };
    });

    const read = {
      ...admin,
      summary: 'One request: its state and a readable history',
      params: idParams,
      response: { 200: { description: '{request, history}' }, ...refused, 404: apiError('not_found') },
    };
    app.get('/api/admin/requests/:id', { schema: read }, async (req) => {
      const { id } = idParams.parse(req.params);
      const view = await findView(deps, id);
      const events = await history(deps, id);
      const started = events[0]?.workflowExecutionStartedEventAttributes;
      const [input] = deps.gateway.decode(started?.input?.payloads ?? []) as [msg.ApprovalInput];
      return {
        request: {
          ...statusBody(view, deps.receipts),
          requesterId: view.requesterId,
          reason: view.reason,
          lineageId: input.lineageId,
          policyHash: input.plan.policyHash,
          // Operators see the params as Slack approvers do.
          params: redactParams(view.effectiveParams, input.plan.redaction),
          slack: view.slack,
        },
        history: readableHistory(events, (p) => deps.gateway.decode(p)),
      };
    });

    const decide = {
      ...admin,
      summary: 'Approve or deny as an operator (when Slack is down)',
      params: idParams,
      body: decisionBody,
      response: { ...commandAnswers, ...refused },
    };
    app.post('/api/admin/requests/:id/decision', { schema: decide }, async (req, reply) => {
      const { id } = idParams.parse(req.params);
      const { decision, actor, reason } = decisionBody.parse(req.body ?? {});
      const outcome = await deps.gateway.command(id, msg.adminDecisionUpdate, msg.adminDecisionSignal, {
        decision,
        actor,
        reason,
      });
      deps.audit.emit({ event: 'admin_decision', requestId: id, actor, decision, reason, result: resultOf(outcome) });
      return answerCommand(deps, reply, id, outcome);
    });

    const cancel = {
      ...admin,
      summary: 'Cancel an open request as an operator',
      params: idParams,
      body: cancelBody,
      response: { ...commandAnswers, ...refused },
    };
    app.post('/api/admin/requests/:id/cancel', { schema: cancel }, async (req, reply) => {
      const { id } = idParams.parse(req.params);
      const { actor, reason } = cancelBody.parse(req.body ?? {});
      const input = { actor, ...(reason ? { reason } : {}) };
      const outcome = await deps.gateway.command(id, msg.cancelUpdate, msg.cancelSignal, input);
      deps.audit.emit({
        event: 'admin_cancel',
        requestId: id,
        actor,
        reason: reason ?? null,
        result: resultOf(outcome),
      });
      return answerCommand(deps, reply, id, outcome);
    });
  };
}

function listRow(info: WorkflowExecutionInfo): z.infer<typeof listRowSchema> {
  const attrs = info.typedSearchAttributes;
  return {
    requestId: info.workflowId,
    status: attrs.get(sa.GuardStatus) ?? null,
    action: attrs.get(sa.GuardAction) ?? null,
    requester: attrs.get(sa.GuardRequester) ?? null,
    lineageId: attrs.get(sa.GuardLineageId) ?? null,
    createdAt: info.startTime.toISOString(),
    expiresAt: attrs.get(sa.GuardExpiresAt)?.toISOString() ?? null,
    closedAt: info.closeTime?.toISOString() ?? null,
    workflowStatus: info.status.name,
  };
}

async function history(deps: ApiDeps, id: string) {
  try {
    return await deps.gateway.history(id);
  } catch (err) {
    if (err instanceof NotFoundError) throw new HttpError(404, 'not_found');
    throw err;
  }
}

function resultOf(outcome: Awaited<ReturnType<ApiDeps['gateway']['command']>>): string {
  if (!outcome.ok) return outcome.reason;
  return outcome.view ? 'applied' : 'queued';
}
