import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { parseReceiptClaims, type Outcome, type ReceiptClaims } from '../../../domain/api-schemas.js';

/**
 * What the executor is about to run: every field given must match the receipt's claim. `outcome` defaults to
 * `approved` (a denial's receipt is a valid statement, but never a licence to run); pass another outcome, or `any`,
 * to check a receipt of another decision.
 */
export type ReceiptExpectations = Partial<Pick<ReceiptClaims, 'requestId' | 'action' | 'payloadHash'>> & {
  outcome?: Outcome | 'any' | undefined;
  /** The clock that `exp` is checked against (default: now). */
  now?: Date | undefined;
};

export type ReceiptProblem = 'malformed' | 'bad_signature' | 'expired' | 'mismatch';

export type ReceiptCheck =
  { ok: true; claims: ReceiptClaims } | { ok: false; problem: ReceiptProblem; message: string; claims?: ReceiptClaims };

/**
 * Checks a decision receipt (`base64url(JSON claims).base64url(Ed25519 signature)`) offline against the service's
 * public key (PEM, from `GET /api/guard/receipt-key`, pinned in the executor's config), and says what is wrong with
 * it: malformed, not signed by that key, expired (`exp` passed), or not the expected request, action, outcome or
 * params.
 */
export function checkReceipt(
  receipt: string,
  publicKey: string | KeyObject,
  expected: ReceiptExpectations = {},
): ReceiptCheck {
  const [body, signature, ...rest] = receipt.split('.');
  if (!body || !signature || rest.length > 0) {
    return { ok: false, problem: 'malformed', message: 'not a receipt (two base64url parts joined by a dot)' };
  }
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  if (!verify(null, Buffer.from(body), key, Buffer.from(signature, 'base64url'))) {
    return { ok: false, problem: 'bad_signature', message: 'the signature does not verify with this key' };
  }
  const claims = parseReceiptClaims(body);
  if (!claims) return { ok: false, problem: 'malformed', message: 'the signed claims are not a receipt’s' };
  const now = (expected.now ?? new Date()).getTime();
  if (claims.exp !== undefined && now >= claims.exp * 1000) {
    const message = `expired at ${new Date(claims.exp * 1000).toISOString()}`;
    return { ok: false, problem: 'expired', message, claims };
  }
  const wanted = { ...expected, outcome: expected.outcome ?? 'approved' };
  for (const field of ['requestId', 'action', 'outcome', 'payloadHash'] as const) {
    const value = wanted[field];
    if (value === undefined || value === 'any' || claims[field] === value) continue;
    const message = `${field} is ${JSON.stringify(claims[field])}, expected ${JSON.stringify(value)}`;
    return { ok: false, problem: 'mismatch', message, claims };
  }
  return { ok: true, claims };
}

/** The claims of a receipt that passes `checkReceipt`, else null. */
export function verifyReceipt(
  receipt: string,
  publicKey: string | KeyObject,
  expected: ReceiptExpectations = {},
): ReceiptClaims | null {
  const check = checkReceipt(receipt, publicKey, expected);
  return check.ok ? check.claims : null;
}
