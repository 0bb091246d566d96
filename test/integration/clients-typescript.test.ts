/**
 * The TypeScript client (clients/typescript) against the running service: real HTTP, real Temporal, decisions
 * made through signed Slack interactions; network faults come from a loopback proxy in between.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CancelledError,
  DeniedError,
  ExpiredError,
  GuardClient,
  IdempotencyConflictError,
  InvalidRequestError,
  PolicyDeniedError,
  RateLimitedError,
  UnauthorizedError,
  checkReceipt,
  verifyReceipt,
  WaitTimeoutError,
} from '../../clients/typescript/src/index.js';
import { payloadHash } from '../../domain/payload-hash.js';
import {
  AGENT_KEY,
  decide,
  decideWhenPosted,
  newParams,
  OUTCOME_CASES,
  receiptKeyPem,
  requestIdByMarker,
  requestInput,
  startClientsHarness,
  startFaultProxy,
  type FaultProxy,
} from './clients-support.js';
import { eventually } from '../helpers/eventually.js';
import type { Harness } from './harness.js';
import { buttonsOf, counter } from './slack-support.js';

let h: Harness;
let proxy: FaultProxy;
let guard: GuardClient;
let viaProxy: GuardClient;
let pem: string;

beforeAll(async () => {
  h = await startClientsHarness();
  proxy = await startFaultProxy(h.url);
  guard = new GuardClient({ baseUrl: h.url, agentKey: AGENT_KEY });
  viaProxy = new GuardClient({ baseUrl: proxy.url, agentKey: AGENT_KEY, backoffMs: 100 });
  pem = await receiptKeyPem(h);
}, 60_000);

afterAll(async () => {
  await proxy?.close();
  await h?.close();
});

const callsTo = (path: string, since = 0) => proxy.calls.filter((c) => c.path === path && c.at >= since);

describe('requestApproval(input, { wait: true })', () => {
  test.each(OUTCOME_CASES.map((c) => [c.name, c] as const))('%s: outcome, effective params, receipt', async (_, c) => {
    const params = newParams();
    const deciding = decideWhenPosted(h, params, c.decision);
    const outcome = await guard.requestApproval(requestInput(c.action, params), {
      wait: true,
      throwOnRejection: false,
    });
    const requestId = await deciding;
    expect(outcome).toMatchObject({ requestId, status: c.status, effectiveParams: c.effective(params) });
    expect(outcome.payloadHash).toBe(payloadHash(outcome.effectiveParams));
    expect(outcome.overridden).toBe(c.decision === 'edit');
    const expected = { requestId, payloadHash: outcome.payloadHash };
    const claims = verifyReceipt(outcome.receipt!, pem, { ...expected, outcome: c.status });
    expect(claims).toMatchObject({ requestId, action: c.action, outcome: c.status });
    // Without an explicit outcome only an approval verifies: a denial's receipt is never a licence to run.
    const byDefault = checkReceipt(outcome.receipt!, pem, expected);
    if (c.status === 'approved') expect(byDefault).toMatchObject({ ok: true });
    else
      expect(byDefault).toMatchObject({
        ok: false,
        problem: 'mismatch',
        message: `outcome is "${c.status}", expected "approved"`,
      });
  });

  test('fails closed by default: a denial and an expiry are typed errors carrying the final state', async () => {
    const params = newParams();
    const deciding = decideWhenPosted(h, params, 'deny');
    const denied = guard.requestApproval(requestInput('deploy', params), { wait: true });
    await expect(denied).rejects.toBeInstanceOf(DeniedError);
    await deciding;
    await expect(denied).rejects.toMatchObject({ outcome: { status: 'denied', decidedBy: 'U_ALICE' } });

    const expiring = guard.requestApproval(requestInput('short', newParams()), { wait: true, transport: 'sse' });
    await expect(expiring).rejects.toBeInstanceOf(ExpiredError);
  });

  test('a request cancelled while waiting ends in CancelledError', async () => {
    const waiting = guard.requestApproval(requestInput('deploy', newParams()), {
      wait: true,
      onCreated: (created) => void guard.cancel(created.token, 'no longer needed'),
    });
    await expect(waiting).rejects.toBeInstanceOf(CancelledError);
    await expect(waiting).rejects.toMatchObject({ outcome: { status: 'cancelled', reason: 'no longer needed' } });
  });

  test('refusals are typed: policy_denied, unauthorized, invalid input (caught before any call)', async () => {
    await expect(guard.requestApproval(requestInput('no_such_action', {}))).rejects.toBeInstanceOf(PolicyDeniedError);
    const stranger = new GuardClient({ baseUrl: h.url, agentKey: 'wrong-key' });
    await expect(stranger.requestApproval(requestInput('deploy', {}))).rejects.toBeInstanceOf(UnauthorizedError);
    const before = proxy.calls.length;
    const bad = { ...requestInput('deploy', {}), meta: { ...requestInput('deploy', {}).meta, justification: 'x' } };
    const invalid = viaProxy.requestApproval(bad);
    await expect(invalid).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(invalid).rejects.toMatchObject({ body: { details: [{ path: 'meta.justification' }] } });
    expect(proxy.calls.length).toBe(before);
  });

  test('a wait bound gives WaitTimeoutError with the last state; waiting again finds the decision', async () => {
    const params = newParams();
    const created = await guard.requestApproval(requestInput('deploy', params));
    const timedOut = guard.waitForDecision(created.token, { timeoutMs: 1500 });
    await expect(timedOut).rejects.toBeInstanceOf(WaitTimeoutError);
    await expect(timedOut).rejects.toMatchObject({ last: { status: 'ready_for_approval' } });
    await decide(h, created.requestId, 'approve');
    await expect(guard.waitForDecision(created.token, { timeoutMs: 30_000 })).resolves.toMatchObject({
      status: 'approved',
    });
  });
});

describe('retries never duplicate a request', () => {
  test('the answer to the create is lost: the retry carries the same idempotency key and finds the same request', async () => {
    const created = await counter(h, 'approval_requests_total', { action: 'deploy' });
    const since = Date.now();
    proxy.inject('POST', '/api/guard/request', 'drop-answer');
    const params = newParams();
    const deciding = decideWhenPosted(h, params, 'approve');
    const outcome = await viaProxy.requestApproval(requestInput('deploy', params), { wait: true });
    expect(outcome.status).toBe('approved');
    expect(await deciding).toBe(outcome.requestId);
    const posts = callsTo('/api/guard/request', since);
    expect(posts).toHaveLength(2);
    expect(posts[0]!.headers['idempotency-key']).toBe(outcome.idempotencyKey);
    expect(posts[1]!.headers['idempotency-key']).toBe(outcome.idempotencyKey);
    expect(await counter(h, 'approval_requests_total', { action: 'deploy' })).toBe(created + 1);
  });

  test('the same explicit key twice: the same request, marked as a replay', async () => {
    const input = requestInput('deploy', newParams());
    const first = await guard.requestApproval(input, { idempotencyKey: 'deploy-build-981' });
    const second = await guard.requestApproval(input, { idempotencyKey: 'deploy-build-981' });
    expect(second.requestId).toBe(first.requestId);
    expect(first.idempotentReplay).toBeUndefined();
    expect(second.idempotentReplay).toBe(true);
  });

  test('429 with Retry-After: waited out, then the request is made once', async () => {
    const since = Date.now();
    proxy.inject('POST', '/api/guard/request', {
      status: 429,
      headers: { 'retry-after': '1' },
      body: { error: 'rate_limited', retryAfterSec: 1 },
    });
    const created = await viaProxy.requestApproval(requestInput('deploy', newParams()));
    const posts = callsTo('/api/guard/request', since);
    expect(posts).toHaveLength(2);
    expect(posts[1]!.at - posts[0]!.at).toBeGreaterThanOrEqual(950);
    expect(created.status).toBe('ready_for_approval');
  });

  test('a Retry-After beyond the client bound is not waited out: RateLimitedError at once', async () => {
    const impatient = new GuardClient({ baseUrl: proxy.url, agentKey: AGENT_KEY, maxRetryAfterSec: 5 });
    proxy.inject('POST', '/api/guard/request', {
      status: 429,
      headers: { 'retry-after': '120' },
      body: { error: 'rate_limited', retryAfterSec: 120 },
    });
    const refused = impatient.requestApproval(requestInput('deploy', newParams()));
    await expect(refused).rejects.toBeInstanceOf(RateLimitedError);
    await expect(refused).rejects.toMatchObject({ retryAfterSec: 120 });
  });
});

describe('waiting rides out failures', () => {
  test('long-poll: a 503 with Retry-After is honoured before polling again', async () => {
    const since = Date.now();
    proxy.inject('GET', '/api/guard/wait', {
      status: 503,
      headers: { 'retry-after': '1' },
      body: { error: 'temporal_unavailable' },
    });
    const params = newParams();
    const deciding = decideWhenPosted(h, params, 'approve');
    const outcome = await viaProxy.requestApproval(requestInput('deploy', params), { wait: true });
    expect(outcome).toMatchObject({ requestId: await deciding, status: 'approved' });
    const polls = callsTo('/api/guard/wait', since);
    expect(polls.length).toBeGreaterThanOrEqual(2);
    expect(polls[1]!.at - polls[0]!.at).toBeGreaterThanOrEqual(950);
  });

  test('SSE: a stream cut after its first event reconnects and still delivers the decision', async () => {
    const since = Date.now();
    proxy.inject('GET', '/api/guard/wait-sse', 'cut-stream');
    const seen: string[] = [];
    const params = newParams();
    const waiting = viaProxy.requestApproval(requestInput('deploy', params), {
      wait: true,
      transport: 'sse',
      onState: (s) => seen.push(s.status),
    });
    const requestId = await requestIdByMarker(h, String(params.marker));
    // Decide only once the client is on its second stream: the first one was cut.
    await eventually(() => (callsTo('/api/guard/wait-sse', since).length >= 2 ? true : undefined), {
      timeoutMs: 20_000,
      what: 'the client’s second event stream',
    });
    await decide(h, requestId, 'approve');
    const outcome = await waiting;
    expect(outcome).toMatchObject({ requestId, status: 'approved', effectiveParams: params });
    expect(callsTo('/api/guard/wait-sse', since)).toHaveLength(2);
    expect(seen[0]).toBe('ready_for_approval');
    expect(seen.at(-1)).toBe('approved');
  });
});

describe('verifyReceipt offline', () => {
  test('binds the decision: tampered, foreign-key and mismatched receipts are refused', async () => {
    const params = newParams();
    const deciding = decideWhenPosted(h, params, 'approve');
    const outcome = await guard.requestApproval(requestInput('deploy', params), { wait: true });
    await deciding;
    const receipt = outcome.receipt!;
    expect(verifyReceipt(receipt, pem)).toMatchObject({ requestId: outcome.requestId, outcome: 'approved' });
    expect(verifyReceipt(receipt, pem, { payloadHash: payloadHash({ ...params, replicas: 99 }) })).toBeNull();
    expect(verifyReceipt(receipt, pem, { requestId: 'req_other' })).toBeNull();
    const [body, signature] = receipt.split('.') as [string, string];
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...claims, outcome: 'approved', approvers: ['U_MALLORY'] }));
    expect(verifyReceipt(`${forged.toString('base64url')}.${signature}`, pem)).toBeNull();
    const otherKey = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(verifyReceipt(receipt, otherKey)).toBeNull();
    expect(verifyReceipt('not-a-receipt', pem)).toBeNull();
    expect((await guard.receiptKey()).pem).toBe(pem);
  });
});

describe('the TypeScript example of docs/agents.md (the README’s), run as written', () => {
  const run = promisify(execFile);
  let dir: string;
  beforeAll(async () => {
    const doc = await readFile(join(process.cwd(), 'docs/agents.md'), 'utf8');
    const example = /<!-- typescript-example[^>]*-->\s*```ts\n([\s\S]*?)```/.exec(doc)?.[1];
    if (!example) throw new Error('docs/agents.md has no typescript-example block');
    // A checkout as the reader has one: the example at its root, beside clients/ and node_modules/.
    dir = await mkdtemp(join(tmpdir(), 'guard-example-'));
    for (const entry of ['clients', 'domain', 'node_modules', 'package.json', 'tsconfig.json']) {
      await symlink(join(process.cwd(), entry), join(dir, entry));
    }
    await writeFile(join(dir, 'approve.ts'), example);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** The example's request: the newest Slack message showing its version that is not in `seen`. */
  const nextExampleRequest = (seen: Set<string>) =>
    eventually(
      () =>
        [...h.fakeSlack.messages.values()]
          .filter((m) => !m.thread_ts && JSON.stringify(m.blocks).includes('v1.4.2'))
          .map((m) => buttonsOf(m)[0]?.value)
          .find((id): id is string => id !== undefined && !seen.has(id)),
      { timeoutMs: 30_000, what: 'the example’s request in Slack' },
    );
  const runExample = () =>
    run('npx', ['tsx', 'approve.ts'], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', GUARD_URL: h.url, GUARD_AGENT_KEY: AGENT_KEY },
    }).then(
      (r) => ({ code: 0, ...r }),
      (err: { code: number; stdout: string; stderr: string }) => err,
    );

  test('it type-checks, runs once approved, and exits 1 on a denial', async () => {
    await run(
      'npx',
      ['tsc', '--noEmit', '--strict', '--skipLibCheck', '--module', 'nodenext', '--target', 'es2022', 'approve.ts'],
      { cwd: dir },
    );
    const seen = new Set<string>();
    const approving = nextExampleRequest(seen).then(async (id) => (seen.add(id), await decide(h, id, 'approve'), id));
    const approved = await runExample();
    const approvedId = await approving;
    expect(approved.code).toBe(0);
    expect(approved.stdout).toBe(`${approvedId} approved by U_ALICE: deploying {"service":"web","version":"v1.4.2"}\n`);
    expect(approved.stderr).toContain(`waiting for ${approvedId} in Slack`);

    const denying = nextExampleRequest(seen).then(async (id) => (await decide(h, id, 'deny'), id));
    const denied = await runExample();
    const deniedId = await denying;
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain(`request ${deniedId} denied by U_ALICE`);
  }, 120_000);
});

describe('issue 17: discoverable actions, conflicting keys, receipts that cannot be misused', () => {
  test('actions(): what an agent may ask for, with each action’s params schema', async () => {
    const { actions, unknownAction } = await guard.actions();
    expect(unknownAction).toBe('deny');
    expect(actions.map((a) => a.name).sort()).toEqual(['brief', 'deploy', 'pair', 'release', 'scale', 'short']);
    expect(actions.find((a) => a.name === 'scale')).toMatchObject({
      approverCount: 2,
      minApprovals: 1,
      editsAllowed: true,
      editableParams: ['replicas'],
    });
    expect(actions.find((a) => a.name === 'release')).toMatchObject({
      description: 'Tag a release',
      paramsSchema: { required: ['version'] },
    });
  });

  test('params failing the action’s schema: InvalidRequestError naming the param; a policy denial lists the actions', async () => {
    const refused = await guard.createRequest(requestInput('release', { version: 'latest' })).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InvalidRequestError);
    expect((refused as InvalidRequestError).body?.details).toEqual([
      { path: 'params.version', message: expect.stringContaining('must match pattern') },
    ]);
    const denied = await guard.createRequest(requestInput('drop_database', {})).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(PolicyDeniedError);
    expect((denied as PolicyDeniedError).body?.actions).toEqual(expect.arrayContaining(['deploy', 'release']));
  });

  test('an Idempotency-Key reused with other params: IdempotencyConflictError naming the first request', async () => {
    const params = newParams();
    const first = await guard.createRequest(requestInput('deploy', params), { idempotencyKey: 'k-conflict' });
    const again = await guard.createRequest(requestInput('deploy', params), { idempotencyKey: 'k-conflict' });
    expect(again).toMatchObject({ requestId: first.requestId, idempotentReplay: true });
    const other = { ...params, replicas: 9 };
    const conflict = await guard
      .createRequest(requestInput('deploy', other), { idempotencyKey: 'k-conflict' })
      .catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(IdempotencyConflictError);
    expect((conflict as IdempotencyConflictError).body).toMatchObject({
      error: 'idempotency_conflict',
      requestId: first.requestId,
      detail: expect.stringContaining('params'),
    });
  });

  test('a receipt past its exp is refused by verifyReceipt (the action’s receiptTtlSec is 1 s)', async () => {
    const params = newParams();
    const deciding = decideWhenPosted(h, params, 'approve');
    const outcome = await guard.requestApproval(requestInput('brief', params), { wait: true });
    await deciding;
    const receipt = outcome.receipt!;
    const decidedAt = new Date(outcome.decidedAt!);
    const claims = verifyReceipt(receipt, pem, { requestId: outcome.requestId, now: decidedAt });
    expect(claims).toMatchObject({ outcome: 'approved', via: 'slack', breakGlass: false });
    expect(claims!.exp).toBe(Math.floor(decidedAt.getTime() / 1000) + 1);
    expect(checkReceipt(receipt, pem, { now: new Date(claims!.exp * 1000) })).toMatchObject({
      ok: false,
      problem: 'expired',
    });
    // And on the real clock, a moment later.
    await eventually(() => (verifyReceipt(receipt, pem) === null ? true : undefined), {
      timeoutMs: 5000,
      what: 'the receipt to expire',
    });
  });
});
