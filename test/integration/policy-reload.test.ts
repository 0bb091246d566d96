import { spawn, type ChildProcess } from 'node:child_process';
import { eventually } from '../helpers/eventually.js';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../config/env.js';
import { startFakeSlack, type FakeSlack } from '../../dev/fake-slack.js';
import { evaluatePolicy } from '../../domain/plan.js';
import { parsePolicy } from '../../domain/policy-loader.js';
import { createAuditLog, type AuditLog } from '../../observability/audit.js';
import { createMetrics } from '../../observability/metrics.js';
import { freePort } from '../../temporal/dev-server.js';
import { startWorker, type RunningWorker } from '../../worker/run.js';
import { blockActionPayload, sendInteraction } from '../helpers/slack.js';
import { clickResult, connectJudge } from './clicks.js';
import { ADMIN_TOKEN, requestBody, SIGNING_SECRET, startHarness, workflowBundle, type Harness } from './harness.js';

const ROOT = join(import.meta.dirname, '../..');

const policy = (deployQuorum: number, maxReplicas = 50, extra = '') => `
routing: { defaultChannel: C_APPROVALS, defaultTimeoutSec: 3600 }
defaults: { unknownAction: deny, superApprovers: [U_ADMIN] }
actions:
  deploy:
    approvers: { allowSlackIds: [U_ALICE, U_BOB, U_CAROL], minApprovals: ${deployQuorum} }
  scale:
    approvers: { allowSlackIds: [U_ALICE] }
    allowParamOverrides: true
    overrideKeys: [replicas]
    overrideSchema:
      type: object
      properties:
        replicas: { type: integer, maximum: ${maxReplicas}, errorMessage: 'at most ${maxReplicas} replicas' }
${extra}`;
const V1 = policy(2);
const V2 = policy(1, 10, '  hotfix:\n    approvers: { allowSlackIds: [U_BOB] }\n');
const BROKEN = `
actions:
  deploy:
    approvers: { allowSlackIds: [U_ALICE], minApprovals: 0 }
    timeotSec: 60
`;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

const until = <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> =>
  eventually(probe, { timeoutMs, intervalMs: 200, what });

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

describe('reload through the admin API', () => {
  let h: Harness;
  const reload = (headers: Record<string, string> = { 'x-admin-token': ADMIN_TOKEN }) =>
    h.post('/api/admin/reload-policy', undefined, headers);
  const apply = async (text: string) => {
    await writeFile(h.policyPath, text);
    const res = await reload();
    expect(res.status).toBe(200);
  };
  const reloadsApi = async () =>
    metricValue((await h.get('/metrics')).body as string, 'policy_reloads_total{source="api"}');
  const approve = (requestId: string, user: string) => h.clickOutcome('approve', requestId, user);

  beforeAll(async () => {
    h = await startHarness({ policy: V1 });
  }, 90_000);
  afterAll(async () => {
    await h?.close();
  });
  beforeEach(async () => {
    await apply(V1);
  });

  test('a good file: {ok, actions, hash}, new requests use it, the one in flight keeps its frozen plan', async () => {
    const before = await reloadsApi();
    const old = await h.create('deploy');
    expect(old.status).toBe('ready_for_approval');
    expect((await h.get(`/api/guard/status?requestId=${old.requestId}`)).body.minApprovals).toBe(2);

    await writeFile(h.policyPath, V2);
    const res = await reload();
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ok: true, actions: 3, actionNames: ['deploy', 'scale', 'hotfix'], hash: sha256(V2) });
    expect(h.api.policy.loaded?.hash).toBe(sha256(V2));

    const fresh = (await h.post('/api/guard/request', requestBody('deploy'))).body;
    expect(fresh.policy.minApprovals).toBe(1);
    expect((await h.create('hotfix')).status).toBe('ready_for_approval');

    expect(await approve(old.requestId, 'U_ALICE')).toMatchObject({ ok: true, status: 'ready_for_approval' });
    expect((await h.get(`/api/guard/status?requestId=${old.requestId}`)).body).toMatchObject({
      minApprovals: 2,
      approvalsCount: 1,
      status: 'ready_for_approval',
    });
    expect(await approve(fresh.requestId, 'U_ALICE')).toMatchObject({ ok: true, status: 'approved' });
    expect(await approve(old.requestId, 'U_BOB')).toMatchObject({ ok: true, status: 'approved' });

    expect(await reloadsApi()).toBe(before + 1);
    expect(h.audit.lines()).toContainEqual(
      expect.objectContaining({
        event: 'policy_reloaded',
        source: 'api',
        actor: 'admin',
        hash: sha256(V2),
        actions: ['deploy', 'scale', 'hotfix'],
      }),
    );
  });

  test('an action removed by a reload: refused for new requests, still decidable in flight', async () => {
    const old = await h.create('deploy');
    await apply(policy(2).replace(/ {2}deploy:\n.*\n/, ''));
    const refused = await h.post('/api/guard/request', requestBody('deploy'));
    expect(refused.status).toBe(403);
    expect(refused.body.error).toBe('policy_denied');
    expect(await approve(old.requestId, 'U_ALICE')).toMatchObject({ ok: true, status: 'ready_for_approval' });
    expect(await approve(old.requestId, 'U_CAROL')).toMatchObject({ ok: true, status: 'approved' });
  });

  test('a broken file is refused with every path error, and the old policy keeps serving', async () => {
    const before = await reloadsApi();
    const served = h.api.policy.loaded?.hash;
    const auditBefore = h.audit.lines().length;

    await writeFile(h.policyPath, BROKEN);
    const res = await reload();
    expect(res.status).toBe(500);
    expect(res.body.error).toBe('reload_failed');
    expect(res.body.detail).toContain('actions.deploy.approvers.minApprovals: must be at least 1');
    expect(res.body.detail).toContain("actions.deploy.timeotSec: unknown key (did you mean 'timeoutSec'?)");

    expect(h.api.policy.loaded?.hash).toBe(served);
    expect((await h.get('/readyz')).body).toMatchObject({ policy: 'loaded' });
    const still = (await h.post('/api/guard/request', requestBody('deploy'))).body;
    expect(still.policy.minApprovals).toBe(2);

    await writeFile(h.policyPath, 'actions: [\n');
    const syntax = await reload();
    expect(syntax.status).toBe(500);
    expect(syntax.body.detail).toMatch(/line \d+, column \d+: /);

    await rename(h.policyPath, `${h.policyPath}.gone`);
    const missing = await reload();
    await rename(`${h.policyPath}.gone`, h.policyPath);
    expect(missing.status).toBe(500);
    expect(missing.body.detail).toContain('cannot read');

    expect(h.api.policy.loaded?.hash).toBe(served);
    expect(await reloadsApi()).toBe(before);
    const failures = h.audit
      .lines()
      .slice(auditBefore)
      .filter((l) => l.event === 'policy_reload_failed');
    expect(failures).toHaveLength(3);
    expect(failures[0]).toMatchObject({
      source: 'api',
      actor: 'admin',
      keptHash: served,
      errors: expect.arrayContaining(['actions.deploy.approvers.minApprovals: must be at least 1']),
      detail: expect.stringContaining('actions.deploy.approvers.minApprovals'),
    });
  });

  test.each<[string, string | undefined]>([
    ['no token', undefined],
    ['a wrong token', 'not-the-admin-token'],
    ['a wrong token of the same length', ADMIN_TOKEN.replace(/.$/, 'x')],
    ['an empty token', ''],
  ])('401 unauthorized with %s, and nothing is reloaded', async (_name, token) => {
    const unauthorized = async () =>
      (await h.metrics.registry.getSingleMetric('security_events_total')?.get())?.values.find(
        (v) => v.labels.type === 'unauthorized',
      )?.value ?? 0;
    const before = await unauthorized();
    await writeFile(h.policyPath, V2);
    const res = await reload(token === undefined ? {} : { 'x-admin-token': token });
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: 'unauthorized' });
    expect(h.api.policy.loaded?.hash).toBe(sha256(V1));
    expect(await unauthorized()).toBe(before + 1);
  });

  test('GET /api/schemas/:action serves the live schema without errorMessage, 404 otherwise', async () => {
    const first = await h.get('/api/schemas/scale');
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ type: 'object', properties: { replicas: { type: 'integer', maximum: 50 } } });
    for (const action of ['deploy', 'nope', 'constructor']) {
      const res = await h.get(`/api/schemas/${action}`);
      expect([action, res.status, res.body]).toEqual([action, 404, { error: 'not_found' }]);
    }
    await apply(V2);
    expect((await h.get('/api/schemas/scale')).body.properties.replicas.maximum).toBe(10);
  });
});

test('401 unauthorized for every token when ADMIN_TOKEN is unset', async () => {
  const h = await startHarness({ policy: V1, env: { ADMIN_TOKEN: '' } });
  try {
    expect(h.config.ADMIN_TOKEN).toBeUndefined();
    const attempts: Record<string, string>[] = [{}, { 'x-admin-token': '' }, { 'x-admin-token': ADMIN_TOKEN }];
    for (const headers of attempts) {
      const res = await h.post('/api/admin/reload-policy', undefined, headers);
      expect([res.status, res.body]).toEqual([401, { error: 'unauthorized' }]);
    }
  } finally {
    await h.close();
  }
}, 90_000);

describe('reload by SIGHUP in a real API process', () => {
  let child: ChildProcess;
  let worker: RunningWorker;
  let fakeSlack: FakeSlack;
  let workerAudit: AuditLog;
  let dir: string;
  let policyPath: string;
  let auditPath: string;
  let url: string;
  let output = '';
  let clicks: Awaited<ReturnType<typeof connectJudge>>;

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return {
      status: res.status,
      text,
      body: (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text,
    };
  };
  const auditLines = async () =>
    (await readFile(auditPath, 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const reloads = async () =>
    metricValue((await call('GET', '/metrics')).text, 'policy_reloads_total{source="sighup"}');
  const approve = async (requestId: string, user: string) => {
    const sent = { actionId: 'approve', requestId, userId: user, channelId: 'C_APPROVALS', sentAt: Date.now() };
    const { payloadHash } = (await call('GET', `/api/guard/status?requestId=${requestId}`)).body as {
      payloadHash: string;
    };
    const payload = blockActionPayload({
      actionId: 'approve',
      value: requestId,
      userId: user,
      channelId: 'C_APPROVALS',
      blockId: `decide:${payloadHash}`,
    });
    return clickResult(clicks.judge, sent, (await sendInteraction(url, SIGNING_SECRET, payload)).body);
  };
  const hangUp = async (expected: string) => {
    const seen = (await auditLines()).filter((l) => l.event === expected).length;
    expect(process.kill(child.pid!, 'SIGHUP')).toBe(true);
    return until(`${expected} after SIGHUP`, async () => {
      const lines = (await auditLines()).filter((l) => l.event === expected);
      return lines.length > seen ? lines.at(-1) : undefined;
    });
  };

  beforeAll(async () => {
    const address = process.env.TEMPORAL_TEST_ADDRESS;
    if (!address) throw new Error('TEMPORAL_TEST_ADDRESS is not set: run through the integration Jest project');
    dir = await mkdtemp(join(tmpdir(), 'guard-sighup-'));
    policyPath = join(dir, 'policy.yaml');
    auditPath = join(dir, 'audit.ndjson');
    await writeFile(policyPath, V1);
    fakeSlack = await startFakeSlack();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const env = {
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      PORT: String(port),
      TEMPORAL_ADDRESS: address,
      TEMPORAL_TASK_QUEUE: `it-sighup-${randomUUID()}`,
      POLICY_PATH: policyPath,
      ADMIN_TOKEN,
      TOKEN_SECRET: 'sighup-token-secret',
      AUDIT_FILE: auditPath,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_BOT_TOKEN: 'xoxb-test-token',
      SLACK_API_URL: fakeSlack.url,
      RETENTION_ARCHIVE_DIR: join(dir, 'archive'),
    };
    clicks = await connectJudge(fakeSlack);
    workerAudit = createAuditLog({ file: join(dir, 'worker-audit.ndjson') });
    worker = await startWorker({
      config: loadConfig(env),
      metrics: createMetrics(),
      audit: workerAudit,
      workflowBundle: await workflowBundle(),
      log: () => {},
    });
    // `node --import tsx`, as the image runs it: one process, so the signal reaches the service itself (the
    // `tsx` CLI wrapper relays only SIGINT/SIGTERM to its child).
    child = spawn(process.execPath, ['--import', 'tsx', 'service/api.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    await until(
      'the API process to be ready',
      async () => {
        if (child.exitCode !== null) throw new Error(`api exited ${child.exitCode}: ${output}`);
        return (await call('GET', '/readyz')).status === 200 ? true : undefined;
      },
      90_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${output}`);
    });
  }, 150_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await worker?.shutdown();
    await clicks?.close();
    await workerAudit?.close();
    await fakeSlack?.close();
  }, 30_000);

  test('SIGHUP applies a good file to new requests only; a broken one is refused and the old policy serves', async () => {
    const startup = (await auditLines()).find((l) => l.event === 'policy_reloaded');
    expect(startup).toMatchObject({ source: 'startup', hash: sha256(V1) });
    expect(await reloads()).toBe(0);

    const old = await call('POST', '/api/guard/request', requestBody('deploy'));
    expect(old.status).toBe(200);
    expect(old.body.policy.minApprovals).toBe(2);

    await writeFile(policyPath, V2);
    const reloaded = await hangUp('policy_reloaded');
    expect(reloaded).toMatchObject({
      source: 'sighup',
      actor: 'system',
      hash: sha256(V2),
      actions: ['deploy', 'scale', 'hotfix'],
    });
    expect(await reloads()).toBe(1);

    const fresh = await call('POST', '/api/guard/request', requestBody('deploy'));
    expect(fresh.body.policy.minApprovals).toBe(1);
    expect(await approve(old.body.requestId, 'U_ALICE')).toMatchObject({ ok: true, status: 'ready_for_approval' });
    expect((await call('GET', `/api/guard/status?requestId=${old.body.requestId}`)).body).toMatchObject({
      minApprovals: 2,
      approvalsCount: 1,
    });
    expect(await approve(fresh.body.requestId, 'U_ALICE')).toMatchObject({ ok: true, status: 'approved' });

    await writeFile(policyPath, BROKEN);
    const failed = await hangUp('policy_reload_failed');
    expect(failed).toMatchObject({ source: 'sighup', keptHash: sha256(V2) });
    expect(failed.detail).toContain('actions.deploy.approvers.minApprovals: must be at least 1');
    expect(await reloads()).toBe(1);
    expect(child.exitCode).toBeNull();
    const after = await call('POST', '/api/guard/request', requestBody('hotfix'));
    expect(after.status).toBe(200);
    expect(output).toContain('SIGHUP: policy reload failed, keeping the previous policy');
  });
});

describe('npm run policy:check', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'guard-check-'));
  });

  const check = (args: string[], env: Record<string, string> = {}) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const proc = spawn('npm', ['run', '-s', 'policy:check', '--', ...args], {
        cwd: ROOT,
        env: { ...process.env, ...env },
      });
      let stdout = '';
      let stderr = '';
      proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      proc.once('error', reject);
      proc.once('close', (code) => resolve({ code, stdout, stderr }));
    });
  const file = async (name: string, text: string) => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };

  test('a valid file: exit 0 with its hash and actions', async () => {
    const res = await check([await file('v1.yaml', V1)]);
    expect(res.code).toBe(0);
    expect(res.stderr).toContain(`valid, sha256 ${sha256(V1)}, 2 action(s): deploy, scale`);
    expect(res.stdout).toBe('');
  });

  test('with an action: the plan as JSON, exactly what the service would freeze', async () => {
    const res = await check([await file('v2.yaml', V2), 'scale'], { OVERRIDE_MAX_KEYS: '3' });
    expect(res.code).toBe(0);
    const loaded = parsePolicy(V2);
    const expected = evaluatePolicy(loaded.policy, loaded.hash, 'scale', {
      overrideMaxKeys: 3,
      overrideMaxChars: 2000,
    });
    expect(expected.ok && JSON.parse(res.stdout)).toEqual(expected.ok && expected.plan);
  });

  test('an unknown action under unknownAction deny: policy_denied', async () => {
    const res = await check([await file('v1.yaml', V1), 'drop_db']);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({ error: 'policy_denied', detail: "action 'drop_db' is not in the policy" });
  });

  test('an invalid file: exit 1 and every error with its path', async () => {
    const res = await check([await file('broken.yaml', BROKEN)]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('2 error(s)');
    expect(res.stderr).toContain('error actions.deploy.approvers.minApprovals: must be at least 1');
    expect(res.stderr).toContain("error actions.deploy.timeotSec: unknown key (did you mean 'timeoutSec'?)");
  });

  test('warnings are printed; --strict makes them fail', async () => {
    const path = await file('dup.yaml', V1.replace('[U_ALICE, U_BOB, U_CAROL]', '[U_ALICE, U_BOB, U_CAROL, U_BOB]'));
    const lenient = await check([path]);
    const strict = await check([path, '--strict']);
    const warning = "warning actions.deploy.approvers.allowSlackIds[3]: 'U_BOB' is listed twice";
    expect([lenient.code, strict.code]).toEqual([0, 1]);
    expect(lenient.stderr).toContain(warning);
    expect(strict.stderr).toContain(warning);
  });

  test('bad usage: exit 2', async () => {
    const res = await check([]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('usage: npm run policy:check -- FILE [ACTION]');
  });

  test('every shipped policy passes the check with --strict', async () => {
    const examples = (await readdir(join(ROOT, 'policies/examples'))).map((f) => `policies/examples/${f}`);
    const files = ['policies/policy.yaml', ...examples];
    const results: Array<[string, number | null]> = [];
    for (const f of files) results.push([f, (await check([f, '--strict'])).code]);
    expect(results).toEqual(files.map((f) => [f, 0]));
  });
});
