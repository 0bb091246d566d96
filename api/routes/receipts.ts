import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import {
  apiError,
  receiptKeyResponseSchema,
  verifyBodySchema,
  verifyResponseSchema,
} from '../../domain/api-schemas.js';
import type { ApiDeps } from '../deps.js';

/** Decision receipts: verify one, or fetch the public key to verify them offline (README). */
export function receiptRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/api/guard/verify',
      {
        schema: {
          summary: 'Verify a decision receipt (offline: see receipt-key)',
          description:
            'Valid only for a receipt this service signed, before its `exp`, stating the expected `outcome` ' +
            '(`approved` unless the body asks for another, or `any`).',
          tags: ['receipts'],
          body: verifyBodySchema,
          response: {
            200: verifyResponseSchema.describe('The claims, or valid: false'),
            400: apiError('invalid_payload'),
          },
        },
      },
      async (req) => deps.receipts.check(req.body.receipt, { outcome: req.body.outcome }),
    );

    app.get(
      '/api/guard/receipt-key',
      {
        schema: {
          summary: 'The public key that signs receipts (Ed25519)',
          tags: ['receipts'],
          response: { 200: receiptKeyResponseSchema.describe('PEM and JWK; pin it in the executor') },
        },
      },
      async () => deps.receipts.publicKey(),
    );
  };
}
