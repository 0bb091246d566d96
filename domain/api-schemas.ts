import { z } from 'zod';
import { createRequestSchema } from './request-schema.js';
import { DECISION_VIAS, STATUSES } from './request-state.js';

/**
 * The agent-facing wire contract (SPEC section 3) as zod schemas: the routes parse with them, the OpenAPI document
 * is generated from them (api/openapi.ts) and the clients under clients/ import them, so every field exists once.
 * Response schemas describe what the API answers; api/views.ts is typed against them.
 */

export { createRequestSchema };
export type CreateRequestInput = z.input<typeof createRequestSchema>;

/**
 * An identifier or filter value (request id, action, requester): letters, digits and `_ . : -` only, so it reads the
 * same in a URL, a log line and a Temporal visibility query.
 */
export const queryLiteral = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9_.:-]+$/, 'only letters, digits and _ . : - are allowed');

export const idempotencyKeySchema = z.string().min(1).max(255);
/** Headers of `POST /api/guard/request`; Node lower-cases header names. */
export const createRequestHeadersSchema = z.object({
  'idempotency-key': idempotencyKeySchema
    .optional()
    .describe('Same key (for the same agent) → the same request, never a second one'),
});

const token = z.string().describe('The capability token returned at creation');
export const waitQuerySchema = z.object({
  token: token.optional(),
  timeoutSec: z.coerce.number().min(0).optional().describe('Wait bound in seconds (default 25, at most 60)'),
});
export const tokenQuerySchema = z.object({ token: token.optional() });
export const tokenBodySchema = z.object({ token: token.optional() }).loose();
export const statusQuerySchema = z.object({ requestId: z.string().optional() });
export const cancelBodySchema = z.object({ token: token.optional(), reason: z.string().trim().max(2000).optional() });
export const verifyBodySchema = z.object({
  receipt: z.string().max(8192),
  outcome: z
    .enum(['approved', 'denied', 'expired', 'cancelled', 'any'])
    .default('approved')
    .describe('The outcome the receipt must state (default approved: a denial is no licence to run)'),
});

export const statusSchema = z.enum(STATUSES);
export const outcomeSchema = statusSchema.extract(['approved', 'denied', 'expired', 'cancelled']);
export type Outcome = z.infer<typeof outcomeSchema>;

/** Every refusal: `{error: code, ...}` with a stable code. */
export const errorResponseSchema = z.object({
  error: z.string(),
  detail: z.string().optional(),
  message: z.string().optional(),
  details: z.array(z.unknown()).optional(),
  retryAfterSec: z.number().optional(),
  actions: z.array(z.string()).optional().describe('policy_denied: the actions that exist'),
  requestId: z.string().optional().describe('idempotency_conflict: the request the key belongs to'),
});
export type ErrorResponse = z.infer<typeof errorResponseSchema>;

/** The error body narrowed to the codes one answer may carry, for the document. */
export function apiError(...codes: [string, ...string[]]) {
  return errorResponseSchema.extend({ error: z.enum(codes) }).describe(codes.join(' | '));
}

export const createdResponseSchema = z.object({
  token: z.string().describe('Capability for this one request: wait, stream and cancel with it'),
  requestId: z.string(),
  status: statusSchema,
  createdAt: z.string(),
  expiresAt: z.string(),
  payloadHash: z.string().describe('The hash of the params as submitted (a receipt binds the effective params)'),
  policy: z.object({
    minApprovals: z.number().int(),
    requiredPersonas: z.array(z.string()),
    timeoutSec: z.number().int(),
  }),
  idempotentReplay: z.literal(true).optional().describe('Present when the Idempotency-Key found an existing request'),
});
export type CreatedResponse = z.infer<typeof createdResponseSchema>;

const personaAckSchema = z.object({ acked: z.boolean(), by: z.string().nullable(), at: z.string().nullable() });

/** Whether a human was told, and where (SPEC section 10). */
export const notificationSchema = z
  .object({
    slack: z.enum(['pending', 'posted', 'failed', 'skipped']),
    error: z.string().optional().describe('failed: why nothing could be posted'),
    permalink: z.string().optional().describe('posted: a link to the message'),
    fallback: z.enum(['minimal', 'dm']).optional().describe('posted: the rich message was refused, this went out'),
  })
  .describe('pending until the first post settles; failed means no human was told');

/** Present only while a request cannot progress (docs/retention.md, "Stuck requests"). */
export const stuckSchema = z
  .object({
    since: z.string().describe('When the task that keeps failing was first scheduled'),
    attempts: z.number().int().describe('Its attempts so far'),
    cause: z.string().describe('Its first failure, as the workflow history records it'),
  })
  .describe(
    'The workflow task keeps failing: this state is the last one persisted and nothing (a click, cancel, expiry) ' +
      'takes effect until an operator fixes the cause; the request resumes from here once fixed',
  );

/** How a decided request was decided (null while open), and whether an open one is stuck. */
const decisionFields = {
  decidedVia: z.enum(DECISION_VIAS).nullable(),
  breakGlass: z.boolean().describe('An operator decided past the quorum or the personas'),
  notification: notificationSchema,
  stuck: stuckSchema.optional(),
};

/** Body of `GET|POST /api/guard/wait` and of each `wait-sse` state event. */
export const stateResponseSchema = z.object({
  requestId: z.string(),
  action: z.string(),
  status: statusSchema,
  terminal: z.boolean(),
  approvers: z.array(z.string()),
  approvalsCount: z.number().int(),
  minApprovals: z.number().int(),
  personaState: z.record(z.string(), personaAckSchema),
  escalated: z.boolean(),
  expiresAt: z.string(),
  decidedAt: z.string().nullable(),
  decidedBy: z.string().nullable(),
  reason: z.string().nullable(),
  payloadHash: z.string(),
  version: z.number().int(),
  ...decisionFields,
  effectiveParams: z
    .record(z.string(), z.unknown())
    .optional()
    .describe('Terminal answers: the params the agent may run, edits applied'),
  overridden: z.boolean().optional().describe('Terminal answers: whether an approver edited the params'),
  receipt: z.string().nullable().optional().describe('Terminal answers: the signed decision receipt'),
});
export type StateResponse = z.infer<typeof stateResponseSchema>;

export const statusResponseSchema = z.object({
  requestId: z.string(),
  action: z.string(),
  status: statusSchema,
  approvalsCount: z.number().int(),
  minApprovals: z.number().int(),
  approvers: z.array(z.string()),
  requiredPersonas: z.array(z.string()),
  personaState: z.record(z.string(), personaAckSchema),
  escalated: z.boolean(),
  createdAt: z.string(),
  expiresAt: z.string(),
  decidedAt: z.string().nullable(),
  decidedBy: z.string().nullable(),
  payloadHash: z.string(),
  overrides: z.array(z.object({ by: z.string(), at: z.string(), keys: z.array(z.string()) })),
  version: z.number().int(),
  ...decisionFields,
  receipt: z.string().optional().describe('Terminal answers: the signed decision receipt'),
});
export type StatusResponse = z.infer<typeof statusResponseSchema>;

/** A command the workflow could not answer in time: queued as a durable signal. */
export const queuedResponseSchema = z.object({ requestId: z.string(), queued: z.literal(true) });

export const rerequestResponseSchema = z.object({
  token: z.string(),
  requestId: z.string(),
  lineageId: z.string(),
  originalRequestId: z.string(),
  status: statusSchema,
  createdAt: z.string(),
  expiresAt: z.string(),
  policy: z.object({ minApprovals: z.number().int(), requiredPersonas: z.array(z.string()) }),
});

export const RECEIPT_VERSION = 1;

/** What a decision receipt binds: the executor checks these against what it is about to run. */
export const receiptClaimsSchema = z.strictObject({
  v: z.literal(RECEIPT_VERSION),
  kid: z.string(),
  requestId: z.string(),
  action: z.string(),
  outcome: outcomeSchema,
  payloadHash: z.string(),
  approvers: z.array(z.string()),
  decidedBy: z.string().nullable(),
  decidedAt: z.string(),
  exp: z.number().int().describe('Expiry, seconds since the epoch: verification refuses it afterwards'),
  via: z.enum(DECISION_VIAS).describe('How the decision was made: slack, api (requester or expiry) or admin'),
  breakGlass: z.boolean().describe('An operator decided past the quorum or the personas'),
});
export type ReceiptClaims = z.infer<typeof receiptClaimsSchema>;

/** A receipt's claims from its base64url body; null when they are not a receipt's (the signature is checked apart). */
export function parseReceiptClaims(body: string): ReceiptClaims | null {
  try {
    const parsed = receiptClaimsSchema.safeParse(JSON.parse(Buffer.from(body, 'base64url').toString('utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Why a receipt does not verify: not ours (or tampered), past its `exp`, or another outcome than expected. */
export const RECEIPT_REFUSALS = ['invalid', 'expired', 'outcome_mismatch'] as const;

export const verifyResponseSchema = z.union([
  receiptClaimsSchema.omit({ v: true, kid: true }).extend({ valid: z.literal(true) }),
  z.object({
    valid: z.literal(false),
    reason: z.enum(RECEIPT_REFUSALS),
    outcome: outcomeSchema.optional().describe('outcome_mismatch: the outcome the receipt states'),
  }),
]);
export type VerifyResponse = z.infer<typeof verifyResponseSchema>;

export const receiptKeyResponseSchema = z.object({
  kid: z.string(),
  alg: z.literal('EdDSA'),
  pem: z.string().describe('SPKI public key: pin it and verify receipts offline'),
  jwk: z.record(z.string(), z.unknown()),
});
export type ReceiptKeyResponse = z.infer<typeof receiptKeyResponseSchema>;

/** One action of `GET /api/guard/actions` (SPEC section 10): what an agent may ask for, and nothing secret. */
export const actionSummarySchema = z.object({
  name: z.string(),
  description: z.string().nullable(),
  approverCount: z.number().int().describe('How many people may approve (super approvers included)'),
  minApprovals: z.number().int().describe('Distinct approvals needed'),
  personas: z.array(z.string()).describe('Personas that must acknowledge first'),
  timeoutSec: z.number().int(),
  editsAllowed: z.boolean().describe('Whether approvers may edit params (approve with edits)'),
  editableParams: z.array(z.string()),
  paramsSchema: z.record(z.string(), z.unknown()).optional().describe('JSON Schema the params must pass'),
});
export type ActionSummary = z.infer<typeof actionSummarySchema>;

export const actionsResponseSchema = z.object({
  actions: z.array(actionSummarySchema),
  unknownAction: z.enum(['deny', 'manual']).describe('What happens to an action not listed'),
});
export type ActionsResponse = z.infer<typeof actionsResponseSchema>;
