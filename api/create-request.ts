import { createHash, randomUUID } from 'node:crypto';
import type { CreatedResponse } from '../domain/api-schemas.js';
import { compileParamsSchema } from '../domain/json-schema.js';
import { canonicalJson, payloadHash } from '../domain/payload-hash.js';
import type { Plan } from '../domain/plan.js';
import type { CreateRequest } from '../domain/request-schema.js';
import { initialStatus } from '../domain/request-state.js';
import type { ApprovalInput, RequestView } from '../workflows/messages.js';
import { keyedRequestId } from '../gateway/ids.js';
import type { ApiDeps } from './deps.js';
import { HttpError } from './errors.js';
import { currentPlan } from './plans.js';

/**
 * `POST /api/guard/request`: the policy's plan, the params checked against the action's `paramsSchema`, and the
 * workflow started. A repeated Idempotency-Key finds the first request, and is refused when the body differs.
 */
export async function createRequest(
  deps: ApiDeps,
  body: CreateRequest,
  opts: { key: string | undefined; agent: string | null },
): Promise<CreatedResponse> {
  const plan = currentPlan(deps, body.action);
  checkParams(plan, body.params);
  const now = Date.now();
  const input: ApprovalInput = {
    requestId: opts.key
      ? keyedRequestId(idempotentId(opts.agent, opts.key))
      : `req_${randomUUID().replaceAll('-', '')}`,
    request: body,
    plan,
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + plan.timeoutSec * 1000).toISOString(),
    lineageId: null,
    agent: opts.agent,
  };
  const started = await deps.gateway.start(input, { idempotent: opts.key !== undefined });
  if (started.created) {
    deps.metrics.approvalRequests.inc({ action: body.action });
    return createdBody(deps, input, null);
  }
  const { existing, view } = started;
  const differs = differences(existing.request, body);
  if (differs.length > 0) {
    throw new HttpError(409, 'idempotency_conflict', {
      detail: `this Idempotency-Key was used for another request (its ${differs.join(', ')} differ); use a new key`,
      requestId: existing.requestId,
    });
  }
  return createdBody(deps, existing, view);
}

/** 400 invalid_payload naming each param that fails the action's paramsSchema. */
function checkParams(plan: Plan, params: Record<string, unknown>): void {
  if (!plan.paramsSchema) return;
  const problems = compileParamsSchema(plan.paramsSchema)(params);
  if (!problems) return;
  const details = problems.map((p) => ({ path: ['params', ...p.path].join('.'), message: p.message }));
  throw new HttpError(400, 'invalid_payload', { details });
}

/** What an idempotent replay must repeat: the action, the params and the origin. */
function differences(first: CreateRequest, again: CreateRequest): string[] {
  const parts: Array<[string, unknown, unknown]> = [
    ['action', first.action, again.action],
    ['params', first.params, again.params],
    ['origin', first.meta.origin, again.meta.origin],
  ];
  return parts.filter(([, a, b]) => canonicalJson(a) !== canonicalJson(b)).map(([name]) => name);
}

/** Same agent + same key → same workflow id, on every replica, with no table to consult (see gateway/ids.ts). */
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
    payloadHash: existing?.payloadHash ?? payloadHash(input.request.params),
    policy: {
      minApprovals: existing?.minApprovals ?? input.plan.minApprovals,
      requiredPersonas: existing ? Object.keys(existing.personaState) : input.plan.personas.map((p) => p.name),
      timeoutSec: Math.round((Date.parse(expiresAt) - Date.parse(createdAt)) / 1000),
    },
    ...(existing ? { idempotentReplay: true as const } : {}),
  };
}
