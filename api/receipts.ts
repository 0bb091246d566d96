import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  RECEIPT_VERSION,
  parseReceiptClaims,
  type Outcome,
  type ReceiptClaims,
  type ReceiptKeyResponse,
  type VerifyResponse,
} from '../domain/api-schemas.js';
import { isTerminal } from '../domain/request-state.js';
import type { RequestView } from '../workflows/messages.js';

export type VerifiedReceipt = { valid: true } & Omit<ReceiptClaims, 'v' | 'kid'>;

/** Receipts of views frozen before plans carried a receipt lifetime. */
const DEFAULT_RECEIPT_TTL_SEC = 3600;

/**
 * Decision receipts: `base64url(JSON claims).base64url(Ed25519 signature over the first segment)`. Anyone with
 * the public key verifies one offline; only the API holding the private key can issue one.
 */
export function createReceiptSigner(privateKeyPem: string) {
  const privateKey = createPrivateKey(privateKeyPem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('the receipt key must be an Ed25519 private key');
  const publicKey = createPublicKey(privateKey);
  const kid = keyId(publicKey);

  return {
    kid,
    /** A receipt for a terminal view; null while the request is still open. */
    issue(view: RequestView): string | null {
      const claims = claimsOf(view, kid);
      if (!claims) return null;
      const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
      return `${body}.${sign(null, Buffer.from(body), privateKey).toString('base64url')}`;
    },
    /**
     * A receipt this service signed, still valid at `nowMs` and stating `outcome` (default `approved`: a denial must
     * never read as a licence to run); why not otherwise.
     */
    check(receipt: string, opts: { outcome?: Outcome | 'any'; nowMs?: number } = {}): VerifyResponse {
      const claims = this.verify(receipt);
      if (!claims) return { valid: false, reason: 'invalid' };
      const expected = opts.outcome ?? 'approved';
      if (expected !== 'any' && claims.outcome !== expected) {
        return { valid: false, reason: 'outcome_mismatch', outcome: claims.outcome };
      }
      if ((opts.nowMs ?? Date.now()) >= claims.exp * 1000) return { valid: false, reason: 'expired' };
      return claims;
    },
    /** The claims of a receipt this service signed, or null for anything tampered, foreign or malformed. */
    verify(receipt: string): VerifiedReceipt | null {
      const [body, signature, ...rest] = receipt.split('.');
      if (!body || !signature || rest.length > 0) return null;
      if (!verify(null, Buffer.from(body), publicKey, Buffer.from(signature, 'base64url'))) return null;
      const claims = parseReceiptClaims(body);
      if (!claims || claims.kid !== kid) return null;
      const { v: _v, kid: _kid, ...fields } = claims;
      return { valid: true, ...fields };
    },
    /** The public key for offline verification, as PEM and as a JWK. */
    publicKey(): ReceiptKeyResponse {
      return {
        kid,
        alg: 'EdDSA',
        pem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'EdDSA', use: 'sig' },
      };
    },
  };
}
export type ReceiptSigner = ReturnType<typeof createReceiptSigner>;

/** What a receipt of a decided view states; null while the request is open. */
function claimsOf(view: RequestView, kid: string): ReceiptClaims | null {
  if (!isTerminal(view.status) || !view.decidedAt) return null;
  return {
    v: RECEIPT_VERSION,
    kid,
    requestId: view.requestId,
    action: view.action,
    outcome: view.status as ReceiptClaims['outcome'],
    payloadHash: view.payloadHash,
    approvers: view.approvals.map((a) => a.userId),
    decidedBy: view.decidedBy,
    decidedAt: view.decidedAt,
    exp: Math.floor(Date.parse(view.decidedAt) / 1000) + (view.receiptTtlSec ?? DEFAULT_RECEIPT_TTL_SEC),
    via: view.decidedVia ?? 'api',
    breakGlass: view.breakGlass ?? false,
  };
}

/** Derived from the key itself, so every replica sharing the key names it the same way. */
function keyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64url').slice(0, 16);
}

/**
 * The receipt key from the environment, or in development one generated on first start and kept under .data/
 * so receipts stay verifiable across restarts. Linking a finished file into place never clobbers a key
 * another process wrote first.
 */
export function resolveReceiptKey(value: string | undefined, devFile: string): string {
  if (value) return value;
  try {
    return readFileSync(devFile, 'utf8');
  } catch {
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    mkdirSync(dirname(devFile), { recursive: true });
    const tmp = `${devFile}.${process.pid}.tmp`;
    writeFileSync(tmp, pem, { mode: 0o600 });
    try {
      linkSync(tmp, devFile);
    } catch {
      // Another process linked its key first: use that one.
    } finally {
      unlinkSync(tmp);
    }
    return readFileSync(devFile, 'utf8');
  }
}
