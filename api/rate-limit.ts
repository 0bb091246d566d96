import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiDeps } from './deps.js';
import { HttpError } from './errors.js';

/**
 * The plugin counts requests in fixed windows, not tokens in a bucket. A bucket of `capacity` refilled at `refill`
 * tokens/s maps to `capacity` requests per window of `capacity / refill` seconds: the same burst and the same
 * long-run rate, with at most two bursts back to back across a window boundary.
 */
export function rateLimitWindow(capacity: number, refillPerSec: number): { max: number; timeWindowMs: number } {
  return { max: capacity, timeWindowMs: Math.max(1, Math.ceil((capacity / refillPerSec) * 1000)) };
}

/** One bucket per client: the authenticated agent, else the caller's IP. */
export function rateLimitKey(req: FastifyRequest): string {
  return req.agentName !== null ? `agent:${req.agentName}` : `ip:${req.ip}`;
}

/**
 * @fastify/rate-limit on every route but those that say `config: { rateLimit: false }`: probes and scrapers must
 * always get through, and Slack deliveries all come from Slack's few addresses (one IP bucket would throttle every
 * approver at once) while signatures and the replay cache already keep forged and repeated ones out. With Redis the counters live there, shared
 * by all API replicas; if Redis fails, requests pass (skipOnError): losing the limiter for a while beats refusing every agent.
 */
export async function registerRateLimit(
  app: FastifyInstance,
  deps: Pick<ApiDeps, 'config' | 'metrics' | 'redis'>,
): Promise<void> {
  const { redis } = deps;
  const { max, timeWindowMs } = rateLimitWindow(deps.config.RATE_LIMIT_CAPACITY, deps.config.RATE_LIMIT_REFILL_PER_SEC);
  await app.register(rateLimit, {
    global: true,
    max,
    timeWindow: timeWindowMs,
    // After the agent is identified (an app-level onRequest hook runs before this route-level one).
    hook: 'onRequest',
    keyGenerator: rateLimitKey,
    ...(redis ? { redis, nameSpace: 'guard:ratelimit:' } : {}),
    skipOnError: true,
    // Counted, not audited: a flood would otherwise fill the audit trail.
    onExceeded: () => deps.metrics.securityEvents.inc({ type: 'rate_limited' }),
    errorResponseBuilder: (_req, ctx) =>
      new HttpError(429, 'rate_limited', { retryAfterSec: Math.max(1, Math.ceil(ctx.ttl / 1000)) }),
  });
}
