/**
 * Retention end to end on the real dev server (SPEC section 7, runbook section 11), with a 2 s window: the archive
 * line of each request, the purge after the window, what must never be purged, the schedule, and an archive failure
 * counted and retried until it succeeds.
 */
import { eventually } from '../helpers/eventually.js';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ArchiveLine } from '../../activities/archive.js';
import type { Metrics } from '../../observability/metrics.js';
import { ensurePurgeSchedule, purgeScheduleId } from '../../temporal/schedules.js';
import type { purgeSweeperWorkflow } from '../../workflows/purge-sweeper.js';
import { workflowIdOf } from '../../gateway/ids.js';
import { startApi } from './fixtures.js';
import { fetchJson, requestBody, startHarness, type Harness } from './harness.js';

// The main harness's schedule is paused (hourly, it would still fire at the top of the hour, aligned to the epoch):
// its tests run sweeps themselves, so counts are exact.
// The broken-archive harness sweeps every 3 s on its own schedule.
const WINDOW = { RETENTION_MAX_AGE_SEC: '2', RETENTION_SWEEP_INTERVAL_SEC: '3600' };
const SHORT_INTERVAL = { RETENTION_MAX_AGE_SEC: '2', RETENTION_SWEEP_INTERVAL_SEC: '3' };

let h: Harness;
let connection: Connection;
let client: Client;
const schedulesToDelete: string[] = [];

beforeAll(async () => {
  h = await startHarness({ env: WINDOW });
  schedulesToDelete.push(purgeScheduleId(h.config.TEMPORAL_TASK_QUEUE));
  connection = await Connection.connect({ address: process.env.TEMPORAL_TEST_ADDRESS! });
  client = new Client({ connection, namespace: h.config.TEMPORAL_NAMESPACE });
  await client.schedule.getHandle(purgeScheduleId(h.config.TEMPORAL_TASK_QUEUE)).pause('tests sweep by themselves');
}, 60_000);

afterAll(async () => {
  // The schedules would otherwise keep starting sweeps on task queues no worker polls any more.
  for (const id of schedulesToDelete)
    await client?.schedule
      .getHandle(id)
      .delete()
      .catch(() => undefined);
  await h?.close();
  await connection?.close();
});

const waitFor = <T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 45_000) =>
  eventually(async () => (await probe()) || undefined, { timeoutMs, intervalMs: 250, what });

async function archiveLines(dir: string): Promise<ArchiveLine[]> {
  const files = (await readdir(dir).catch(() => [])).filter((f) => /^requests-.*\.jsonl$/.test(f));
  const texts = await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')));
  return texts.flatMap((t) => t.split('\n').filter(Boolean)).map((l) => JSON.parse(l) as ArchiveLine);
}

const linesFor = async (dir: string, requestId: string) =>
  (await archiveLines(dir)).filter((l) => l.requestId === requestId);

async function describeOrNull(workflowId: string) {
  try {
    return await client.workflow.getHandle(workflowId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

const counter = async (metric: Metrics['archiveFailures'], labels: Record<string, string> = {}) =>
  (await metric.get()).values
    .filter((v) => Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val))
    .reduce((sum, v) => sum + v.value, 0);

/** Runs one sweep now on the harness's task queue (what the schedule starts), and returns its result. */
const sweep = (harness: Harness, maxAgeSec: number) =>
  client.workflow.execute<typeof purgeSweeperWorkflow>('purgeSweeperWorkflow', {
    taskQueue: harness.config.TEMPORAL_TASK_QUEUE,
    workflowId: `sweep-${randomUUID()}`,
    args: [{ maxAgeSec }],
  });

/** Sweeps until `requestId` is gone (the window is 2 s); returns how many purges the sweeps reported. */
async function sweepUntilPurged(harness: Harness, requestId: string): Promise<number> {
  let purged = 0;
  // The server carries deletions out asynchronously, which takes tens of seconds on a busy machine.
  await waitFor(
    `${requestId} to be purged`,
    async () => {
      purged += (await sweep(harness, 2)).purged;
      return (await describeOrNull(requestId)) === null;
    },
    90_000,
  );
  return purged;
}

const purgeEvents = (harness: Harness, requestId: string) =>
  harness.audit.lines().filter((l) => l.event === 'request_purged' && l.requestId === requestId);

async function approved(harness: Harness): Promise<string> {
  const { requestId } = await harness.create('simple');
  expect((await harness.click('approve', requestId, 'U_ALICE')).status).toBe(200);
  return requestId;
}

test('every terminal request is archived exactly once, with its final record', async () => {
  const archivedBefore = await counter(h.metrics.archivedRequests);
  const approvedId = await approved(h);
  const denied = await h.create('quorum2');
  await h.clickOutcome('approve', denied.requestId, 'U_ALICE');
  await h.clickOutcome('deny', denied.requestId, 'U_BOB');
  await client.workflow.getHandle(approvedId).result();
  await client.workflow.getHandle(denied.requestId).result();

  const dir = h.config.RETENTION_ARCHIVE_DIR;
  const [a] = await linesFor(dir, approvedId);
  const [d] = await linesFor(dir, denied.requestId);
  expect(await linesFor(dir, approvedId)).toHaveLength(1);
  expect(await linesFor(dir, denied.requestId)).toHaveLength(1);
  expect(a).toMatchObject({
    v: 1,
    action: 'simple',
    outcome: 'approved',
    decidedBy: 'U_ALICE',
    request: { params: { database: 'orders', steps: 3 }, meta: { requester: { id: 'U_REQ' } } },
    plan: { action: 'simple', minApprovals: 1 },
    final: {
      status: 'approved',
      approvals: [{ userId: 'U_ALICE' }],
      effectiveParams: { database: 'orders', steps: 3 },
      slack: { channel: 'C_APPROVALS' },
    },
  });
  expect(Date.parse(a!.decidedAt!)).toBeGreaterThanOrEqual(Date.parse(a!.createdAt));
  expect(Date.parse(a!.archivedAt)).toBeGreaterThanOrEqual(Date.parse(a!.decidedAt!));
  expect(d).toMatchObject({ outcome: 'denied', decidedBy: 'U_BOB', final: { approvals: [{ userId: 'U_ALICE' }] } });
  expect((await counter(h.metrics.archivedRequests)) - archivedBefore).toBe(2);
  const archivedEvents = h.audit.lines().filter((l) => l.event === 'request_archived');
  expect(archivedEvents.map((l) => l.requestId)).toEqual(expect.arrayContaining([approvedId, denied.requestId]));
});

test('after the window an archived request is purged; open and unarchived ones are left alone', async () => {
  const purgedBefore = await counter(h.metrics.purgedRequests);
  const open = await h.create('simple');
  const unarchived = await h.create('simple');
  // Closed without ever being archived (an operator's terminate): the sweeper must never delete it.
  await client.workflow.getHandle(unarchived.requestId).terminate('test: closed without archive');
  const done = await approved(h);
  await client.workflow.getHandle(done).result();

  // A window of an hour: nothing this young is due.
  expect(await sweep(h, 3600)).toMatchObject({ purged: 0, more: false });

  const purged = await sweepUntilPurged(h, done);
  expect(purged).toBeGreaterThanOrEqual(1);
  // Counted once per request, although the server deletes asynchronously and sweeps may list it again meanwhile.
  expect((await counter(h.metrics.purgedRequests)) - purgedBefore).toBe(purged);
  expect(purgeEvents(h, done)).toHaveLength(1);
  // The permanent record outlives the workflow.
  expect(await linesFor(h.config.RETENTION_ARCHIVE_DIR, done)).toHaveLength(1);

  // One more sweep, well after the unarchived one's window: nothing left to purge, and it is still there.
  expect(await sweep(h, 2)).toMatchObject({ purged: 0, pending: 0 });
  const openNow = await describeOrNull(open.requestId);
  expect(openNow?.status.name).toBe('RUNNING');
  const unarchivedNow = await describeOrNull(unarchived.requestId);
  expect(unarchivedNow?.status.name).toBe('TERMINATED');
  expect(Date.now() - unarchivedNow!.closeTime!.getTime()).toBeGreaterThan(2000);
}, 120_000);

test('the worker keeps the purge schedule at the configured interval; triggering it runs a sweep', async () => {
  const handle = client.schedule.getHandle(purgeScheduleId(h.config.TEMPORAL_TASK_QUEUE));
  await handle.unpause('the purge counts are checked');
  const schedule = await handle.describe();
  expect(schedule.spec.intervals).toEqual([expect.objectContaining({ every: 3600_000 })]);
  expect(schedule.action).toMatchObject({
    type: 'startWorkflow',
    workflowType: 'purgeSweeperWorkflow',
    taskQueue: h.config.TEMPORAL_TASK_QUEUE,
    args: [{ maxAgeSec: 2 }],
  });
  expect(schedule.policies.overlap).toBe('SKIP');

  const before = schedule.info.numActionsTaken;
  await handle.trigger();
  const taken = await waitFor('the schedule to start a sweep', async () => {
    const info = (await handle.describe()).info;
    return info.numActionsTaken > before && info.recentActions.at(-1);
  });
  const run = taken.action.workflow;
  const result = await client.workflow.getHandle(run.workflowId, run.firstExecutionRunId).result();
  expect(result).toMatchObject({ purged: expect.any(Number), more: false });
});

test('ensuring the schedule is idempotent with several workers, follows config changes and keeps a pause', async () => {
  const config = {
    TEMPORAL_NAMESPACE: h.config.TEMPORAL_NAMESPACE,
    TEMPORAL_TASK_QUEUE: `it-sched-${randomUUID()}`,
    RETENTION_MAX_AGE_SEC: 60,
    RETENTION_SWEEP_INTERVAL_SEC: 600,
  };
  const id = purgeScheduleId(config.TEMPORAL_TASK_QUEUE);
  schedulesToDelete.push(id);
  const log = () => undefined;
  expect(await ensurePurgeSchedule(client, config, log)).toBe('created');
  const again = await Promise.all([1, 2, 3].map(() => ensurePurgeSchedule(client, config, log)));
  expect(again).toEqual(['unchanged', 'unchanged', 'unchanged']);

  await client.schedule.getHandle(id).pause('maintenance');
  expect(await ensurePurgeSchedule(client, { ...config, RETENTION_SWEEP_INTERVAL_SEC: 120 }, log)).toBe('updated');
  const updated = await client.schedule.getHandle(id).describe();
  expect(updated.spec.intervals).toEqual([expect.objectContaining({ every: 120_000 })]);
  expect(updated.state.paused).toBe(true);
});

test('an archive failure is counted and retried until it succeeds; only then does the schedule purge the request', async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'guard-it-archive-'));
  const blocker = join(tmp, 'blocker');
  // A regular file where the archive directory's parent should be: mkdir fails with ENOTDIR, even as root.
  await writeFile(blocker, 'not a directory');
  const archiveDir = join(blocker, 'archive');
  const broken = await startHarness({ env: { ...SHORT_INTERVAL, RETENTION_ARCHIVE_DIR: archiveDir } });
  schedulesToDelete.push(purgeScheduleId(broken.config.TEMPORAL_TASK_QUEUE));
  try {
    const requestId = await approved(broken);
    // Two failed attempts: the activity is retried, not given up.
    await waitFor('two failed archive attempts', async () =>
      (await counter(broken.metrics.archiveFailures, { reason: 'ENOTDIR' })) >= 2 ? true : null,
    );
    const waiting = await describeOrNull(requestId);
    expect(waiting?.status.name).toBe('RUNNING');
    expect((await sweep(broken, 0)).purged).toBe(0);
    expect(await describeOrNull(requestId)).not.toBeNull();

    await rm(blocker);
    await waitFor('the archive line after the fix', async () => (await linesFor(archiveDir, requestId)).length > 0);
    await client.workflow.getHandle(requestId).result();
    expect(await linesFor(archiveDir, requestId)).toHaveLength(1);
    expect(await counter(broken.metrics.archivedRequests)).toBe(1);

    // Its schedule (every 3 s) purges it now, with no help; the sweep counts it once the server has deleted it.
    await waitFor('the schedule to purge it', async () => (await counter(broken.metrics.purgedRequests)) >= 1, 90_000);
    expect(await describeOrNull(requestId)).toBeNull();
    expect(await counter(broken.metrics.purgedRequests)).toBe(1);
    expect(purgeEvents(broken, requestId)).toHaveLength(1);
  } finally {
    await broken.close();
    await rm(tmp, { recursive: true, force: true });
  }
}, 180_000);

test('purge means gone: no replica answers from memory, and the key starts a new request under a new id', async () => {
  const replica = await startApi(h.config);
  try {
    const key = { 'idempotency-key': `purge-${randomUUID()}` };
    const first = await h.create('simple', {}, key);
    expect((await h.clickOutcome('approve', first.requestId, 'U_ALICE')).status).toBe('approved');
    // Both replicas have served the decided request (and would keep it in their caches).
    for (const base of [h.url, replica.url]) {
      const res = await fetchJson(base, 'GET', `/api/guard/status?requestId=${first.requestId}`);
      expect(res.body.status).toBe('approved');
    }
    await client.workflow.getHandle(workflowIdOf(first.requestId)).result();
    await sweepUntilPurged(h, workflowIdOf(first.requestId));

    const token = encodeURIComponent(first.token);
    for (const base of [h.url, replica.url]) {
      for (const path of [
        `/api/guard/status?requestId=${first.requestId}`,
        `/api/guard/wait?token=${token}&timeoutSec=1`,
        `/api/guard/wait-sse?token=${token}`,
      ]) {
        const res = await fetchJson(base, 'GET', path);
        expect([base === h.url ? 'A' : 'B', path, res.status]).toEqual([base === h.url ? 'A' : 'B', path, 404]);
      }
    }
    // The same key on the other replica: a new request, a new id and token, none of them the purged one's.
    const again = await fetchJson(replica.url, 'POST', '/api/guard/request', requestBody('simple'), key);
    expect(again.status).toBe(200);
    expect(again.body.requestId).not.toBe(first.requestId);
    expect(workflowIdOf(again.body.requestId)).toBe(workflowIdOf(first.requestId));
    expect(again.body.token).not.toBe(first.token);
    expect(again.body.status).toBe('ready_for_approval');
    expect((await fetchJson(h.url, 'GET', `/api/guard/status?requestId=${first.requestId}`)).status).toBe(404);
    // A button of the purged request's message reaches nothing.
    const stale = await h.click('approve', first.requestId, 'U_ALICE', { blockId: `decide:${first.payloadHash}` });
    const told = await h.outcomeOf(stale);
    expect(told).toMatchObject({ ok: false });
    const now = await fetchJson(h.url, 'GET', `/api/guard/status?requestId=${again.body.requestId}`);
    expect(now.body).toMatchObject({ status: 'ready_for_approval', approvalsCount: 0 });
  } finally {
    await replica.close();
  }
}, 120_000);
