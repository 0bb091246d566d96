import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiDeps } from './deps.js';
import { HttpError } from './errors.js';
import { routeAuth } from './route-config.js';
import { safeEqual } from './security.js';

export interface AgentKey {
  name: string;
  key: string;
}

/** `name:key,name:key` (the format config/env.ts validates); a name may hold several keys, for rotation. */
export function parseAgentKeys(value: string | undefined): AgentKey[] {
  return (value ?? '')
    .split(',')
    .map((pair) => pair.trim())
    .filter(Boolean)
    .map((pair) => {
      const colon = pair.indexOf(':');
      return { name: pair.slice(0, colon), key: pair.slice(colon + 1) };
    });
}

/** The agent whose key the header carries, or null. Every key is compared, so timing tells nothing about which. */
export function agentForHeader(keys: readonly AgentKey[], header: string | undefined): string | null {
  const match = /^Bearer +(\S+)\s*$/i.exec(header ?? '');
  if (!match) return null;
  const given = match[1]!;
  let found: string | null = null;
  for (const { name, key } of keys) {
    if (safeEqual(given, key) && found === null) found = name;
  }
  return found;
}

/**
 * Route authentication as app-wide hooks reading each route's declared `config.auth` (api/route-config.ts), so a
 * route added later is covered by saying who may call it. The agent is identified in `onRequest` (before the rate
 * limiter, which keys its buckets by agent); refusals come in `preParsing` (after it: a client guessing keys or
 * tokens spends its IP's budget, and its body is never parsed).
 */
export function registerRouteAuth(app: FastifyInstance, deps: Pick<ApiDeps, 'config' | 'metrics' | 'audit'>): void {
  const keys = parseAgentKeys(deps.config.AGENT_API_KEYS);
  const refuse = (req: FastifyRequest, reason: string): never => {
    deps.metrics.securityEvents.inc({ type: 'unauthorized' });
    deps.audit.emit({
      event: 'security_event',
      type: 'unauthorized',
      actor: req.ip,
      route: req.routeOptions.url,
      reason,
    });
    throw new HttpError(401, 'unauthorized');
  };
  if (keys.length > 0) {
    app.addHook('onRequest', async (req) => {
      req.agentName = agentForHeader(keys, req.headers.authorization);
    });
  }
  app.addHook('preParsing', async (req, reply) => {
    const auth = routeAuth(req.routeOptions.config);
    if (auth === 'admin') {
      const given = req.headers['x-admin-token'];
      req.adminName = adminFor(deps.config, given);
      if (req.adminName === null) refuse(req, given === undefined ? 'missing_admin_token' : 'invalid_admin_token');
    } else if (auth === 'agent' && keys.length > 0 && req.agentName === null) {
      reply.header('www-authenticate', 'Bearer');
      refuse(req, req.headers.authorization === undefined ? 'missing_agent_key' : 'invalid_agent_key');
    }
  });
}

/**
 * The operator a presented x-admin-token belongs to: a name of ADMIN_TOKENS, or `admin` for ADMIN_TOKEN; null for
 * anything else (neither configured: nobody). Every token is compared, so timing tells nothing about which.
 */
export function adminFor(
  config: Pick<ApiDeps['config'], 'ADMIN_TOKEN' | 'ADMIN_TOKENS'>,
  given: unknown,
): string | null {
  if (typeof given !== 'string') return null;
  const tokens = [
    ...parseAgentKeys(config.ADMIN_TOKENS),
    ...(config.ADMIN_TOKEN ? [{ name: 'admin', key: config.ADMIN_TOKEN }] : []),
  ];
  let found: string | null = null;
  for (const { name, key } of tokens) {
    if (safeEqual(given, key) && found === null) found = name;
  }
  return found;
}
