import type { FastifyReply } from 'fastify';
import { apiError, queuedResponseSchema, stateResponseSchema } from '../domain/api-schemas.js';
import { REFUSAL_REASONS } from '../domain/request-state.js';
import type { CommandOutcome } from '../gateway/types.js';
import type { ApiDeps } from './deps.js';
import { HttpError } from './errors.js';
import { waitBody } from './views.js';

/** The answers of a command sent to the workflow (see answerCommand). */
export const commandAnswers = {
  200: stateResponseSchema.describe('Applied: the new state'),
  202: queuedResponseSchema.describe('The workflow could not answer in time: queued as a durable signal'),
  404: apiError('not_found'),
  409: apiError(...REFUSAL_REASONS),
};

/** Maps a workflow command's outcome: applied → the new state, queued (worker away) → 202, refused → its code. */
export function answerCommand(deps: ApiDeps, reply: FastifyReply, requestId: string, outcome: CommandOutcome) {
  if (outcome.ok && outcome.view) return reply.code(200).send(waitBody(outcome.view, deps.receipts));
  if (outcome.ok) return reply.code(202).send({ requestId, queued: true as const });
  if (outcome.reason === 'not_found') throw new HttpError(404, 'not_found');
  throw new HttpError(409, outcome.reason, { message: outcome.message });
}

/** `applied`, `queued` or the refusal's reason, for the audit line of an operator's act. */
export function resultOf(outcome: CommandOutcome): string {
  if (!outcome.ok) return outcome.reason;
  return outcome.view ? 'applied' : 'queued';
}
