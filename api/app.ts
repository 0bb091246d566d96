import Fastify, { type FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.js';
import { traceHttpRequests } from '../observability/tracing.js';
import { registerAgentAuth } from './auth.js';
import { registerErrorHandler } from './errors.js';
import { registerHttpMetrics } from './http-metrics.js';
import { loggerOptions, registerHttpHardening } from './http-hardening.js';
import { registerOpenApi } from './openapi.js';
import { registerRateLimit } from './rate-limit.js';
import { adminRequestRoutes } from './routes/admin-requests.js';
import { adminRoutes } from './routes/admin.js';
import { guardRoutes } from './routes/guard.js';
import { healthRoutes } from './routes/health.js';
import { lifecycleRoutes } from './routes/lifecycle.js';
import { schemaRoutes } from './routes/schemas.js';
import { slackRoutes } from './routes/slack.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated agent's name, when AGENT_API_KEYS is set. */
    agentName: string | null;
  }
}

const BODY_LIMIT_BYTES = 256 * 1024;

/** The HTTP API: a thin layer that parses, calls Temporal through the gateway and maps the result. */
export async function buildApp(
  deps: ApiDeps,
  opts: { logger?: boolean | object; tracing?: boolean } = {},
): Promise<FastifyInstance> {
  const app = Fastify({
    logger: loggerOptions(opts.logger),
    bodyLimit: BODY_LIMIT_BYTES,
    // Tokens and secrets travel in query strings and headers; keep them out of request logs.
    disableRequestLogging: true,
  });
  app.decorateRequest('agentName', null);
  registerHttpMetrics(app, deps.metrics);
  registerErrorHandler(app);
  // Security hooks before any route, in this order: identify the agent, limit its rate, then refuse the unknown.
  await registerHttpHardening(app);
  registerAgentAuth(app, deps);
  await registerRateLimit(app, deps);
  // Before any route: the document lists the routes registered after it.
  await registerOpenApi(app);
  // Before any route: a route only gets the hooks that exist when it is registered.
  if (opts.tracing) traceHttpRequests(app);
  await app.register(healthRoutes(deps));
  await app.register(guardRoutes(deps));
  await app.register(lifecycleRoutes(deps));
  await app.register(slackRoutes(deps));
  await app.register(adminRoutes(deps));
  await app.register(adminRequestRoutes(deps));
  await app.register(schemaRoutes(deps));
  return app;
}
