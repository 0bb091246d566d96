import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { actionsResponseSchema, apiError, type ActionSummary } from '../../domain/api-schemas.js';
import { publicSchema } from '../../domain/json-schema.js';
import { evaluatePolicy } from '../../domain/plan.js';
import type { ApiDeps } from '../deps.js';
import { HttpError } from '../errors.js';

/** `GET /api/guard/actions`: what an agent may request, who decides and what params it takes (SPEC section 10). */
export function actionRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/guard/actions',
      {
        config: { auth: 'agent' },
        schema: {
          summary: 'The actions an agent may request',
          description: "Each action's approvers (how many, quorum), personas, timeout, edits and params schema.",
          tags: ['agent'],
          response: {
            200: actionsResponseSchema,
            401: apiError('unauthorized'),
            503: apiError('policy_unavailable'),
          },
        },
      },
      async () => {
        const loaded = deps.policy.loaded;
        if (!loaded) throw new HttpError(503, 'policy_unavailable');
        const limits = {
          overrideMaxKeys: deps.config.OVERRIDE_MAX_KEYS,
          overrideMaxChars: deps.config.OVERRIDE_MAX_CHARS,
        };
        const actions = Object.keys(loaded.policy.actions).flatMap((name): ActionSummary[] => {
          const result = evaluatePolicy(loaded.policy, loaded.hash, name, limits);
          if (!result.ok) return [];
          const { plan } = result;
          return [
            {
              name,
              description: plan.description ?? null,
              approverCount: plan.approvers.length,
              minApprovals: plan.minApprovals,
              personas: plan.personas.map((p) => p.name),
              timeoutSec: plan.timeoutSec,
              editsAllowed: plan.overrides.allowed,
              editableParams: plan.overrides.allowed ? plan.overrides.keys : [],
              ...(plan.paramsSchema
                ? { paramsSchema: publicSchema(plan.paramsSchema) as Record<string, unknown> }
                : {}),
            },
          ];
        });
        return { actions, unknownAction: loaded.policy.defaults.unknownAction };
      },
    );
  };
}
