import { z } from 'zod';
import { JSON_LIMITS, withinJsonLimit } from './json-limits.js';

/** Body of `POST /api/guard/request` (SPEC section 3); the limits on params and hints are in json-limits.ts. */
export const createRequestSchema = z.strictObject({
  action: z.string().min(1).max(200),
  params: z
    .record(z.string(), z.unknown())
    .superRefine(withinJsonLimit(JSON_LIMITS.params))
    .default({})
    .describe(`At most ${JSON_LIMITS.params.maxDepth} levels deep and ${JSON_LIMITS.params.maxBytes} bytes of JSON`),
  meta: z.strictObject({
    origin: z.strictObject({
      repo: z.string().min(1).max(500),
      branch: z.string().max(500).optional(),
      pr: z.union([z.string().max(100), z.number().int()]).optional(),
      run_id: z.union([z.string().max(200), z.number().int()]).optional(),
    }),
    requester: z.strictObject({
      id: z.string().min(1).max(200),
      source: z.enum(['slack', 'github', 'agent']),
      display: z.string().max(200).optional(),
    }),
    justification: z.string().trim().min(3, 'must be at least 3 characters').max(4000),
    links: z.array(z.string().max(2000)).max(20).optional(),
  }),
  policyHints: z
    .record(z.string(), z.unknown())
    .superRefine(withinJsonLimit(JSON_LIMITS.policyHints))
    .optional()
    .describe(
      `At most ${JSON_LIMITS.policyHints.maxDepth} levels deep and ${JSON_LIMITS.policyHints.maxBytes} bytes of JSON`,
    ),
});

export type CreateRequest = z.infer<typeof createRequestSchema>;
export type Requester = CreateRequest['meta']['requester'];
