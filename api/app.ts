import Fastify, { LogController, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { traceHttpRequests } from '../observability/tracing.js';
import type { ApiDeps } from './deps.js';
import { registerRouteAuth } from './auth.js';
import { registerErrorHandler } from './errors.js';
import { registerHttpMetrics } from './http-metrics.js';
import { loggerOptions, registerHttpHardening } from './http-hardening.js';
import { registerOpenApi } from './openapi.js';
import { registerRateLimit } from './rate-limit.js';
import { declareRouteSecurity } from './route-config.js';
import { actionRoutes } from './routes/actions.js';
import { adminRequestRoutes } from './routes/admin-requests.js';
import { adminRoutes } from './routes/admin.js';
import { guardRoutes } from './routes/guard.js';
import { healthRoutes } from './routes/health.js';
import { lifecycleRoutes } from './routes/lifecycle.js';
import { receiptRoutes } from './routes/receipts.js';
import { schemaRoutes } from './routes/schemas.js';
import { streamRoutes } from './routes/stream.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated agent's name, when AGENT_API_KEYS is set. */
    agentName: string | null;
    /** On admin routes: the operator the x-admin-token names (ADMIN_TOKENS), or `admin` (ADMIN_TOKEN). */
    adminName: string | null;
  }
}

const BODY_LIMIT_BYTES = 256 * 1024;

export interface AppOptions {
  logger?: boolean | object;
  tracing?: boolean;
  /** Routes of other parts registered with the API's own (the Slack endpoint: slack/http.ts). */
  plugins?: FastifyPluginAsync[];
}

/** The HTTP API: a thin layer over the gateway. Routes declare schemas and auth once; hooks and docs read them. */
export async function buildApp(deps: ApiDeps, opts: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: loggerOptions(opts.logger),
    bodyLimit: BODY_LIMIT_BYTES,
    // Tokens and secrets travel in query strings and headers; keep them out of request logs.
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.decorateRequest('agentName', null);
  app.decorateRequest('adminName', null);
  registerHttpMetrics(app, deps.metrics);
  registerErrorHandler(app);
  // Security hooks before any route, in this order: identify the agent, limit its rate, then refuse the unknown.
  await registerHttpHardening(app);
  registerRouteAuth(app, deps);
  await registerRateLimit(app, deps);
  // Before the docs and any route: each route's declared auth becomes its OpenAPI security.
  declareRouteSecurity(app);
  // Before any route: the document lists the routes registered after it.
  await registerOpenApi(app);
  // Before any route: a route only gets the hooks that exist when it is registered.
  if (opts.tracing) traceHttpRequests(app);
  for (const routes of [
    healthRoutes,
    guardRoutes,
    actionRoutes,
    lifecycleRoutes,
    streamRoutes,
    receiptRoutes,
    adminRoutes,
    adminRequestRoutes,
    schemaRoutes,
  ]) {
    await app.register(routes(deps));
  }
  for (const plugin of opts.plugins ?? []) await app.register(plugin);
  return app;
}
