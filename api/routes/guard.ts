import { createHash, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
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
import { evaluatePolicy } from '../../domain/plan.js';
import { isTerminal } from '../../domain/request-state.js';
import type { ApprovalInput, RequestView } from '../../workflows/messages.js';
import type { ApiDeps } from '../deps.js';
import { HttpError } from '../errors.js';
import { AGENT_SECURITY } from '../openapi.js';
import { NotFoundError } from '../requests.js';
import { statusBody, waitBody } from '../views.js';

const DEFAULT_WAIT_SEC = 25;
const MAX_WAIT_SEC = 60;

const waitAnswers = {
  200: stateResponseSchema.describe('The current state; terminal answers carry effectiveParams and the receipt'),
  400: apiError('missing_token', 'invalid_payload'),
  404: apiError('not_found'),
};

export function guardRoutes(deps: ApiDeps) {
  return async (app: FastifyInstance) => {
    const createSchema = {
      summary: 'Request an approval',
      description: 'The policy decides who must approve; the request appears in Slack. Wait for it with the token.',
      tags: ['agent'],
      security: AGENT_SECURITY,
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
    };
    app.post('/api/guard/request', { schema: createSchema }, async (req) => {
      const body = createRequestSchema.parse(req.body ?? {});
      const { 'idempotency-key': key } = createRequestHeadersSchema.parse(req.headers);
      const loaded = deps.policy.loaded;
      if (!loaded) throw new HttpError(503, 'policy_unavailable');
      const result = evaluatePolicy(loaded.policy, loaded.hash, body.action, {
        overrideMaxKeys: deps.config.OVERRIDE_MAX_KEYS,
        overrideMaxChars: deps.config.OVERRIDE_MAX_CHARS,
      });
      if (!result.ok) throw new HttpError(403, 'policy_denied', { detail: result.reason });
      const agent = req.agentName ?? null;
      const now = Date.now();
      const input: ApprovalInput = {
        requestId: key ? idempotentId(agent, key) : `req_${randomUUID().replaceAll('-', '')}`,
        request: body,
        plan: result.plan,
        createdAt: new Date(now).toISOString(),
        expiresAt: new Date(now + result.plan.timeoutSec * 1000).toISOString(),
        lineageId: null,
        agent,
      };
      const started = await deps.gateway.start(input, key !== undefined);
      if (started.created) deps.metrics.approvalRequests.inc({ action: body.action });
      return createdBody(deps, input, started.view);
    });

    const longPoll = {
      summary: 'Wait for the next change (long-poll)',
      description: 'Answers at once if decided, else at the next state change or after timeoutSec.',
      tags: ['agent'],
      querystring: waitQuerySchema,
      response: waitAnswers,
    };
    app.get('/api/guard/wait', { schema: longPoll }, async (req) => {
      const q = waitQuerySchema.parse(req.query);
      const requestId = requestIdFromToken(deps, q.token);
      const timeoutMs = Math.min(q.timeoutSec ?? DEFAULT_WAIT_SEC, MAX_WAIT_SEC) * 1000;
      const view = await findView(deps, requestId);
      if (isTerminal(view.status) || timeoutMs === 0) return waitBody(view, deps.receipts);
      const changed = await deps.gateway.watcher.waitForChange(requestId, view.version, timeoutMs);
      return waitBody(changed ?? view, deps.receipts);
    });

    const current = {
      summary: 'Current state, at once',
      tags: ['agent'],
      body: tokenBodySchema,
      response: waitAnswers,
    };
    app.post('/api/guard/wait', { schema: current }, async (req) => {
      const { token } = tokenBodySchema.parse(req.body ?? {});
      return waitBody(await findView(deps, requestIdFromToken(deps, token)), deps.receipts);
    });

    const status = {
      summary: 'Status of a request',
      tags: ['agent'],
      querystring: statusQuerySchema,
      response: {
        200: statusResponseSchema.describe('The request; terminal answers carry the receipt'),
        400: apiError('missing_requestId'),
        404: apiError('not_found'),
      },
    };
    app.get('/api/guard/status', { schema: status }, async (req) => {
      const { requestId } = statusQuerySchema.parse(req.query);
      if (!requestId) throw new HttpError(400, 'missing_requestId');
      return statusBody(await findView(deps, requestId), deps.receipts);
    });
  };
}

/** Same agent + same key → same request id, on every replica, with no table to consult. */
function idempotentId(agent: string | null, key: string): string {
  return `req_${createHash('sha256')
    .update(`${agent ?? ''}\n${key}`)
    .digest('hex')
    .slice(0, 32)}`;
}

export function requestIdFromToken(deps: ApiDeps, token: string | undefined): string {
  if (!token) throw new HttpError(400, 'missing_token');
  const requestId = deps.tokens.verify(token);
  if (!requestId) throw new HttpError(404, 'not_found');
  return requestId;
}

export async function findView(deps: ApiDeps, requestId: string): Promise<RequestView> {
  try {
    return await deps.gateway.view(requestId);
  } catch (err) {
    if (err instanceof NotFoundError) throw new HttpError(404, 'not_found');
    throw err;
  }
}

function createdBody(deps: ApiDeps, input: ApprovalInput, existing: RequestView | null): CreatedResponse {
  const status = existing?.status ?? (input.plan.personas.length > 0 ? 'awaiting_personas' : 'ready_for_approval');
  const createdAt = existing?.createdAt ?? input.createdAt;
  const expiresAt = existing?.expiresAt ?? input.expiresAt;
  return {
    token: deps.tokens.issue(input.requestId),
    requestId: input.requestId,
    status,
    createdAt,
    expiresAt,
    policy: {
      minApprovals: existing?.minApprovals ?? input.plan.minApprovals,
      requiredPersonas: existing ? Object.keys(existing.personaState) : input.plan.personas.map((p) => p.name),
      timeoutSec: Math.round((Date.parse(expiresAt) - Date.parse(createdAt)) / 1000),
    },
    ...(existing ? { idempotentReplay: true } : {}),
  };
}
