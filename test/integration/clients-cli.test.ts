/**
 * The `guard` CLI (clients/cli) as a shell step runs it: a child process of its shim, configured by environment,
 * judged by its exit code, stdout and stderr, against the running service (real HTTP, real Temporal, decisions
 * through signed Slack interactions).
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { payloadHash } from '../../domain/payload-hash.js';
import {
  AGENT_KEY,
  decideWhenPosted,
  newParams,
  OUTCOME_CASES,
  receiptKeyPem,
  requestIdByMarker,
  startClientsHarness,
} from './clients-support.js';
import { eventually } from '../helpers/eventually.js';
import type { Harness } from './harness.js';
import { messageOf, textOf } from './slack-support.js';

let h: Harness;
let pemFile: string;

beforeAll(async () => {
  h = await startClientsHarness();
  pemFile = join(h.dir, 'receipt-key.pem');
  await writeFile(pemFile, await receiptKeyPem(h));
}, 60_000);

afterAll(async () => {
  await h?.close();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command with only the environment a CI step would set for it. */
interface RunOptions {
  env?: Record<string, string>;
  stdin?: string;
  /** Called with everything written to stderr so far, as it comes. */
  onStderr?: (stderr: string) => void;
  cwd?: string;
}

function run(command: string, args: string[], opts: RunOptions = {}) {
  return new Promise<Run>((resolve, reject) => {
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
      GUARD_URL: h.url,
      GUARD_AGENT_KEY: AGENT_KEY,
      GUARD_REPO: 'acme/pipeline',
      GUARD_REQUESTER: 'ci-job-17',
      ...opts.env,
    };
    const child = spawn(command, args, { cwd: opts.cwd ?? process.cwd(), env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      opts.onStderr?.(stderr);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.stdin ?? '');
  });
}

const SHIM = join(process.cwd(), 'clients/cli/guard.mjs');
const guard = (args: string[], opts?: RunOptions) => run(process.execPath, [SHIM, ...args], opts);

const json = (text: string) => JSON.parse(text) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const EXIT_CODES = { approved: 0, denied: 2, expired: 3 };

describe('guard request --wait: the exit code is the outcome, stdout the effective params', () => {
  test.each(OUTCOME_CASES.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const params = newParams();
    const deciding = decideWhenPosted(h, params, c.decision);
    const res = await guard(['request', '--action', c.action, '--params', JSON.stringify(params), '--wait']);
    const requestId = await deciding;
    expect(res.code).toBe(EXIT_CODES[c.status]);
    expect(res.stderr).toContain(`${requestId} created`);
    expect(res.stderr).toContain(`${requestId} ${c.status}`);
    if (c.status === 'approved') expect(JSON.parse(res.stdout)).toEqual(c.effective(params));
    else expect(res.stdout).toBe('');
    const text = textOf(messageOf(h, requestId)!);
    expect(text).toContain('acme/pipeline');
    expect(text).toContain('ci-job-17');
  });

  test('cancelled: exit 4 for a waiting step whose request is cancelled', async () => {
    const args = [
      'request',
      '--action',
      'deploy',
      '--params',
      JSON.stringify(newParams()),
      '--idempotency-key',
      'k-c1',
    ];
    const created = json((await guard(args)).stdout);
    let waitingSince: () => void = () => {};
    const started = new Promise<void>((resolve) => (waitingSince = resolve));
    const waiting = guard([...args, '--wait'], { onStderr: (e) => e.includes('waiting') && waitingSince() });
    await started;
    const cancel = await guard(['cancel', '--token', created.token, '--reason', 'pipeline aborted']);
    expect(cancel.code).toBe(0);
    expect(json(cancel.stdout)).toMatchObject({ requestId: created.requestId, status: 'cancelled' });
    const res = await waiting;
    expect(res.code).toBe(4);
    expect(res.stderr).toContain(`${created.requestId} found again (ready_for_approval), waiting`);
    expect(res.stderr).toContain(`${created.requestId} cancelled`);
    expect(res.stdout).toBe('');
  });

  test('--timeout: exit 5 while undecided, and the same --idempotency-key resumes the same request', async () => {
    const params = newParams();
    const args = ['request', '--action', 'deploy', '--params', JSON.stringify(params), '--wait'];
    const first = await guard([...args, '--timeout', '1', '--idempotency-key', 'k-t1']);
    expect(first.code).toBe(5);
    expect(first.stderr).toContain('--idempotency-key k-t1');
    const requestId = await requestIdByMarker(h, String(params.marker));
    const deciding = decideWhenPosted(h, params, 'approve');
    const second = await guard([...args, '--idempotency-key', 'k-t1', '--sse']);
    expect(await deciding).toBe(requestId);
    expect(second.code).toBe(0);
    expect(second.stderr).toContain(`${requestId} found again`);
    expect(JSON.parse(second.stdout)).toEqual(params);
  });
});

describe('no duplicates', () => {
  test('the same --idempotency-key twice creates one request', async () => {
    const args = ['request', '--action', 'deploy', '--params', JSON.stringify(newParams()), '--idempotency-key'];
    const first = await guard([...args, 'build-4411']);
    const second = await guard([...args, 'build-4411']);
    expect(first.code).toBe(0);
    expect(second.code).toBe(0);
    expect(json(second.stdout).requestId).toBe(json(first.stdout).requestId);
    expect(json(first.stdout).idempotentReplay).toBeUndefined();
    expect(json(second.stdout).idempotentReplay).toBe(true);
  });
});

describe('receipts', () => {
  test('--json gives the receipt; guard verify checks it offline against the pinned key', async () => {
    const params = newParams();
    const deciding = decideWhenPosted(h, params, 'edit');
    const res = await guard(['request', '--action', 'scale', '--params', JSON.stringify(params), '--wait', '--json']);
    const requestId = await deciding;
    expect(res.code).toBe(0);
    const outcome = json(res.stdout);
    expect(outcome).toMatchObject({ requestId, status: 'approved', overridden: true });
    expect(outcome.effectiveParams).toEqual({ ...params, replicas: 7 });

    const expected = ['--request-id', requestId, '--payload-hash', payloadHash(outcome.effectiveParams)];
    const verified = await guard(['verify', outcome.receipt, '--public-key-file', pemFile, ...expected]);
    expect(verified.code).toBe(0);
    expect(json(verified.stdout)).toMatchObject({ requestId, outcome: 'approved', approvers: ['U_BOB'] });

    const stale = await guard(['verify', outcome.receipt, '--public-key-file', pemFile, '--payload-hash', 'sha256:0']);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('NOT valid');
    const [body, signature] = String(outcome.receipt).split('.');
    const claims = JSON.parse(Buffer.from(body!, 'base64url').toString('utf8'));
    const forged = `${Buffer.from(JSON.stringify({ ...claims, action: 'drop_db' })).toString('base64url')}.${signature}`;
    expect((await guard(['verify', forged, '--public-key-file', pemFile])).code).toBe(1);
    // The key fetched from the service, the receipt from stdin.
    const piped = await guard(['verify', '-'], { stdin: `${outcome.receipt}\n` });
    expect(piped.code).toBe(0);
  });
});

describe('status, errors, npx', () => {
  test('guard status prints the state; refusals and bad input exit 1, a policy denial 2', async () => {
    const created = json((await guard(['request', '--action', 'deploy', '--params', '{"a":1}'])).stdout);
    const status = await guard(['status', created.requestId]);
    expect(status.code).toBe(0);
    expect(json(status.stdout)).toMatchObject({ requestId: created.requestId, status: 'ready_for_approval' });

    const denied = await guard(['request', '--action', 'drop_database', '--wait']);
    expect(denied.code).toBe(2);
    expect(denied.stderr).toContain('denied by policy');
    const badJson = await guard(['request', '--action', 'deploy', '--params', '{oops']);
    expect(badJson.code).toBe(1);
    expect(badJson.stderr).toContain('--params is not JSON');
    const stranger = await guard(['status', created.requestId], { env: { GUARD_URL: `${h.url}/nowhere` } });
    expect(stranger.code).toBe(1);
    const unauthorized = await guard(['request', '--action', 'deploy'], { env: { GUARD_AGENT_KEY: 'wrong' } });
    expect(unauthorized.code).toBe(1);
    expect(unauthorized.stderr).toContain('401 unauthorized');
  });

  test('npx guard runs the CLI from the repository (root bin entry)', async () => {
    const created = json((await guard(['request', '--action', 'deploy'])).stdout);
    const res = await run('npx', ['--no-install', 'guard', 'status', created.requestId]);
    expect(res.code).toBe(0);
    expect(json(res.stdout)).toMatchObject({ requestId: created.requestId });
  }, 60_000);
});

describe('issue 17: help, --json on every outcome, verification that cannot be misused', () => {
  test.each([
    [['request', '--help'], 'Usage: guard request --action NAME'],
    [['help', 'verify'], 'Usage: guard verify RECEIPT'],
    [['actions', '--help'], 'Usage: guard actions'],
    [['hook', '--help'], 'Usage: guard hook claude-code'],
    [['--help'], 'guard <command> --help for its options'],
  ])('guard %j prints its usage, exit 0', async (args, usage) => {
    const res = await guard(args);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(usage);
  });

  test('--json: a policy denial and an undecided wait are JSON on stdout too', async () => {
    const denied = await guard(['request', '--action', 'drop_database', '--wait', '--json']);
    expect(denied.code).toBe(2);
    expect(json(denied.stdout)).toMatchObject({ error: 'policy_denied', status: 403 });
    expect(denied.stderr).toContain('guard actions lists the actions');
    const params = JSON.stringify(newParams());
    const pending = await guard([
      'request',
      '--action',
      'deploy',
      '--params',
      params,
      '--wait',
      '--timeout',
      '0',
      '--json',
    ]);
    expect(pending.code).toBe(5);
    expect(json(pending.stdout)).toMatchObject({ decided: false, status: 'ready_for_approval' });
    const usage = await guard(['request', '--json']);
    expect(usage.code).toBe(1);
    expect(json(usage.stdout)).toMatchObject({ error: 'usage' });
  });

  test('guard verify refuses a denial’s receipt unless --outcome says otherwise', async () => {
    const params = newParams();
    const deciding = decideWhenPosted(h, params, 'deny');
    const res = await guard(['request', '--action', 'deploy', '--params', JSON.stringify(params), '--wait', '--json']);
    await deciding;
    expect(res.code).toBe(2);
    const { receipt } = json(res.stdout);
    const byDefault = await guard(['verify', receipt, '--public-key-file', pemFile, '--json']);
    expect(byDefault.code).toBe(1);
    expect(byDefault.stderr).toContain('receipt NOT valid (mismatch): outcome is "denied", expected "approved"');
    expect(json(byDefault.stdout)).toEqual({
      valid: false,
      problem: 'mismatch',
      message: 'outcome is "denied", expected "approved"',
    });
    for (const outcome of ['denied', 'any']) {
      const asked = await guard(['verify', receipt, '--public-key-file', pemFile, '--outcome', outcome]);
      expect(asked.code).toBe(0);
      expect(json(asked.stdout)).toMatchObject({ outcome: 'denied' });
    }
  });

  test('guard actions lists what may be asked', async () => {
    const res = await guard(['actions']);
    expect(res.code).toBe(0);
    const listed = json(res.stdout);
    expect(listed.actions.map((a: { name: string }) => a.name)).toEqual(expect.arrayContaining(['deploy', 'release']));
    expect(listed.actions.find((a: { name: string }) => a.name === 'release').paramsSchema.required).toEqual([
      'version',
    ]);
  });

  test('a key reused with other params: exit 1, the conflict as JSON', async () => {
    const key = `k-${newParams().marker}`;
    const args = ['request', '--action', 'deploy', '--idempotency-key', key, '--json', '--params'];
    expect((await guard([...args, '{"a":1}'])).code).toBe(0);
    const conflict = await guard([...args, '{"a":2}']);
    expect(conflict.code).toBe(1);
    expect(json(conflict.stdout)).toMatchObject({ error: 'idempotency_conflict', status: 409 });
    expect(conflict.stderr).toContain('409 idempotency_conflict');
  });

  test('guard verify refuses an expired receipt', async () => {
    const params = newParams();
    const deciding = decideWhenPosted(h, params, 'approve');
    const res = await guard(['request', '--action', 'brief', '--params', JSON.stringify(params), '--wait', '--json']);
    await deciding;
    expect(res.code).toBe(0);
    const { receipt } = json(res.stdout);
    // brief's receipts live 1 s: once that has passed, verification says why it refuses.
    const expired = await eventually(
      async () => {
        const v = await guard(['verify', receipt, '--public-key-file', pemFile, '--json']);
        return v.code === 1 ? v : undefined;
      },
      { timeoutMs: 15_000, what: 'guard verify to refuse the expired receipt' },
    );
    expect(json(expired.stdout)).toMatchObject({ valid: false, problem: 'expired' });
    expect(expired.stderr).toContain('receipt NOT valid (expired): expired at');
  });

  test('from / with no GUARD_REPO, the origin is user@host, not an error', async () => {
    const params = newParams();
    const res = await guard(['request', '--action', 'deploy', '--params', JSON.stringify(params)], {
      cwd: '/',
      env: { GUARD_REPO: '' },
    });
    expect(res.code).toBe(0);
    const requestId = await requestIdByMarker(h, String(params.marker));
    expect(textOf(messageOf(h, requestId)!)).toContain(`${userInfo().username}@${hostname()}`);
  });
});
