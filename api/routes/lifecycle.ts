import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { apiError, cancelBodySchema, queryLiteral, rerequestResponseSchema } from '../../domain/api-schemas.js';
import { initialStatus, isTerminal } from '../../domain/request-state.js';
import { answerCommand, commandAnswers } from '../commands.js';
import type { ApiDeps } from '../deps.js';
import { HttpError } from '../errors.js';
import { startReRequest } from '../lineage.js';
import { currentPlan } from '../plans.js';
import { findView, requestIdFromToken } from '../request-access.js';

const rerequestBody = z.object({ originalRequestId: queryLiteral, actor: z.string().trim().min(1).max(200) });

/** Cancel and re-request (SPEC sections 2 and 3). */
export function lifecycleRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    await app.register(cancelRoute(deps));
    await app.register(rerequestRoute(deps));
  };
}

function cancelRoute(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/api/guard/cancel',
      {
        config: { auth: 'agent' },
        schema: {
          summary: 'Cancel an open request (the requester, with its token)',
          tags: ['lifecycle'],
          body: cancelBodySchema,
          response: {
            ...commandAnswers,
            400: apiError('missing_token', 'invalid_payload'),
            401: apiError('unauthorized'),
          },
        },
      },
      async (req, reply) => {
        const { token, reason } = req.body;
        const requestId = requestIdFromToken(deps, token);
        const view = await findView(deps, requestId);
        if (isTerminal(view.status)) throw new HttpError(409, 'already_decided');
        const input = { actor: view.requesterId, ...(reason ? { reason } : {}) };
        return answerCommand(deps, reply, requestId, await deps.gateway.command(requestId, 'cancel', input));
      },
    );
  };
}

function rerequestRoute(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/api/guard/rerequest',
      {
        config: { auth: 'agent' },
        schema: {
          summary: 'Re-request a decided request under the current policy',
          tags: ['lifecycle'],
          body: rerequestBody,
          response: {
            200: rerequestResponseSchema.describe("The new request, in the original one's lineage"),
            400: apiError('invalid_payload'),
            401: apiError('unauthorized'),
            403: apiError('not_allowed', 'policy_denied'),
            404: apiError('not_found'),
            429: apiError('cooldown', 'rate_limited'),
          },
        },
      },
      async (req, reply) => {
        const { originalRequestId, actor } = req.body;
        const original = await findView(deps, originalRequestId);
        const originalInput = await deps.gateway.input(originalRequestId);
        if (!isTerminal(original.status)) {
          throw new HttpError(403, 'not_allowed', { detail: 'the request is still open' });
        }
        if (!originalInput.plan.reRequest.allowed) {
          throw new HttpError(403, 'not_allowed', { detail: `action '${original.action}' does not allow re-requests` });
        }
        const plan = currentPlan(deps, originalInput.request.action);
        const started = await startReRequest(deps.gateway, { original: originalInput, plan, agent: req.agentName });
        if (!started.ok) {
          const { error, retryAfterSec } = started;
          return reply.code(429).header('retry-after', String(retryAfterSec)).send({ error, retryAfterSec });
        }
        const { input } = started;
        deps.metrics.approvalRequests.inc({ action: input.request.action });
        deps.audit.emit({
          event: 'request_rerequested',
          requestId: input.requestId,
          action: input.request.action,
          actor,
          originalRequestId,
          lineageId: input.lineageId,
        });
        return {
          token: deps.tokens.issue(input.requestId),
          requestId: input.requestId,
          lineageId: input.lineageId ?? originalRequestId,
          originalRequestId,
          status: initialStatus(plan),
          createdAt: input.createdAt,
          expiresAt: input.expiresAt,
          policy: { minApprovals: plan.minApprovals, requiredPersonas: plan.personas.map((p) => p.name) },
        };
      },
    );
  };
}
