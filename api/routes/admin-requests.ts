import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { apiError, queryLiteral, statusResponseSchema } from '../../domain/api-schemas.js';
import { redactParams } from '../../domain/redaction.js';
import { STATUSES } from '../../domain/request-state.js';
import { NotFoundError } from '../../gateway/types.js';
import { answerCommand, commandAnswers, resultOf } from '../commands.js';
import type { ApiDeps } from '../deps.js';
import { HttpError } from '../errors.js';
import { findView } from '../request-access.js';
import { statusBody } from '../views.js';

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
  actor: actorField.describe('The operator deciding: the name the x-admin-token belongs to (ADMIN_TOKENS, or admin)'),
  reason: z.string().trim().min(1).max(2000),
  breakGlass: z
    .boolean()
    .default(false)
    .describe("Decide past the personas and the quorum; otherwise an approval counts as the operator's own"),
});
const cancelBody = z.object({ actor: actorField, reason: z.string().trim().max(2000).optional() });

const listResponseSchema = z.object({
  requests: z.array(
    z.object({
      requestId: z.string(),
      status: z.string().nullable(),
      action: z.string().nullable(),
      requester: z.string().nullable(),
      lineageId: z.string().nullable(),
      createdAt: z.string(),
      expiresAt: z.string().nullable(),
      closedAt: z.string().nullable(),
      workflowStatus: z.string(),
    }),
  ),
  count: z.number().int(),
  limit: z.number().int(),
});
const detailResponseSchema = z.object({
  request: statusResponseSchema.extend({
    requesterId: z.string(),
    reason: z.string().nullable(),
    lineageId: z.string().nullable(),
    policyHash: z.string(),
    params: z.record(z.string(), z.unknown()).describe('As Slack approvers see them (redaction applied)'),
    slack: z.object({ channel: z.string(), ts: z.string() }).nullable(),
  }),
  history: z.array(
    z.object({ eventId: z.number(), time: z.string().nullable(), type: z.string(), summary: z.string() }),
  ),
});

const admin = { tags: ['admin'] };
const refused = {
  400: apiError('invalid_payload'),
  401: apiError('unauthorized'),
  403: apiError('not_allowed').describe('The actor is not the operator the x-admin-token belongs to'),
};

/**
 * Operator routes behind ADMIN_TOKEN: find requests through Temporal visibility, read one with its history, and
 * decide or cancel when Slack is down. Every act is audited with the operator's name.
 */
export function adminRequestRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    for (const routes of [listRoute, detailRoute, decisionRoute, cancelRoute]) await app.register(routes(deps));
  };
}

const config = { auth: 'admin' as const };

function listRoute(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/admin/requests',
      {
        config,
        schema: {
          ...admin,
          summary: 'Find requests (Temporal visibility; eventually consistent)',
          querystring: listQuery,
          response: { 200: listResponseSchema.describe('The matching requests'), ...refused },
        },
      },
      async (req) => {
        const { limit, ...filter } = req.query;
        const requests = await deps.gateway.list(filter, limit);
        return { requests, count: requests.length, limit };
      },
    );
  };
}

function detailRoute(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/admin/requests/:id',
      {
        config,
        schema: {
          ...admin,
          summary: 'One request: its state and a readable history',
          params: idParams,
          response: { 200: detailResponseSchema, ...refused, 404: apiError('not_found') },
        },
      },
      async (req) => {
        const { id } = req.params;
        const view = await findView(deps, id);
        const { input, lines } = await history(deps, id);
        return {
          request: {
            ...statusBody(view, deps.receipts),
            requesterId: view.requesterId,
            reason: view.reason,
            lineageId: input.lineageId,
            policyHash: input.plan.policyHash,
            params: redactParams(view.effectiveParams, input.plan.redaction),
            slack: view.slack,
          },
          history: lines,
        };
      },
    );
  };
}

function decisionRoute(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/api/admin/requests/:id/decision',
      {
        config,
        schema: {
          ...admin,
          summary: 'Approve or deny as an operator (when Slack is down)',
          params: idParams,
          body: decisionBody,
          response: { ...commandAnswers, ...refused },
        },
      },
      async (req, reply) => {
        const { id } = req.params;
        const { decision, actor, reason, breakGlass } = req.body;
        requireOwnName(req.adminName, actor);
        const outcome = await deps.gateway.command(id, 'adminDecision', { decision, actor, reason, breakGlass });
        const result = resultOf(outcome);
        deps.audit.emit({ event: 'admin_decision', requestId: id, actor, decision, reason, breakGlass, result });
        if (outcome.ok && outcome.view) {
          const labels = { action: outcome.view.action, decision, break_glass: String(breakGlass) };
          deps.metrics.adminDecisions.inc(labels);
        }
        return answerCommand(deps, reply, id, outcome);
      },
    );
  };
}

function cancelRoute(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/api/admin/requests/:id/cancel',
      {
        config,
        schema: {
          ...admin,
          summary: 'Cancel an open request as an operator',
          params: idParams,
          body: cancelBody,
          response: { ...commandAnswers, ...refused },
        },
      },
      async (req, reply) => {
        const { id } = req.params;
        const { actor, reason } = req.body;
        requireOwnName(req.adminName, actor);
        const outcome = await deps.gateway.command(id, 'cancel', {
          actor,
          via: 'admin',
          ...(reason ? { reason } : {}),
        });
        deps.audit.emit({
          event: 'admin_cancel',
          requestId: id,
          actor,
          reason: reason ?? null,
          result: resultOf(outcome),
        });
        return answerCommand(deps, reply, id, outcome);
      },
    );
  };
}

/** An operator acts under their own name: the actor is the identity of the x-admin-token, not a free string. */
function requireOwnName(adminName: string | null, actor: string): void {
  if (actor !== adminName) {
    throw new HttpError(403, 'not_allowed', {
      detail: `actor must be the operator the x-admin-token belongs to (${adminName ?? 'none'})`,
    });
  }
}

async function history(deps: ApiDeps, id: string) {
  try {
    return await deps.gateway.history(id);
  } catch (err) {
    if (err instanceof NotFoundError) throw new HttpError(404, 'not_found');
    throw err;
  }
}
