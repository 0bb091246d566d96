import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { apiError } from '../../domain/api-schemas.js';
import { publicSchema } from '../../domain/json-schema.js';
import type { ApiDeps } from '../deps.js';
import { HttpError } from '../errors.js';

/** `GET /api/schemas/:action`: the override JSON Schema agents and UIs validate edits against (SPEC section 3). */
export function schemaRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/schemas/:action',
      {
        schema: {
          summary: "An action's override JSON Schema, to validate edits against",
          tags: ['agent'],
          params: z.object({ action: z.string().min(1) }),
          response: { 200: z.record(z.string(), z.unknown()).describe('A JSON Schema'), 404: apiError('not_found') },
        },
      },
      async (req) => {
        const actions = deps.policy.loaded?.policy.actions ?? {};
        const { action } = req.params;
        const schema = Object.hasOwn(actions, action) ? actions[action]?.overrideSchema : undefined;
        if (!schema) throw new HttpError(404, 'not_found');
        return publicSchema(schema) as Record<string, unknown>;
      },
    );
  };
}
