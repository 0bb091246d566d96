import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { apiError, stateResponseSchema, tokenQuerySchema } from '../../domain/api-schemas.js';
import { isTerminal, postSettled } from '../../domain/request-state.js';
import type { RequestView } from '../../workflows/messages.js';
import type { ApiDeps } from '../deps.js';
import { findView, requestIdFromToken } from '../request-access.js';
import { waitBody } from '../views.js';

/** How long a client should wait before reconnecting after `event: error` (the SSE `retry:` field). */
const UNAVAILABLE_RETRY_MS = 2000;
/**
 * A stream that connects before the request's first Slack post settled holds its first event this long for it (the
 * post changes no version, so the stream would not show the message's outcome until the next change).
 */
const FIRST_POST_WAIT_MS = 2000;

/** `GET /api/guard/wait-sse`: the request's states as Server-Sent Events (SPEC section 3). */
export function streamRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    // Open event streams would hold the server open on shutdown; end them first.
    const streams = new Set<() => void>();
    app.addHook('preClose', async () => {
      for (const end of [...streams]) end();
    });

    app.get(
      '/api/guard/wait-sse',
      {
        schema: {
          summary: 'Stream state changes (Server-Sent Events)',
          description:
            '`event: state` with the wait body at connect and on each change, `: heartbeat` comments, closed after ' +
            'the outcome. Reconnect on a dropped stream: the first event is always the current state. When Temporal ' +
            'becomes unreachable the stream ends at once with `event: error` (data `{"error":"temporal_unavailable"}`, ' +
            'and a `retry:` delay): reconnect after it.',
          tags: ['agent'],
          querystring: tokenQuerySchema,
          produces: ['text/event-stream'],
          response: {
            200: stateResponseSchema.describe('One `state` event per change; the stream ends after a terminal one'),
            400: apiError('missing_token'),
            404: apiError('not_found'),
          },
        },
      },
      async (req, reply) => {
        // The first event is the persisted state; what a task in flight changes is the next event.
        const view = await findView(deps, requestIdFromToken(deps, req.query.token), { persisted: true });
        reply.hijack();
        const end = streamStates(deps, reply.raw, view);
        streams.add(end);
        reply.raw.on('close', () => streams.delete(end));
      },
    );
  };
}

/**
 * One `state` event per new version (at connect — once the first Slack post settled, FIRST_POST_WAIT_MS at most —
 * then on each change), a comment heartbeat, and the end of the stream after a terminal state. Changes come from the gateway's shared watch, so a stream costs no polling of its
 * own. Returns a function that ends the stream.
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
  // The first event, held while its post is pending (the watch hands the settled post over in the same version).
  let held: RequestView | null = awaitsPost(first) ? first : null;
  const holdTimer = held ? setTimeout(() => flush(), FIRST_POST_WAIT_MS) : null;
  const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), deps.config.SSE_HEARTBEAT_MS);
  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    if (holdTimer) clearTimeout(holdTimer);
    unsubscribe?.();
    res.end();
  };
  const write = (view: RequestView) => {
    if (ended || view.version <= sentVersion) return;
    sentVersion = view.version;
    res.write(`event: state\nid: ${view.version}\ndata: ${JSON.stringify(waitBody(view, deps.receipts))}\n\n`);
    if (isTerminal(view.status)) end();
  };
  const flush = () => {
    const view = held;
    held = null;
    if (holdTimer) clearTimeout(holdTimer);
    if (view) write(view);
  };
  const send = (view: RequestView) => {
    if (!held) return write(view);
    if (view.version < held.version) return;
    held = view;
    if (view.version > first.version || !awaitsPost(view)) flush();
  };
  // Temporal unreachable: say so and end, rather than hold a stream whose state may be stale; the client reconnects.
  const fail = () => {
    if (ended) return;
    const body = { error: 'temporal_unavailable', detail: 'the workflow service cannot be reached; retry shortly' };
    res.write(`retry: ${UNAVAILABLE_RETRY_MS}\nevent: error\ndata: ${JSON.stringify(body)}\n\n`);
    end();
  };
  res.on('close', end);
  if (!held) write(first);
  if (!ended) unsubscribe = deps.gateway.subscribe(first.requestId, send, fail);
  // The gateway may hand over a terminal view inside subscribe(), before `unsubscribe` was assigned.
  if (ended) unsubscribe?.();
  return end;
}

/** An open request whose first Slack post has not settled yet (posted, failed or skipped). */
function awaitsPost(view: RequestView): boolean {
  return !isTerminal(view.status) && !postSettled(view);
}
