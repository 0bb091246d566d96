import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { apiError } from '../../domain/api-schemas.js';
import type { ApiDeps } from '../deps.js';
import { HttpError } from '../errors.js';
import { ADMIN_SECURITY } from '../openapi.js';
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

const reloadedSchema = z.object({
  ok: z.literal(true),
  actions: z.array(z.string()),
  hash: z.string(),
  warnings: z.array(z.string()).optional(),
});

export function adminRoutes(deps: ApiDeps) {
  return async (app: FastifyInstance) => {
    const reload = {
      summary: 'Reload the policy file (the old policy stays on failure)',
      tags: ['admin'],
      security: ADMIN_SECURITY,
      response: {
        200: reloadedSchema.describe('The policy now serving'),
        401: apiError('unauthorized'),
        500: apiError('reload_failed'),
      },
    };
    app.post('/api/admin/reload-policy', { schema: reload }, async (req, reply) => {
      requireAdmin(deps, req);
      try {
        const loaded = await deps.policy.reload('api', 'admin');
        const warnings = loaded.warnings.length > 0 ? { warnings: loaded.warnings } : {};
        const answer: z.infer<typeof reloadedSchema> = {
          ok: true,
          actions: Object.keys(loaded.policy.actions),
          hash: loaded.hash,
          ...warnings,
        };
        return answer;
      } catch (err) {
        // The old policy keeps serving; the detail names every `path: rule` so the operator can fix the file.
        return reply.code(500).send({ error: 'reload_failed', detail: (err as Error).message });
      }
    });
  };
}
