import { createHash, randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import {
  apiError,
  createdResponseSchema,
  createRequestHeadersSchema,
  createRequestSchema,
  stateResponseSchema,
  statusQuerySchema,
  statusResponseSchema,
  tokenBodySchema,
  waitQuerySchema,
  type CreatedResponse,
} from '../../domain/api-schemas.js';
import { initialStatus, isTerminal } from '../../domain/request-state.js';
import type { ApprovalInput, RequestView } from '../../workflows/messages.js';
import type { ApiDeps } from '../deps.js';
import { HttpError } from '../errors.js';
import { currentPlan } from '../plans.js';
import { findView, requestIdFromToken } from '../request-access.js';
import { statusBody, waitBody } from '../views.js';

const DEFAULT_WAIT_SEC = 25;
const MAX_WAIT_SEC = 60;

const waitAnswers = {
  200: stateResponseSchema.describe('The current state; terminal answers carry effectiveParams and the receipt'),
  400: apiError('missing_token', 'invalid_payload'),
  404: apiError('not_found'),
};

/** Create a request, wait for it (long-poll or at once) and read its status (SPEC section 3). */
export function guardRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    await app.register(createRoute(deps));
    await app.register(waitRoutes(deps));
    await app.register(statusRoute(deps));
  };
}

function createRoute(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/api/guard/request',
      {
        config: { auth: 'agent' },
        schema: {
          summary: 'Request an approval',
          description: 'The policy decides who must approve; the request appears in Slack. Wait for it with the token.',
          tags: ['agent'],
          body: createRequestSchema,
          headers: createRequestHeadersSchema,
          response: {
            200: createdResponseSchema.describe('The request, new or found again by its Idempotency-Key'),
            400: apiError('invalid_payload'),
            401: apiError('unauthorized'),
            403: apiError('policy_denied'),
            429: apiError('rate_limited'),
            503: apiError('policy_unavailable', 'temporal_unavailable'),
          },
        },
      },
      async (req) => {
        const body = req.body;
        const key = req.headers['idempotency-key'];
        const plan = currentPlan(deps, body.action);
        const agent = req.agentName ?? null;
        const now = Date.now();
        const input: ApprovalInput = {
          requestId: key ? idempotentId(agent, key) : `req_${randomUUID().replaceAll('-', '')}`,
          request: body,
          plan,
          createdAt: new Date(now).toISOString(),
          expiresAt: new Date(now + plan.timeoutSec * 1000).toISOString(),
          lineageId: null,
          agent,
        };
        const started = await deps.gateway.start(input, { idempotent: key !== undefined });
        if (started.created) deps.metrics.approvalRequests.inc({ action: body.action });
        return createdBody(deps, input, started.created ? null : started.view);
      },
    );
  };
}

function waitRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/guard/wait',
      {
        schema: {
          summary: 'Wait for the next change (long-poll)',
          description: 'Answers at once if decided, else at the next state change or after timeoutSec.',
          tags: ['agent'],
          querystring: waitQuerySchema,
          response: waitAnswers,
        },
      },
      async (req) => {
        const requestId = requestIdFromToken(deps, req.query.token);
        const timeoutMs = Math.min(req.query.timeoutSec ?? DEFAULT_WAIT_SEC, MAX_WAIT_SEC) * 1000;
        const view = await findView(deps, requestId);
        if (isTerminal(view.status) || timeoutMs === 0) return waitBody(view, deps.receipts);
        const changed = await deps.gateway.waitForChange(requestId, view.version, timeoutMs);
        return waitBody(changed ?? view, deps.receipts);
      },
    );

    app.post(
      '/api/guard/wait',
      {
        schema: {
          summary: 'Current state, at once',
          tags: ['agent'],
          body: tokenBodySchema,
          response: waitAnswers,
        },
      },
      async (req) => waitBody(await findView(deps, requestIdFromToken(deps, req.body.token)), deps.receipts),
    );
  };
}

function statusRoute(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/guard/status',
      {
        schema: {
          summary: 'Status of a request',
          tags: ['agent'],
          querystring: statusQuerySchema,
          response: {
            200: statusResponseSchema.describe('The request; terminal answers carry the receipt'),
            400: apiError('missing_requestId'),
            404: apiError('not_found'),
          },
        },
      },
      async (req) => {
        const { requestId } = req.query;
        if (!requestId) throw new HttpError(400, 'missing_requestId');
        return statusBody(await findView(deps, requestId), deps.receipts);
      },
    );
  };
}

/** Same agent + same key → same request id, on every replica, with no table to consult. */
function idempotentId(agent: string | null, key: string): string {
  return `req_${createHash('sha256')
    .update(`${agent ?? ''}\n${key}`)
    .digest('hex')
    .slice(0, 32)}`;
}

function createdBody(deps: ApiDeps, input: ApprovalInput, existing: RequestView | null): CreatedResponse {
  const createdAt = existing?.createdAt ?? input.createdAt;
  const expiresAt = existing?.expiresAt ?? input.expiresAt;
  return {
    token: deps.tokens.issue(input.requestId),
    requestId: input.requestId,
    status: existing?.status ?? initialStatus(input.plan),
    createdAt,
    expiresAt,
    policy: {
      minApprovals: existing?.minApprovals ?? input.plan.minApprovals,
      requiredPersonas: existing ? Object.keys(existing.personaState) : input.plan.personas.map((p) => p.name),
      timeoutSec: Math.round((Date.parse(expiresAt) - Date.parse(createdAt)) / 1000),
    },
    ...(existing ? { idempotentReplay: true as const } : {}),
  };
}
