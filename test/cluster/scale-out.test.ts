/**
 * Scale-out on a real Temporal cluster (issue 20): the pinned server with PostgreSQL persistence and SQL visibility
 * (scripts/cluster-lib.ts), two API processes and two workers started through their npm scripts, as a deployment
 * runs them. What differs from the dev server (SQLite) is what is checked: visibility with the custom search
 * attributes on SQL, namespace retention, the purge schedule deleting from the SQL store, and replicas sharing
 * nothing but Temporal.
 */
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startFakeSlack, type FakeSlack } from '../../dev/fake-slack.js';
import { startCluster, VERSIONS, type Cluster } from '../../scripts/cluster-lib.js';
import { parsePrometheus, scrape, type Scrape } from '../helpers/prometheus.js';
import { purgeScheduleId } from '../../temporal/schedules.js';
import { approvedBy, ADMIN_TOKEN, SIGNING_SECRET, standardPolicy } from '../integration/fixtures.js';
import { requestBody, startHarness, type Created, type Harness } from '../integration/harness.js';
import {
  apiClient,
  childEnv,
  killGroup,
  pollUntil,
  processesInGroup,
  startProc,
  type Proc,
} from '../integration/procs.js';
import { workflowIdOf } from '../../gateway/ids.js';

const execFileP = promisify(execFile);

const POLICY = standardPolicy({
  simple: approvedBy(['U_ALICE', 'U_BOB'], 1),
  personas: approvedBy(['U_ALICE', 'U_BOB'], 1, { personasRequired: ['DBA'] }),
  retry: approvedBy(['U_ALICE'], 1, { allowReRequest: true }),
  load: approvedBy(['U_ALICE'], 1),
});
const ACTIONS = ['simple', 'personas', 'retry', 'load'];
const TASK_QUEUE = `cluster-${randomUUID()}`;

let cluster: Cluster;
let client: Client;
let fakeSlack: FakeSlack;
let dir: string;
const procs: Proc[] = [];
let apis: Array<{ url: string; api: ReturnType<typeof apiClient> }> = [];
let workers: Proc[] = [];
let retentionAfterSetup = 0;

const log = (msg: string) => void process.stderr.write(`[cluster] ${msg}\n`);

function shared(): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: cluster.address,
    TEMPORAL_NAMESPACE: cluster.namespace,
    TEMPORAL_TASK_QUEUE: TASK_QUEUE,
    HOST: '127.0.0.1',
    POLICY_PATH: join(dir, 'policy.yaml'),
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_BOT_TOKEN: 'xoxb-cluster-test',
    SLACK_API_URL: fakeSlack.url,
    ADMIN_TOKEN,
    TOKEN_SECRET: 'cluster-token-secret',
    RETENTION_ARCHIVE_DIR: join(dir, 'archive'),
    RETENTION_MAX_AGE_SEC: '3600',
    RETENTION_SWEEP_INTERVAL_SEC: '3600',
    RATE_LIMIT_CAPACITY: '1000000',
  };
}

/** `npm run <script>` leading its own process group, so a test can SIGKILL all of it as a node would die. */
function npmRun(script: string, env: Record<string, string> = {}): Proc {
  const proc = startProc(script, 'npm', ['run', '-s', script], {
    env: childEnv({ ...shared(), ...env }),
    detached: true,
  });
  procs.push(proc);
  return proc;
}

async function startApiProc(): Promise<{ url: string; api: ReturnType<typeof apiClient> }> {
  const proc = npmRun('start:api', { PORT: '0' });
  const line = await proc.waitForLine(/listening on (http:\/\/\S+?),/, 120_000);
  const url = /listening on (http:\/\/\S+?),/.exec(line)![1]!;
  return { url, api: apiClient(url, SIGNING_SECRET) };
}

async function startWorkerProc(): Promise<Proc> {
  const proc = npmRun('start:worker');
  await proc.waitForLine(/polling task queue/, 180_000);
  return proc;
}

beforeAll(async () => {
  // The first run builds the server from the Go module proxy (see docs/deployment.md for how long that takes).
  cluster = await startCluster({ log, retentionSec: 86_400 });
  client = new Client({
    connection: await Connection.connect({ address: cluster.address }),
    namespace: cluster.namespace,
  });
  fakeSlack = await startFakeSlack();
  dir = await mkdtemp(join(tmpdir(), 'guard-cluster-test-'));
  await writeFile(join(dir, 'policy.yaml'), POLICY);
  retentionAfterSetup = await retentionSec();
  workers = await Promise.all([startWorkerProc(), startWorkerProc()]);
  apis = await Promise.all([startApiProc(), startApiProc()]);
}, 2_700_000);

afterAll(async () => {
  for (const p of procs) killGroup(p.pid);
  await Promise.all(procs.map((p) => p.exited));
  await client?.connection.close();
  await fakeSlack?.close();
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const retentionSec = async () => {
  const ns = await client.workflowService.describeNamespace({ namespace: cluster.namespace });
  return Number(ns.config?.workflowExecutionRetentionTtl?.seconds ?? 0);
};

test("the release's schema versions; the setup script registered the search attributes and the retention; every worker keeps the retention", async () => {
  const attrs = await client.connection.operatorService.listSearchAttributes({ namespace: cluster.namespace });
  expect(Object.keys(attrs.customAttributes ?? {}).sort()).toEqual(
    expect.arrayContaining([
      'GuardAction',
      'GuardExpiresAt',
      'GuardLineageId',
      'GuardPersonasPending',
      'GuardRequester',
      'GuardStatus',
    ]),
  );
  // The schema versions the compose file and deploy/temporal-schema.sh are given are the release's own.
  const versionGo = await readFile(join(cluster.build.schemaDir, 'version.go'), 'utf8');
  expect(/\bVersion = "([\d.]+)"/.exec(versionGo)?.[1]).toBe(VERSIONS.schemaVersion);
  expect(/\bVisibilityVersion = "([\d.]+)"/.exec(versionGo)?.[1]).toBe(VERSIONS.visibilitySchemaVersion);
  // deploy/k8s/temporal-setup.sh, run by startCluster with RETENTION_MAX_AGE_SEC=86400.
  expect(retentionAfterSetup).toBe(86_400);
  // Each worker applies RETENTION_MAX_AGE_SEC (3600) at start (temporal/schedules.ts prepareRetention).
  expect(await retentionSec()).toBe(3600);
});

async function create(api: ReturnType<typeof apiClient>, action: string): Promise<Created> {
  const res = await api.post('/api/guard/request', requestBody(action));
  expect([res.status, res.body.error]).toEqual([200, undefined]);
  return res.body as Created;
}

async function statusOf(api: ReturnType<typeof apiClient>, requestId: string, want: string) {
  return pollUntil(
    `${requestId} ${want}`,
    async () => {
      const r = await api.status(requestId);
      return r.status === 200 && r.body.status === want ? r.body : undefined;
    },
    { timeoutMs: 60_000 },
  );
}

test('a request created on one API is decided through the other, and the first sees the outcome', async () => {
  const [one, two] = apis as [(typeof apis)[0], (typeof apis)[0]];
  const req = await create(one.api, 'simple');
  const waiting = one.api.wait(req.token, 60);
  const click = await two.api.click('approve', req.requestId, 'U_ALICE');
  expect(click.status).toBe(200);
  const waited = await waiting;
  expect(waited.status).toBe(200);
  expect(waited.body).toMatchObject({ status: 'approved', approvers: ['U_ALICE'] });
  expect(await statusOf(two.api, req.requestId, 'approved')).toMatchObject({ approvalsCount: 1 });
});

/** Both replicas' gauges once both show `expected` (SQL visibility is eventually consistent). */
async function gaugesOnBoth(expected: (s: Scrape) => boolean): Promise<Scrape[]> {
  let last: Scrape[] = [];
  return pollUntil(
    'both API replicas to report the expected gauges',
    async () => {
      last = await Promise.all(apis.map((a) => scrape(`${a.url}/metrics`)));
      return last.every(expected) ? last : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  ).catch((err: Error) => {
    const shown = last.map((s) =>
      ['pending_requests', 'open_requests_status', 'persona_pending_requests'].map((n) => s.series(n)),
    );
    throw new Error(`${err.message}; last seen: ${JSON.stringify(shown)}`);
  });
}

const sameSeries = (actual: Record<string, number>, want: Record<string, number>) =>
  [...new Set([...Object.keys(actual), ...Object.keys(want)])].every((k) => actual[k] === want[k]);

test('both API replicas report the same gauges, read from SQL visibility', async () => {
  const [one, two] = apis as [(typeof apis)[0], (typeof apis)[0]];
  const opened = [
    await create(one.api, 'simple'),
    await create(two.api, 'simple'),
    await create(one.api, 'personas'),
    await create(two.api, 'personas'),
  ];
  await one.api.click('persona_ack:DBA', opened[2]!.requestId, 'U_DBA');
  const want: Record<string, number> = {
    'action=simple': 2,
    'action=personas': 2,
    'action=retry': 0,
    'action=load': 0,
  };
  const matches = (s: Scrape) =>
    sameSeries(s.series('pending_requests'), want) &&
    s.get('open_requests_status', { action: 'personas', status: 'awaiting_personas' }) === 1 &&
    s.get('persona_pending_requests', { action: 'personas', persona: 'DBA' }) === 1;
  const [a, b] = (await gaugesOnBoth(matches)) as [Scrape, Scrape];
  for (const name of ['pending_requests', 'open_requests_status', 'persona_pending_requests'])
    expect([name, a.series(name)]).toEqual([name, b.series(name)]);
  expect(Object.keys(a.series('oldest_open_request_age_seconds')).sort()).toEqual(
    ACTIONS.map((x) => `action=${x}`).sort(),
  );

  for (const r of opened) expect((await one.api.post('/api/guard/cancel', { token: r.token })).status).toBe(200);
  await gaugesOnBoth((s) => Object.values(s.series('pending_requests')).every((v) => v === 0));
});

test('re-requests alternate between replicas; the lineage is counted through SQL visibility', async () => {
  const [one, two] = apis as [(typeof apis)[0], (typeof apis)[0]];
  const original = await create(one.api, 'retry');
  expect((await two.api.click('deny', original.requestId, 'U_ALICE')).status).toBe(200);
  await statusOf(one.api, original.requestId, 'denied');
  for (let i = 1; i <= 5; i++) {
    const via = i % 2 ? two : one;
    const res = await via.api.post('/api/guard/rerequest', { originalRequestId: original.requestId, actor: 'U_REQ' });
    expect([i, res.status, res.body.requestId]).toEqual([i, 200, `${original.requestId}_r${i}`]);
  }
  for (const via of [one, two]) {
    const sixth = await via.api.post('/api/guard/rerequest', { originalRequestId: original.requestId, actor: 'U_REQ' });
    expect([sixth.status, sixth.body.error]).toEqual([429, 'rate_limited']);
  }
  const query = `GuardLineageId = '${original.requestId}' AND TaskQueue = '${TASK_QUEUE}'`;
  const members = await pollUntil(
    'the lineage in SQL visibility',
    async () => {
      const ids: string[] = [];
      for await (const wf of client.workflow.list({ query })) ids.push(wf.workflowId);
      return ids.filter((id) => id !== original.requestId).length === 5 ? ids : undefined;
    },
    { timeoutMs: 30_000 },
  );
  expect(members.filter((id) => id !== original.requestId).sort()).toEqual(
    [1, 2, 3, 4, 5].map((i) => `${original.requestId}_r${i}`),
  );
  expect((await client.workflow.count(query)).count).toBe(members.length);
});

test('a worker killed with -9 mid-load loses nothing: every request is decided once', async () => {
  const [one, two] = apis as [(typeof apis)[0], (typeof apis)[0]];
  const N = 20;
  const created = await Promise.all(Array.from({ length: N }, (_, i) => create(i % 2 ? two.api : one.api, 'load')));
  const clicks: Promise<unknown>[] = [];
  for (const [i, r] of created.entries()) {
    clicks.push((i % 2 ? one : two).api.click('approve', r.requestId, 'U_ALICE'));
    if (i === N / 2) {
      const victim = workers[0]!;
      expect(processesInGroup(victim.pid).length).toBeGreaterThan(0);
      killGroup(victim.pid, 'SIGKILL');
      await victim.exited;
      // SIGKILL reaches the whole group at once, but each member exits on its own: the leader's exit does not mean the
      // others are gone yet (seen in CI: one member still in the group). None may survive it, though.
      await pollUntil(
        "the killed worker's process group to be gone",
        async () => (processesInGroup(victim.pid).length === 0 ? true : undefined),
        { timeoutMs: 5_000, intervalMs: 20 },
      );
    }
  }
  expect((await Promise.all(clicks)).length).toBe(N);
  for (const r of created) {
    expect(await statusOf(one.api, r.requestId, 'approved')).toMatchObject({
      approvalsCount: 1,
      approvers: ['U_ALICE'],
    });
  }
  const query = `GuardAction = 'load' AND GuardStatus = 'approved' AND TaskQueue = '${TASK_QUEUE}'`;
  expect(
    await pollUntil(
      `${N} approved in SQL visibility`,
      async () => ((await client.workflow.count(query)).count === N ? N : undefined),
      { timeoutMs: 30_000 },
    ),
  ).toBe(N);
  // Each archived (at least once): an archive activity cut off by the kill is retried on the other worker once its
  // timeout passes, never lost.
  await pollUntil(
    `the archive lines of all ${N} requests`,
    async () => {
      const lines = await archiveLines(join(dir, 'archive'));
      return created.every((r) => lines.some((l) => l.includes(r.requestId))) ? true : undefined;
    },
    { timeoutMs: 180_000, intervalMs: 1_000 },
  );
}, 300_000);

async function archiveLines(archiveDir: string): Promise<string[]> {
  const files = (await readdir(archiveDir)).filter((f) => f.endsWith('.jsonl'));
  const texts = await Promise.all(files.map((f) => readFile(join(archiveDir, f), 'utf8')));
  return texts.flatMap((t) => t.split('\n').filter(Boolean));
}

describe('the purge sweeper on the SQL store', () => {
  let h: Harness;

  beforeAll(async () => {
    // A service of its own on another task queue (the sweeper sweeps only its own), with a 2 s window swept every 3 s.
    h = await startHarness({
      temporalAddress: cluster.address,
      policy: POLICY,
      env: { RETENTION_MAX_AGE_SEC: '2', RETENTION_SWEEP_INTERVAL_SEC: '3' },
    });
  }, 180_000);

  afterAll(async () => {
    await client.schedule
      .getHandle(purgeScheduleId(h.config.TEMPORAL_TASK_QUEUE))
      .delete()
      .catch(() => undefined);
    await h?.close();
  });

  const sql = async (db: string, query: string) =>
    (
      await execFileP('psql', [
        '-h',
        '127.0.0.1',
        '-p',
        String(cluster.postgres.port),
        '-U',
        'temporal',
        '-d',
        db,
        '-tAc',
        query,
      ])
    ).stdout.trim();

  test('deletes an archived request from the executions and visibility tables once its window has passed', async () => {
    const req = await h.create('simple');
    const open = await h.create('simple');
    expect((await h.click('approve', req.requestId, 'U_ALICE')).status).toBe(200);
    await h.client.workflow.getHandle(workflowIdOf(req.requestId)).result();
    const rows = (id: string) =>
      Promise.all([
        sql('temporal', `SELECT count(*) FROM current_executions WHERE workflow_id = '${id}'`),
        sql('temporal_visibility', `SELECT count(*) FROM executions_visibility WHERE workflow_id = '${id}'`),
      ]);
    expect(await rows(open.requestId)).toEqual(['1', '1']);
    const gone = await pollUntil(
      'the purge to delete the closed request',
      async () => {
        const r = await rows(req.requestId);
        return r.every((n) => n === '0') ? r : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1_000 },
    );
    expect(gone).toEqual(['0', '0']);
    await expect(h.client.workflow.getHandle(workflowIdOf(req.requestId)).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
    // The open one stays; the purged one left its archive line behind.
    expect(await rows(open.requestId)).toEqual(['1', '1']);
    expect((await archiveLines(join(h.dir, 'archive'))).some((l) => l.includes(req.requestId))).toBe(true);
    // Counted once the sweeper has seen the deletion carried out (it polls for that): after the rows went.
    const purged = await pollUntil(
      'the purge to be counted',
      async () => {
        const n = parsePrometheus(await h.metrics.registry.metrics()).count('purged_requests_total');
        return n >= 1 ? n : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(purged).toBeGreaterThanOrEqual(1);
  });
});
