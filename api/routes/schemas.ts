import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { apiError } from '../../domain/api-schemas.js';
import { publicSchema } from '../../domain/json-schema.js';
import type { ApiDeps } from '../deps.js';
import { HttpError } from '../errors.js';

const params = z.object({ action: z.string().min(1) });

/** `GET /api/schemas/:action`: the override JSON Schema agents and UIs validate edits against (SPEC section 3). */
export function schemaRoutes(deps: ApiDeps) {
  return async (app: FastifyInstance) => {
    const doc = {
      summary: "An action's override JSON Schema, to validate edits against",
      tags: ['agent'],
      params,
      response: { 200: { description: 'A JSON Schema', type: 'object' }, 404: apiError('not_found') },
    };
    app.get('/api/schemas/:action', { schema: doc }, async (req) => {
      const { action } = params.parse(req.params);
      const actions = deps.policy.loaded?.policy.actions ?? {};
      const schema = Object.hasOwn(actions, action) ? actions[action]?.overrideSchema : undefined;
      if (!schema) throw new HttpError(404, 'not_found');
      return publicSchema(schema);
    });
  };
}
