import { generateKeyPairSync, sign } from 'node:crypto';
import { checkReceipt, verifyReceipt } from '../../clients/typescript/src/index.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
const DECIDED_AT = new Date('2030-01-01T12:00:00Z');

/** A receipt as the service signs it: base64url(JSON claims).base64url(Ed25519 signature of the first part). */
function receipt(change: Record<string, unknown> = {}): string {
  const claims = {
    v: 1,
    kid: 'k1',
    requestId: 'req_1',
    action: 'deploy',
    outcome: 'approved',
    payloadHash: 'sha256:abc',
    approvers: ['U_ALICE'],
    decidedBy: 'U_ALICE',
    decidedAt: DECIDED_AT.toISOString(),
    exp: DECIDED_AT.getTime() / 1000 + 3600,
    via: 'slack',
    breakGlass: false,
    ...change,
  };
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${body}.${sign(null, Buffer.from(body), privateKey).toString('base64url')}`;
}

const at = (iso: string) => ({ now: new Date(iso) });

describe('checkReceipt: what is wrong with a receipt', () => {
  test('a valid approval inside its lifetime', () => {
    expect(checkReceipt(receipt(), pem, { requestId: 'req_1', ...at('2030-01-01T12:30:00Z') })).toMatchObject({
      ok: true,
      claims: { requestId: 'req_1', outcome: 'approved', via: 'slack' },
    });
  });

  test.each<[string, string, Parameters<typeof checkReceipt>[2], string, string]>([
    ['expired (exp passed)', receipt(), at('2030-01-01T13:00:00Z'), 'expired', 'expired at 2030-01-01T13:00:00.000Z'],
    [
      'a denial, by default',
      receipt({ outcome: 'denied' }),
      at('2030-01-01T12:01:00Z'),
      'mismatch',
      'outcome is "denied", expected "approved"',
    ],
    [
      'other params',
      receipt(),
      { payloadHash: 'sha256:def', ...at('2030-01-01T12:01:00Z') },
      'mismatch',
      'payloadHash is "sha256:abc", expected "sha256:def"',
    ],
    ['not a receipt', 'nonsense', {}, 'malformed', 'not a receipt (two base64url parts joined by a dot)'],
    [
      'signed by another key',
      receipt().replace(/\.[^.]+$/, `.${Buffer.alloc(64).toString('base64url')}`),
      {},
      'bad_signature',
      'the signature does not verify with this key',
    ],
  ])('%s', (_name, r, expected, problem, message) => {
    expect(checkReceipt(r, pem, expected)).toMatchObject({ ok: false, problem, message });
    expect(verifyReceipt(r, pem, expected)).toBeNull();
  });

  test('another outcome, or any, when asked for', () => {
    const denied = receipt({ outcome: 'denied' });
    const now = at('2030-01-01T12:01:00Z');
    expect(verifyReceipt(denied, pem, { outcome: 'denied', ...now })).toMatchObject({ outcome: 'denied' });
    expect(verifyReceipt(denied, pem, { outcome: 'any', ...now })).toMatchObject({ outcome: 'denied' });
    expect(verifyReceipt(receipt(), pem, { outcome: 'denied', ...now })).toBeNull();
  });

  test('an expired receipt is refused whatever outcome is asked for', () => {
    expect(
      checkReceipt(receipt({ outcome: 'denied' }), pem, { outcome: 'any', ...at('2031-01-01T00:00:00Z') }),
    ).toMatchObject({
      ok: false,
      problem: 'expired',
    });
  });
});
