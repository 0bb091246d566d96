import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ApiDeps } from '../deps.js';

const readinessSchema = z.object({
  status: z.enum(['ok', 'degraded']),
  policy: z.enum(['loaded', 'missing']),
  temporal: z.enum(['ok', 'error']),
});

const text = (description: string) => ({ description, content: { 'text/plain': { schema: { type: 'string' } } } });
const ops = { tags: ['operations'] };

export function healthRoutes(deps: ApiDeps) {
  return async (app: FastifyInstance) => {
    const health = { ...ops, summary: 'Liveness', response: { 200: text('ok') } };
    app.get('/healthz', { schema: health }, async (_req, reply) => reply.type('text/plain').send('ok'));

    const ready = {
      ...ops,
      summary: 'Readiness: policy loaded and Temporal reachable',
      response: { 200: readinessSchema.describe('Ready'), 503: readinessSchema.describe('Degraded') },
    };
    app.get('/readyz', { schema: ready }, async (_req, reply) => {
      const policy = deps.policy.loaded ? 'loaded' : 'missing';
      const temporal = await deps.checkTemporal().then(
        () => 'ok' as const,
        () => 'error' as const,
      );
      const ok = policy === 'loaded' && temporal === 'ok';
      const body: z.infer<typeof readinessSchema> = { status: ok ? 'ok' : 'degraded', policy, temporal };
      return reply.code(ok ? 200 : 503).send(body);
    });

    const metrics = { ...ops, summary: 'Prometheus metrics', response: { 200: text('Prometheus text format') } };
    app.get('/metrics', { schema: metrics }, async (_req, reply) => {
      const registry = deps.metrics.registry;
      return reply.type(registry.contentType).send(await registry.metrics());
    });
  };
}
