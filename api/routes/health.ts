import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiDeps } from '../deps.js';

const readinessSchema = z.object({
  status: z.enum(['ok', 'degraded']),
  policy: z.enum(['loaded', 'missing']),
  temporal: z.enum(['ok', 'error']),
});

const HEALTH_DEADLINE_MS = 1500;
const text = (description: string) => ({ description, content: { 'text/plain': { schema: z.string() } } });
const ops = { tags: ['operations'] };
const config = { auth: 'public' as const, rateLimit: false as const };

/** Probes and metrics: never rate limited, never authenticated. */
export function healthRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/healthz',
      { config, schema: { ...ops, summary: 'Liveness', response: { 200: text('ok') } } },
      async (_req, reply) => reply.type('text/plain').send('ok'),
    );

    app.get(
      '/readyz',
      {
        config,
        schema: {
          ...ops,
          summary: 'Readiness: policy loaded and Temporal reachable',
          response: { 200: readinessSchema.describe('Ready'), 503: readinessSchema.describe('Degraded') },
        },
      },
      async (_req, reply) => {
        const policy = deps.policy.loaded ? 'loaded' : 'missing';
        const temporal = await deps.gateway.checkHealth(HEALTH_DEADLINE_MS).then(
          () => 'ok' as const,
          () => 'error' as const,
        );
        const ok = policy === 'loaded' && temporal === 'ok';
        return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'degraded', policy, temporal });
      },
    );

    app.get(
      '/metrics',
      { config, schema: { ...ops, summary: 'Prometheus metrics', response: { 200: text('Prometheus text format') } } },
      async (_req, reply) => {
        const registry = deps.metrics.registry;
        return reply.type(registry.contentType).send(await registry.metrics());
      },
    );
  };
}
