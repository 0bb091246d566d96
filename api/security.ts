import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Constant-time string comparison; hashing first makes the lengths equal so nothing leaks through them. */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

const TOKEN_VERSION = 'gt1';

/**
 * Request tokens are capabilities: `gt1.<requestId>.<HMAC>`. Verifying one needs only the secret, no lookup,
 * so every API replica sharing TOKEN_SECRET accepts every other's tokens.
 */
export function createTokenSigner(secret: string) {
  const mac = (requestId: string) =>
    createHmac('sha256', secret).update(`${TOKEN_VERSION}:${requestId}`).digest('base64url');
  return {
    issue: (requestId: string): string => `${TOKEN_VERSION}.${requestId}.${mac(requestId)}`,
    /** The request id the token grants, or null for anything forged, truncated or malformed. */
    verify(token: string): string | null {
      // A keyed request id has a '.' of its own (gateway/ids.ts): the id is everything between the first and last.
      const first = token.indexOf('.');
      const last = token.lastIndexOf('.');
      const version = token.slice(0, first);
      const requestId = token.slice(first + 1, last);
      const sig = token.slice(last + 1);
      if (first < 0 || version !== TOKEN_VERSION || !requestId || !sig) return null;
      return safeEqual(sig, mac(requestId)) ? requestId : null;
    },
  };
}
export type TokenSigner = ReturnType<typeof createTokenSigner>;

/**
 * A secret from the environment, or in development one generated once and kept under .data/ so tokens stay
 * valid across restarts.
 */
export function resolveSecret(value: string | undefined, devFile: string): string {
  if (value) return value;
  try {
    return readFileSync(devFile, 'utf8').trim();
  } catch {
    const secret = randomBytes(32).toString('base64url');
    mkdirSync(dirname(devFile), { recursive: true });
    writeFileSync(devFile, secret, { mode: 0o600 });
    return secret;
  }
}
