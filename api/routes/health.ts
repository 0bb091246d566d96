import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps.js';

export function healthRoutes(deps: ApiDeps) {
  return async (app: FastifyInstance) => {
    app.get('/healthz', async (_req, reply) => reply.type('text/plain').send('ok'));

    app.get('/readyz', async (_req, reply) => {
      const policy = deps.policy.loaded ? 'loaded' : 'missing';
      const temporal = await deps.checkTemporal().then(
        () => 'ok' as const,
        () => 'error' as const,
      );
      const ok = policy === 'loaded' && temporal === 'ok';
      return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'degraded', policy, temporal });
    });

    app.get('/metrics', async (_req, reply) => {
      const registry = deps.metrics.registry;
      return reply.type(registry.contentType).send(await registry.metrics());
    });
  };
}
