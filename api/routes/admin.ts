import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiDeps } from '../deps.js';
import { HttpError } from '../errors.js';
import { safeEqual } from '../security.js';

/** Admin routes answer 401 to everyone unless ADMIN_TOKEN is set and presented. */
export function requireAdmin(deps: ApiDeps, req: FastifyRequest): void {
  const expected = deps.config.ADMIN_TOKEN;
  const given = req.headers['x-admin-token'];
  if (!expected || typeof given !== 'string' || !safeEqual(given, expected)) {
    deps.metrics.securityEvents.inc({ type: 'unauthorized' });
    deps.audit.emit({
      event: 'security_event',
      type: 'unauthorized',
      actor: req.ip,
      route: req.routeOptions.url,
      reason: given === undefined ? 'missing_admin_token' : 'invalid_admin_token',
    });
    throw new HttpError(401, 'unauthorized');
  }
}

export function adminRoutes(deps: ApiDeps) {
  return async (app: FastifyInstance) => {
    app.post('/api/admin/reload-policy', async (req, reply) => {
      requireAdmin(deps, req);
      try {
        const loaded = await deps.policy.reload('api', 'admin');
        const warnings = loaded.warnings.length > 0 ? { warnings: loaded.warnings } : {};
        return { ok: true, actions: Object.keys(loaded.policy.actions), hash: loaded.hash, ...warnings };
      } catch (err) {
        // The old policy keeps serving; the detail names every `path: rule` so the operator can fix the file.
        return reply.code(500).send({ error: 'reload_failed', detail: (err as Error).message });
      }
    });
  };
}
