import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../observability/metrics.js';

/** The `route` label of a request no route matched (404s, probes of random paths): one series, not one per URL. */
export const UNMATCHED_ROUTE = 'unmatched';

/** Methods Fastify routes; anything else is labelled `other` so a client cannot mint label values. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/**
 * `http_requests_total{method,route,status}` and `http_request_duration_seconds{method,route}` for every answer of
 * this API process (each replica counts its own; Prometheus sums them). `route` is the route pattern
 * (`/api/schemas/:action`), never the raw URL. Register it before any other hook: a hook that answers early
 * (auth 401, rate limit 429) skips the onRequest hooks after it, and those answers must be counted too.
 * Counted when the response closes, so a hijacked stream (SSE) or a client that hangs up still counts once.
 */
export function registerHttpMetrics(app: FastifyInstance, metrics: Pick<Metrics, 'httpRequests' | 'httpDuration'>) {
  app.addHook('onRequest', (req, reply, done) => {
    const started = process.hrtime.bigint();
    reply.raw.once('close', () => {
      const labels = {
        method: METHODS.has(req.method) ? req.method : 'other',
        route: req.routeOptions.url ?? UNMATCHED_ROUTE,
      };
      metrics.httpRequests.inc({ ...labels, status: String(reply.raw.statusCode) });
      metrics.httpDuration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
    });
    done();
  });
}
