import { createHash, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { evaluatePolicy } from '../../domain/plan.js';
import { createRequestSchema } from '../../domain/request-schema.js';
import { isTerminal } from '../../domain/request-state.js';
import type { ApprovalInput, RequestView } from '../../workflows/messages.js';
import type { ApiDeps } from '../deps.js';
import { HttpError } from '../errors.js';
import { NotFoundError } from '../requests.js';
import { statusBody, waitBody } from '../views.js';

const DEFAULT_WAIT_SEC = 25;
const MAX_WAIT_SEC = 60;

const waitQuery = z.object({
  token: z.string().optional(),
  timeoutSec: z.coerce.number().min(0).optional(),
});
const waitPostBody = z.object({ token: z.string().optional() }).loose();
const statusQuery = z.object({ requestId: z.string().optional() });
const idempotencyKey = z.string().min(1).max(255);

export function guardRoutes(deps: ApiDeps) {
  return async (app: FastifyInstance) => {
    app.post('/api/guard/request', async (req) => {
      const body = createRequestSchema.parse(req.body ?? {});
      const keyHeader = req.headers['idempotency-key'];
      const key = keyHeader === undefined ? undefined : idempotencyKey.parse(keyHeader);
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

    app.get('/api/guard/wait', async (req) => {
      const q = waitQuery.parse(req.query);
      const requestId = requestIdFromToken(deps, q.token);
      const timeoutMs = Math.min(q.timeoutSec ?? DEFAULT_WAIT_SEC, MAX_WAIT_SEC) * 1000;
      const view = await findView(deps, requestId);
      if (isTerminal(view.status) || timeoutMs === 0) return waitBody(view, deps.receipts);
      const changed = await deps.gateway.watcher.waitForChange(requestId, view.version, timeoutMs);
      return waitBody(changed ?? view, deps.receipts);
    });

    app.post('/api/guard/wait', async (req) => {
      const { token } = waitPostBody.parse(req.body ?? {});
      return waitBody(await findView(deps, requestIdFromToken(deps, token)), deps.receipts);
    });

    app.get('/api/guard/status', async (req) => {
      const { requestId } = statusQuery.parse(req.query);
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

function createdBody(deps: ApiDeps, input: ApprovalInput, existing: RequestView | null) {
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
