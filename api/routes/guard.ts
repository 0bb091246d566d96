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
} from '../../domain/api-schemas.js';
import { isTerminal, postSettled } from '../../domain/request-state.js';
import type { ApiDeps } from '../deps.js';
import { HttpError } from '../errors.js';
import { createRequest } from '../create-request.js';
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
            409: apiError('idempotency_conflict').describe(
              'The Idempotency-Key was used with another action, params or origin',
            ),
            429: apiError('rate_limited'),
            503: apiError('policy_unavailable', 'temporal_unavailable'),
          },
        },
      },
      async (req) =>
        createRequest(deps, req.body, { key: req.headers['idempotency-key'], agent: req.agentName ?? null }),
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
        // A waiter follows the request from the persisted state: what a task in flight changes is its next change.
        const view = await findView(deps, requestId, { persisted: timeoutMs > 0 });
        if (isTerminal(view.status) || timeoutMs === 0) return waitBody(view, deps.receipts);
        const changed = await deps.gateway.waitForChange(requestId, view.version, timeoutMs);
        // The same version again is news only for a post that was pending (a stuck flag, say, is the first read's).
        const fresher = changed && (changed.version > view.version || !postSettled(view));
        return waitBody(fresher ? changed : view, deps.receipts);
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
