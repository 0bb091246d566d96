import { execFile } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createReceiptSigner, resolveReceiptKey } from '../../api/receipts.js';
import { ConfigError, loadConfig } from '../../config/env.js';
import { payloadHash } from '../../domain/payload-hash.js';
import { approvedBy, standardPolicy, TEST_ACTIONS } from './fixtures.js';
import { startHarness, type Harness } from './harness.js';

const newKeyPem = () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const SERVICE_KEY = newKeyPem();

let h: Harness;

beforeAll(async () => {
  // Escaped newlines, as a PEM usually travels in an env file.
  h = await startHarness({
    policy: standardPolicy({ ...TEST_ACTIONS, brief: approvedBy(['U_ALICE'], 1, { receiptTtlSec: 1 }) }),
    env: { RECEIPT_PRIVATE_KEY: SERVICE_KEY.replaceAll('\n', '\\n') },
  });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const wait = async (token: string) =>
  (await h.get(`/api/guard/wait?token=${encodeURIComponent(token)}&timeoutSec=10`)).body;
const verify = async (receipt: unknown, outcome?: string) =>
  h.post('/api/guard/verify', { receipt, ...(outcome ? { outcome } : {}) });

async function decided(decision: 'approve' | 'deny', params?: Record<string, unknown>, action = 'simple') {
  const req = await h.create(action, params ? { params } : {});
  await h.clickOutcome(decision, req.requestId, 'U_ALICE');
  return { req, body: await wait(req.token) };
}

/** Re-encodes a receipt's claims with `change` applied, keeping the original signature. */
function tamper(receipt: string, change: Record<string, unknown>): string {
  const [body, signature] = receipt.split('.') as [string, string];
  const claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Record<string, unknown>;
  return `${Buffer.from(JSON.stringify({ ...claims, ...change })).toString('base64url')}.${signature}`;
}

describe('receipts on terminal answers', () => {
  test('round trip: the receipt of an approval verifies and binds id, action, outcome, params and approvers', async () => {
    const { req, body } = await decided('approve');
    expect(body.receipt).toMatch(/^[\w-]+\.[\w-]+$/);
    const res = await verify(body.receipt);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      valid: true,
      requestId: req.requestId,
      action: 'simple',
      outcome: 'approved',
      payloadHash: payloadHash(body.effectiveParams),
      approvers: ['U_ALICE'],
      decidedBy: 'U_ALICE',
      decidedAt: body.decidedAt,
      // The default policy lifetime: an hour after the decision.
      exp: Math.floor(Date.parse(body.decidedAt) / 1000) + 3600,
      via: 'slack',
      breakGlass: false,
    });
    expect(res.body.payloadHash).toBe(body.payloadHash);

    // Every terminal answer carries the same receipt (Ed25519 signatures are deterministic).
    const status = await h.get(`/api/guard/status?requestId=${req.requestId}`);
    const posted = await h.post('/api/guard/wait', { token: req.token });
    expect(status.body.receipt).toBe(body.receipt);
    expect(posted.body.receipt).toBe(body.receipt);
  });

  test('a denial has a receipt too, saying denied; it verifies only when a denial is what the caller expects', async () => {
    const { body } = await decided('deny');
    expect((await verify(body.receipt)).body).toEqual({ valid: false, reason: 'outcome_mismatch', outcome: 'denied' });
    expect((await verify(body.receipt, 'denied')).body).toMatchObject({
      valid: true,
      outcome: 'denied',
      approvers: [],
    });
  });

  test('an open request has no receipt', async () => {
    const req = await h.create('simple');
    expect((await h.post('/api/guard/wait', { token: req.token })).body.receipt).toBeUndefined();
    expect((await h.get(`/api/guard/status?requestId=${req.requestId}`)).body.receipt).toBeUndefined();
  });
});

describe('tampered and foreign receipts → 200 {valid: false}', () => {
  let approved: string;
  let denied: string;
  beforeAll(async () => {
    approved = (await decided('approve')).body.receipt;
    denied = (await decided('deny')).body.receipt;
  }, 30_000);

  const cases: Array<[string, () => string]> = [
    ['a denial rewritten as an approval', () => tamper(denied, { outcome: 'approved' })],
    ['other params', () => tamper(approved, { payloadHash: payloadHash({ database: 'prod' }) })],
    ['another approver', () => tamper(approved, { approvers: ['U_MALLORY'] })],
    ['another request id', () => tamper(approved, { requestId: 'req_other' })],
    ['a changed signature character', () => flipSignatureChar(approved)],
    ['the signature of another receipt', () => `${approved.split('.')[0]}.${denied.split('.')[1]}`],
    ['an extra segment', () => `${approved}.x`],
    ['no signature', () => approved.split('.')[0] ?? ''],
    ['garbage', () => 'not-a-receipt'],
    ['an empty string', () => ''],
  ];
  test.each(cases)('%s', async (_name, make) => {
    const res = await verify(make(), 'any');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ valid: false, reason: 'invalid' });
  });

  test('signed with another key, even when it claims the service key id', async () => {
    const { body } = await decided('approve');
    const view = await h.api.gateway.view(body.requestId);
    const foreign = createReceiptSigner(newKeyPem());
    const forged = foreign.issue(view) ?? '';
    expect(forged).not.toBe('');
    expect((await verify(forged)).body).toEqual({ valid: false, reason: 'invalid' });

    const serviceKid = (await h.get('/api/guard/receipt-key')).body.kid as string;
    const claims = Buffer.from(JSON.stringify({ ...decode(body.receipt), kid: serviceKid })).toString('base64url');
    const signature = sign(null, Buffer.from(claims), generateKeyPairSync('ed25519').privateKey).toString('base64url');
    expect((await verify(`${claims}.${signature}`)).body).toEqual({ valid: false, reason: 'invalid' });
  });

  test('a body without a receipt string → 400 invalid_payload', async () => {
    for (const body of [{}, { receipt: 42 }]) {
      const res = await h.post('/api/guard/verify', body);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_payload');
    }
  });
});

describe('GET /api/guard/receipt-key', () => {
  test('publishes the configured key as PEM and JWK, and it verifies issued receipts', async () => {
    const res = await h.get('/api/guard/receipt-key');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ alg: 'EdDSA', jwk: { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' } });
    expect(res.body.jwk.kid).toBe(res.body.kid);
    expect(res.body.jwk.d).toBeUndefined();
    const expected = createPublicKey(SERVICE_KEY).export({ type: 'spki', format: 'pem' });
    expect(res.body.pem).toBe(expected);
    const fromJwk = createPublicKey({ key: res.body.jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    expect(fromJwk).toBe(expected);
    const { body } = await decided('approve');
    expect(decode(body.receipt).kid).toBe(res.body.kid);
  });
});

describe('the README snippet verifies receipts offline', () => {
  const exec = promisify(execFile);

  /** The two `js` blocks of the README section, run as written in a plain Node process (no service code). */
  async function runSnippet(cases: Array<{ receipt: string; pem: string; requestId: string; params: unknown }>) {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Verifying a decision receipt offline'));
    const blocks = [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
    expect(blocks).toHaveLength(2);
    const [library, gate] = blocks as [string, string];
    const script = [
      library,
      'function gate(receipt, publicKeyPem, requestId, params) {',
      gate,
      '  return claims;',
      '}',
      'const cases = JSON.parse(process.argv[2]);',
      'const results = cases.map((c) => {',
      '  const claims = verifyReceipt(c.receipt, c.pem);',
      '  const hash = payloadHash(c.params);',
      '  try { gate(c.receipt, c.pem, c.requestId, c.params); return { claims, hash, runs: true }; }',
      '  catch (err) { return { claims, hash, runs: false, error: err.message }; }',
      '});',
      'console.log(JSON.stringify(results));',
    ].join('\n');
    const file = join(await mkdtemp(join(tmpdir(), 'receipt-snippet-')), 'verify.mjs');
    await writeFile(file, script);
    const { stdout } = await exec(process.execPath, [file, JSON.stringify(cases)]);
    return JSON.parse(stdout) as Array<{ claims: Record<string, unknown> | null; hash: string; runs: boolean }>;
  }

  test('approves exactly the approved params, refuses everything else', async () => {
    const params = { database: 'orders', steps: 3, plan: { z: [{ b: 1, a: 2 }], y: null } };
    const { req, body } = await decided('approve', params);
    const { body: deniedBody } = await decided('deny');
    const { req: briefReq, body: briefBody } = await decided('approve', params, 'brief');
    const pem = (await h.get('/api/guard/receipt-key')).body.pem as string;
    const foreignPem = createPublicKey(newKeyPem()).export({ type: 'spki', format: 'pem' }).toString();
    const reordered = { plan: { y: null, z: [{ a: 2, b: 1 }] }, steps: 3, database: 'orders' };

    const results = await runSnippet([
      { receipt: body.receipt, pem, requestId: req.requestId, params: reordered },
      { receipt: body.receipt, pem, requestId: req.requestId, params: { ...params, steps: 4 } },
      { receipt: body.receipt, pem, requestId: 'req_other', params },
      { receipt: tamper(body.receipt, { approvers: ['U_X'] }), pem, requestId: req.requestId, params },
      { receipt: body.receipt, pem: foreignPem, requestId: req.requestId, params },
      { receipt: deniedBody.receipt, pem, requestId: deniedBody.requestId, params: deniedBody.effectiveParams },
      { receipt: 'garbage', pem, requestId: req.requestId, params },
    ]);
    // Its one-second lifetime over, the brief approval is no licence any more.
    await new Promise((r) =>
      setTimeout(r, Math.max(0, Number(decode(briefBody.receipt).exp) * 1000 - Date.now() + 50)),
    );
    const [expired] = await runSnippet([{ receipt: briefBody.receipt, pem, requestId: briefReq.requestId, params }]);
    expect(expired).toMatchObject({ runs: false, claims: { outcome: 'approved' } });
    expect((await verify(briefBody.receipt)).body).toEqual({ valid: false, reason: 'expired' });

    const [ok, edited, otherId, tampered, foreign, deniedResult, garbage] = results;
    expect(ok).toMatchObject({ runs: true, hash: body.payloadHash });
    expect(ok?.claims).toMatchObject({ requestId: req.requestId, outcome: 'approved', approvers: ['U_ALICE'] });
    expect(edited).toMatchObject({ runs: false });
    expect(edited?.hash).not.toBe(body.payloadHash);
    expect(otherId).toMatchObject({ runs: false });
    expect(tampered).toMatchObject({ runs: false, claims: null });
    expect(foreign).toMatchObject({ runs: false, claims: null });
    expect(deniedResult).toMatchObject({ runs: false, claims: { outcome: 'denied' } });
    expect(garbage).toMatchObject({ runs: false, claims: null });
  });
});

describe('receipt key configuration', () => {
  const base = { NODE_ENV: 'test' };

  test('an escaped PEM is accepted; anything but an Ed25519 private key names the variable', () => {
    const config = loadConfig({ ...base, RECEIPT_PRIVATE_KEY: SERVICE_KEY.replaceAll('\n', '\\n') });
    expect(config.RECEIPT_PRIVATE_KEY).toBe(SERVICE_KEY);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    for (const bad of ['not a key', rsa]) {
      expect(() => loadConfig({ ...base, RECEIPT_PRIVATE_KEY: bad })).toThrow(/RECEIPT_PRIVATE_KEY/);
    }
  });

  test('production refuses to start without one', () => {
    const production = {
      NODE_ENV: 'production',
      SLACK_SIGNING_SECRET: 's',
      SLACK_BOT_TOKEN: 'xoxb-1',
      TOKEN_SECRET: 't',
      ADMIN_TOKEN: 'a',
    };
    expect(() => loadConfig(production)).toThrow(ConfigError);
    expect(() => loadConfig(production)).toThrow(/RECEIPT_PRIVATE_KEY: is required/);
    expect(loadConfig({ ...production, RECEIPT_PRIVATE_KEY: SERVICE_KEY }).RECEIPT_PRIVATE_KEY).toBe(SERVICE_KEY);
  });

  test('development: a key generated on first start is kept and reused, readable only by its owner', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'receipt-key-')), '.data', 'receipt-key.pem');
    const first = resolveReceiptKey(undefined, file);
    expect(resolveReceiptKey(undefined, file)).toBe(first);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const signer = createReceiptSigner(first);
    expect(createReceiptSigner(resolveReceiptKey(undefined, file)).kid).toBe(signer.kid);
    expect(resolveReceiptKey(SERVICE_KEY, file)).toBe(SERVICE_KEY);
  });
});

function decode(receipt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(receipt.split('.')[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** Changes one character in the middle of the signature (the last one may only carry padding bits). */
function flipSignatureChar(receipt: string): string {
  const i = receipt.indexOf('.') + 20;
  return receipt.slice(0, i) + (receipt[i] === 'A' ? 'B' : 'A') + receipt.slice(i + 1);
}
