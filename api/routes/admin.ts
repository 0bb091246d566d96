import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { apiError } from '../../domain/api-schemas.js';
import type { ApiDeps } from '../deps.js';

const reloadedSchema = z.object({
  ok: z.literal(true),
  actions: z.number().int().describe('How many actions the policy now serving has'),
  actionNames: z.array(z.string()).describe('Their names'),
  hash: z.string(),
  warnings: z.array(z.string()).optional(),
});

/** `POST /api/admin/reload-policy` (runbook section 6): the old policy keeps serving when the new file is bad. */
export function adminRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/api/admin/reload-policy',
      {
        config: { auth: 'admin' },
        schema: {
          summary: 'Reload the policy file (the old policy stays on failure)',
          tags: ['admin'],
          response: {
            200: reloadedSchema.describe('The policy now serving'),
            401: apiError('unauthorized'),
            500: apiError('reload_failed'),
          },
        },
      },
      async (_req, reply) => {
        try {
          const loaded = await deps.policy.reload('api', 'admin');
          const names = Object.keys(loaded.policy.actions);
          return {
            ok: true as const,
            actions: names.length,
            actionNames: names,
            hash: loaded.hash,
            ...(loaded.warnings.length > 0 ? { warnings: loaded.warnings } : {}),
          };
        } catch (err) {
          // The old policy keeps serving; the detail names every `path: rule` so the operator can fix the file.
          return reply.code(500).send({ error: 'reload_failed' as const, detail: (err as Error).message });
        }
      },
    );
  };
}
