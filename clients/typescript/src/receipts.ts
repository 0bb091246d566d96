import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { parseReceiptClaims, type ReceiptClaims } from '../../../domain/api-schemas.js';

/** What the executor is about to run: every field given must match the receipt's claim. */
export type ReceiptExpectations = Partial<Pick<ReceiptClaims, 'requestId' | 'action' | 'outcome' | 'payloadHash'>>;

/**
 * Checks a decision receipt (`base64url(JSON claims).base64url(Ed25519 signature)`) offline against the service's
 * public key (PEM, from `GET /api/guard/receipt-key`, pinned in the executor's config). Returns the claims, or null
 * for anything tampered, signed by another key, malformed, or not matching `expected`.
 */
export function verifyReceipt(
  receipt: string,
  publicKey: string | KeyObject,
  expected: ReceiptExpectations = {},
): ReceiptClaims | null {
  const [body, signature, ...rest] = receipt.split('.');
  if (!body || !signature || rest.length > 0) return null;
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  if (!verify(null, Buffer.from(body), key, Buffer.from(signature, 'base64url'))) return null;
  const claims = parseReceiptClaims(body);
  if (!claims) return null;
  const matches = Object.entries(expected).every(
    ([field, value]) => value === undefined || claims[field as keyof ReceiptExpectations] === value,
  );
  return matches ? claims : null;
}
