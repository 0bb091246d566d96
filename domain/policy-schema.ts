import { z } from 'zod';

/**
 * The policy file format (SPEC section 5). Objects are strict: a misspelt key is an error, never ignored.
 * Kept free of I/O so the API, the check command and the tests share it.
 */
const slackId = z.string().min(1);

export const redactionSchema = z.strictObject({
  mode: z.enum(['allowlist', 'denylist', 'all']),
  keys: z.array(z.string().min(1)).default([]),
});

export const escalationSchema = z.strictObject({
  escalateBeforeSec: z.number().int().positive(),
  escalationChannel: z.string().min(1).optional(),
  escalateMinApprovals: z.number().int().min(1).optional(),
});

export const actionSchema = z.strictObject({
  description: z.string().optional(),
  approvers: z
    .strictObject({
      allowSlackIds: z.array(slackId).default([]),
      minApprovals: z.number().int().min(1, 'must be at least 1').default(1),
    })
    .default({ allowSlackIds: [], minApprovals: 1 }),
  personasRequired: z.array(z.string().min(1)).default([]),
  timeoutSec: z.number().int().positive().optional(),
  redactParams: redactionSchema.optional(),
  channel: z.string().min(1).optional(),
  escalation: escalationSchema.optional(),
  allowReRequest: z.boolean().default(false),
  reRequestCooldownSec: z.number().int().min(0).default(0),
  allowParamOverrides: z.boolean().default(false),
  overrideKeys: z.array(z.string().min(1)).default([]),
  overrideSchema: z.record(z.string(), z.unknown()).optional(),
  allowSelfApproval: z.boolean().default(false),
});

export const DEFAULT_TIMEOUT_SEC = 3600;

export const policySchema = z
  .strictObject({
    version: z.union([z.number(), z.string()]).optional(),
    actions: z.record(z.string().min(1), actionSchema).default({}),
    routing: z
      .strictObject({
        defaultChannel: z.string().min(1).optional(),
        dmFallbackUser: z.string().min(1).optional(),
        defaultTimeoutSec: z.number().int().positive().default(DEFAULT_TIMEOUT_SEC),
      })
      .default({ defaultTimeoutSec: DEFAULT_TIMEOUT_SEC }),
    defaults: z
      .strictObject({
        unknownAction: z.enum(['deny', 'manual']).default('deny'),
        superApprovers: z.array(slackId).default([]),
      })
      .default({ unknownAction: 'deny', superApprovers: [] }),
    personas: z.record(z.string().min(1), z.array(slackId)).default({}),
  })
  .superRefine((policy, ctx) => {
    for (const [name, action] of Object.entries(policy.actions)) {
      const at = (...path: (string | number)[]) => ['actions', name, ...path];
      const timeoutSec = action.timeoutSec ?? policy.routing.defaultTimeoutSec;
      const esc = action.escalation;
      if (esc && esc.escalateBeforeSec >= timeoutSec) {
        ctx.addIssue({
          code: 'custom',
          path: at('escalation', 'escalateBeforeSec'),
          message: `must be less than timeoutSec (${timeoutSec})`,
        });
      }
      if (esc?.escalateMinApprovals !== undefined && esc.escalateMinApprovals < action.approvers.minApprovals) {
        ctx.addIssue({
          code: 'custom',
          path: at('escalation', 'escalateMinApprovals'),
          message: `must be at least approvers.minApprovals (${action.approvers.minApprovals})`,
        });
      }
      const pool = new Set([...action.approvers.allowSlackIds, ...policy.defaults.superApprovers]);
      const quorum = Math.max(action.approvers.minApprovals, esc?.escalateMinApprovals ?? 0);
      if (pool.size < quorum) {
        ctx.addIssue({
          code: 'custom',
          path: at('approvers', 'minApprovals'),
          message: `quorum ${quorum} can never be reached: only ${pool.size} allowed approver(s)`,
        });
      }
      if (action.allowParamOverrides && action.overrideKeys.length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: at('overrideKeys'),
          message: 'must list at least one key when allowParamOverrides is true',
        });
      }
      if (action.redactParams && action.redactParams.mode !== 'all' && action.redactParams.keys.length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: at('redactParams', 'keys'),
          message: `must list at least one key for mode ${action.redactParams.mode}`,
        });
      }
    }
  });

export type Policy = z.infer<typeof policySchema>;
export type PolicyAction = z.infer<typeof actionSchema>;
export type Redaction = z.infer<typeof redactionSchema>;
