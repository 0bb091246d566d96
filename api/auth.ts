import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.js';
import { HttpError } from './errors.js';
import { safeEqual } from './security.js';

/** The routes an agent acts through; with AGENT_API_KEYS set they need `Authorization: Bearer <key>`. */
export const AGENT_ROUTES: ReadonlySet<string> = new Set([
  '/api/guard/request',
  '/api/guard/rerequest',
  '/api/guard/cancel',
]);

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
 * Agent authentication as app-wide hooks, so routes added later are covered without knowing about it. The agent is
 * identified in `onRequest` (before the rate limiter, which keys its buckets by agent) and refused in `preParsing`
 * (after it: a client guessing keys spends its IP's budget, and its body is never parsed).
 */
export function registerAgentAuth(app: FastifyInstance, deps: Pick<ApiDeps, 'config' | 'metrics' | 'audit'>): void {
  const keys = parseAgentKeys(deps.config.AGENT_API_KEYS);
  if (keys.length === 0) return;
  app.addHook('onRequest', async (req) => {
    req.agentName = agentForHeader(keys, req.headers.authorization);
  });
  app.addHook('preParsing', async (req, reply) => {
    if (req.agentName !== null || !AGENT_ROUTES.has(req.routeOptions.url ?? '')) return;
    deps.metrics.securityEvents.inc({ type: 'unauthorized' });
    deps.audit.emit({
      event: 'security_event',
      type: 'unauthorized',
      actor: req.ip,
      route: req.routeOptions.url,
      reason: req.headers.authorization === undefined ? 'missing_agent_key' : 'invalid_agent_key',
    });
    reply.header('www-authenticate', 'Bearer');
    throw new HttpError(401, 'unauthorized');
  });
}
