import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import {
  apiError,
  cancelBodySchema,
  queuedResponseSchema,
  receiptKeyResponseSchema,
  rerequestResponseSchema,
  stateResponseSchema,
  tokenQuerySchema,
  verifyBodySchema,
  verifyResponseSchema,
} from '../../domain/api-schemas.js';
import { evaluatePolicy } from '../../domain/plan.js';
import { isTerminal, REFUSAL_REASONS } from '../../domain/request-state.js';
import { cancelSignal, cancelUpdate, type ApprovalInput, type RequestView } from '../../workflows/messages.js';
import type { ApiDeps } from '../deps.js';
import { HttpError } from '../errors.js';
import { AGENT_SECURITY } from '../openapi.js';
import { startReRequest } from '../lineage.js';
import type { CommandOutcome } from '../requests.js';
import { waitBody } from '../views.js';
import { queryLiteral } from '../visibility.js';
import { findView, requestIdFromToken } from './guard.js';

const rerequestBody = z.object({ originalRequestId: queryLiteral, actor: z.string().trim().min(1).max(200) });

/** The answers of a command sent to the workflow (see answerCommand). */
export const commandAnswers = {
  200: stateResponseSchema.describe('Applied: the new state'),
  202: queuedResponseSchema.describe('The workflow could not answer in time: queued as a durable signal'),
  404: apiError('not_found'),
  409: apiError(...REFUSAL_REASONS),
};

/** Cancel, re-request, the SSE stream and decision receipts (SPEC sections 2 and 3). */
export function lifecycleRoutes(deps: ApiDeps) {
  return async (app: FastifyInstance) => {
    // Open event streams would hold the server open on shutdown; end them first.
    const streams = new Set<() => void>();
    app.addHook('preClose', async () => {
      for (const end of [...streams]) end();
    });

    const cancel = {
      summary: 'Cancel an open request (the requester, with its token)',
      tags: ['lifecycle'],
      security: AGENT_SECURITY,
      body: cancelBodySchema,
      response: { ...commandAnswers, 400: apiError('missing_token', 'invalid_payload'), 401: apiError('unauthorized') },
    };
    app.post('/api/guard/cancel', { schema: cancel }, async (req, reply) => {
      const { token, reason } = cancelBodySchema.parse(req.body ?? {});
      const requestId = requestIdFromToken(deps, token);
      const view = await findView(deps, requestId);
      if (isTerminal(view.status)) throw new HttpError(409, 'already_decided');
      const input = { actor: view.requesterId, ...(reason ? { reason } : {}) };
      const outcome = await deps.gateway.command(requestId, cancelUpdate, cancelSignal, input);
      return answerCommand(deps, reply, requestId, outcome);
    });

    const rerequest = {
      summary: 'Re-request a decided request under the current policy',
      tags: ['lifecycle'],
      security: AGENT_SECURITY,
      body: rerequestBody,
      response: {
        200: rerequestResponseSchema.describe("The new request, in the original one's lineage"),
        400: apiError('invalid_payload'),
        401: apiError('unauthorized'),
        403: apiError('not_allowed', 'policy_denied'),
        404: apiError('not_found'),
        429: apiError('cooldown', 'rate_limited'),
      },
    };
    app.post('/api/guard/rerequest', { schema: rerequest }, async (req, reply) => {
      const { originalRequestId, actor } = rerequestBody.parse(req.body ?? {});
      const original = await findView(deps, originalRequestId);
      const originalInput = await deps.gateway.input(originalRequestId);
      if (!isTerminal(original.status))
        throw new HttpError(403, 'not_allowed', { detail: 'the request is still open' });
      if (!originalInput.plan.reRequest.allowed) {
        throw new HttpError(403, 'not_allowed', { detail: `action '${original.action}' does not allow re-requests` });
      }
      const plan = currentPlan(deps, originalInput.request.action);
      const lineageId = originalInput.lineageId ?? originalInput.requestId;
      const started = await startReRequest(deps.gateway, {
        lineageId,
        originalStartMs: Date.parse(originalInput.createdAt),
        cooldownSec: originalInput.plan.reRequest.cooldownSec,
        now: Date.now,
        build: (requestId, nowMs): ApprovalInput => ({
          requestId,
          request: originalInput.request,
          plan,
          createdAt: new Date(nowMs).toISOString(),
          expiresAt: new Date(nowMs + plan.timeoutSec * 1000).toISOString(),
          lineageId,
          agent: req.agentName ?? null,
        }),
      });
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
        lineageId,
      });
      return {
        token: deps.tokens.issue(input.requestId),
        requestId: input.requestId,
        lineageId,
        originalRequestId,
        status: plan.personas.length > 0 ? 'awaiting_personas' : 'ready_for_approval',
        createdAt: input.createdAt,
        expiresAt: input.expiresAt,
        policy: { minApprovals: plan.minApprovals, requiredPersonas: plan.personas.map((p) => p.name) },
      };
    });

    const stream = {
      summary: 'Stream state changes (Server-Sent Events)',
      description:
        '`event: state` with the wait body at connect and on each change, `: heartbeat` comments, closed after the ' +
        'outcome. Reconnect on a dropped stream: the first event is always the current state.',
      tags: ['agent'],
      querystring: tokenQuerySchema,
      produces: ['text/event-stream'],
      response: {
        200: stateResponseSchema.describe('One `state` event per change; the stream ends after a terminal one'),
        400: apiError('missing_token'),
        404: apiError('not_found'),
      },
    };
    app.get('/api/guard/wait-sse', { schema: stream }, async (req, reply) => {
      const { token } = tokenQuerySchema.parse(req.query);
      const view = await findView(deps, requestIdFromToken(deps, token));
      reply.hijack();
      const end = streamStates(deps, reply.raw, view);
      streams.add(end);
      reply.raw.on('close', () => streams.delete(end));
    });

    const verify = {
      summary: 'Verify a decision receipt (offline: see receipt-key)',
      tags: ['receipts'],
      body: verifyBodySchema,
      response: { 200: verifyResponseSchema.describe('The claims, or valid: false'), 400: apiError('invalid_payload') },
    };
    app.post('/api/guard/verify', { schema: verify }, async (req) => {
      const { receipt } = verifyBodySchema.parse(req.body ?? {});
      return deps.receipts.verify(receipt) ?? { valid: false };
    });

    const receiptKey = {
      summary: 'The public key that signs receipts (Ed25519)',
      tags: ['receipts'],
      response: { 200: receiptKeyResponseSchema.describe('PEM and JWK; pin it in the executor') },
    };
    app.get('/api/guard/receipt-key', { schema: receiptKey }, async () => deps.receipts.publicKey());
  };
}

/** A re-request is judged by today's policy, not the one frozen into the original. */
function currentPlan(deps: ApiDeps, action: string) {
  const loaded = deps.policy.loaded;
  if (!loaded) throw new HttpError(503, 'policy_unavailable');
  const result = evaluatePolicy(loaded.policy, loaded.hash, action, {
    overrideMaxKeys: deps.config.OVERRIDE_MAX_KEYS,
    overrideMaxChars: deps.config.OVERRIDE_MAX_CHARS,
  });
  if (!result.ok) throw new HttpError(403, 'policy_denied', { detail: result.reason });
  return result.plan;
}

/** Maps a workflow command's outcome: applied → the new state, queued (worker away) → 202, refused → its code. */
export function answerCommand(deps: ApiDeps, reply: FastifyReply, requestId: string, outcome: CommandOutcome) {
  if (outcome.ok && outcome.view) return waitBody(outcome.view, deps.receipts);
  if (outcome.ok) return reply.code(202).send({ requestId, queued: true });
  if (outcome.reason === 'not_found') throw new HttpError(404, 'not_found');
  throw new HttpError(409, outcome.reason, { message: outcome.message });
}

/**
 * Server-Sent Events: one `state` event per new version (at connect, then on each change), a comment heartbeat,
 * and the end of the stream after a terminal state. Changes come from the shared state watcher, so a stream
 * costs no polling of its own. Returns a function that ends the stream.
 */
function streamStates(deps: ApiDeps, res: ServerResponse, first: RequestView): () => void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    // Reverse proxies (nginx) would otherwise buffer the stream.
    'x-accel-buffering': 'no',
  });
  let sentVersion = 0;
  let ended = false;
  let unsubscribe: (() => void) | null = null;
  const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), deps.config.SSE_HEARTBEAT_MS);
  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    unsubscribe?.();
    res.end();
  };
  const send = (view: RequestView) => {
    if (ended || view.version <= sentVersion) return;
    sentVersion = view.version;
    res.write(`event: state\nid: ${view.version}\ndata: ${JSON.stringify(waitBody(view, deps.receipts))}\n\n`);
    if (isTerminal(view.status)) end();
  };
  res.on('close', end);
  send(first);
  if (!ended) unsubscribe = deps.gateway.watcher.subscribe(first.requestId, send);
  // The watcher may hand over a terminal view inside subscribe(), before `unsubscribe` was assigned.
  if (ended) unsubscribe?.();
  return end;
}
