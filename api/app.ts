import Fastify, { type FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.js';
import { registerErrorHandler } from './errors.js';
import { adminRoutes } from './routes/admin.js';
import { guardRoutes } from './routes/guard.js';
import { healthRoutes } from './routes/health.js';
import { slackRoutes } from './routes/slack.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated agent's name, when AGENT_API_KEYS is set. */
    agentName: string | null;
  }
}

const BODY_LIMIT_BYTES = 256 * 1024;

/** The HTTP API: a thin layer that parses, calls Temporal through the gateway and maps the result. */
export async function buildApp(deps: ApiDeps, opts: { logger?: boolean | object } = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: BODY_LIMIT_BYTES,
    // Tokens and secrets travel in query strings and headers; keep them out of request logs.
    disableRequestLogging: true,
  });
  app.decorateRequest('agentName', null);
  registerErrorHandler(app);
  await app.register(healthRoutes(deps));
  await app.register(guardRoutes(deps));
  await app.register(slackRoutes(deps));
  await app.register(adminRoutes(deps));
  return app;
}
