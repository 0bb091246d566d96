import type { FastifyInstance, FastifySchema } from 'fastify';

/**
 * Who may call a route, declared once in its options (`config: { auth }`): the hooks enforce it and the OpenAPI
 * document shows it. `agent`: an agent key when AGENT_API_KEYS is set; `admin`: the x-admin-token; `slack`: Slack's
 * signature (checked by the Slack plugin); `public`: anyone (probes, metrics, reads with a capability token).
 */
export type RouteAuth = 'agent' | 'admin' | 'slack' | 'public';

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
}

type Security = NonNullable<FastifySchema['security']>;
const SECURITY: Record<RouteAuth, Security | undefined> = {
  // `{}`: nothing needed when AGENT_API_KEYS is unset.
  agent: [{ agentKey: [] }, {}],
  admin: [{ adminToken: [] }],
  slack: [{ slackSignature: [] }],
  public: undefined,
};

/** Copies each route's declared auth into its OpenAPI security; register before the routes (and the docs). */
export function declareRouteSecurity(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const security = SECURITY[route.config?.auth ?? 'public'];
    if (security && route.schema) route.schema = { ...route.schema, security };
  });
}

export function routeAuth(config: { auth?: RouteAuth } | undefined): RouteAuth {
  return config?.auth ?? 'public';
}
