import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ArchiveLine } from '../../activities/archive.js';
import { archiver, finishedRecord } from '../helpers/archive.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'guard-archive-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const linesOf = async (file: string) => (await readFile(file, 'utf8')).split('\n').filter(Boolean);

test("the final record lands as one JSON line in the writer's file of its decision day", async () => {
  const a = archiver(join(dir, 'archive'));
  const record = finishedRecord({ id: 'req-1', decidedAt: '2025-03-04T10:00:00.000Z', params: { steps: 2 } });
  const { file } = await a.archive(record);
  expect(file).toBe(join(dir, 'archive', 'requests-2025-03-04.w1.jsonl'));
  const [text, ...rest] = await linesOf(file);
  expect(rest).toEqual([]);
  const line = JSON.parse(text!) as ArchiveLine;
  expect(line).toMatchObject({
    v: 1,
    requestId: 'req-1',
    action: 'run_migration',
    outcome: 'approved',
    decidedAt: '2025-03-04T10:00:00.000Z',
    decidedBy: 'U_ALICE',
    agent: 'ci-bot',
    request: record.input.request,
    plan: record.input.plan,
    final: { effectiveParams: { steps: 2 }, approvals: [{ userId: 'U_ALICE' }], slack: { channel: 'C_APPROVALS' } },
  });
  expect(Date.parse(line.archivedAt)).not.toBeNaN();
  expect(await a.metrics.registry.getSingleMetricAsString('archived_requests_total')).toMatch(/ 1$/m);
  expect(a.audit.join('')).toContain('"event":"request_archived"');
});

test('a retry after a write that landed does not write the line twice', async () => {
  const a = archiver(dir);
  const record = finishedRecord({ id: 'req-2', decidedAt: '2025-03-04T11:00:00.000Z' });
  const { file } = await a.archive(record, 1);
  await a.archive(record, 2);
  await a.archive(finishedRecord({ id: 'req-3', decidedAt: '2025-03-04T12:00:00.000Z' }), 2);
  expect((await linesOf(file)).map((l) => (JSON.parse(l) as ArchiveLine).requestId)).toEqual(['req-2', 'req-3']);
});

test('the normal activity after a local attempt that wrote the line (then timed out) does not write it again', async () => {
  const a = archiver(dir);
  const record = finishedRecord({ id: 'req-4', decidedAt: '2025-03-04T11:30:00.000Z' });
  const { file } = await a.archive(record, 1, true);
  await a.archive(record, 1, false);
  await a.archive(finishedRecord({ id: 'req-5', decidedAt: '2025-03-04T11:40:00.000Z' }), 1, false);
  expect((await linesOf(file)).map((l) => (JSON.parse(l) as ArchiveLine).requestId)).toEqual(['req-4', 'req-5']);
  // Said once per line: the retry that found req-4's line neither counts nor audits it again.
  expect(await a.metrics.registry.getSingleMetricAsString('archived_requests_total')).toMatch(/ 2$/m);
  const archived = a.audit.filter((l) => l.includes('"event":"request_archived"'));
  expect(archived.map((l) => (JSON.parse(l) as { requestId: string }).requestId)).toEqual(['req-4', 'req-5']);
});

test('the normal activity started while the local attempt is still writing waits for it, and writes nothing', async () => {
  const a = archiver(dir, 'w1', 200);
  const record = finishedRecord({ id: 'req-6', decidedAt: '2025-03-04T11:50:00.000Z' });
  // Both at once, as when the workflow gave up on a slow local attempt (5 s) that is still appending and fsyncing.
  const [{ file }] = await Promise.all([a.archive(record, 1, true), a.archive(record, 1, false)]);
  expect((await linesOf(file)).map((l) => (JSON.parse(l) as ArchiveLine).requestId)).toEqual(['req-6']);
  expect(a.audit.filter((l) => l.includes('"event":"request_archived"'))).toHaveLength(1);
});

test('a retry on another host finds the line the first host wrote', async () => {
  const record = finishedRecord({ id: 'req-6', decidedAt: '2025-03-04T13:00:00.000Z' });
  const first = await archiver(dir, 'host-a').archive(record, 1);
  const second = await archiver(dir, 'host-b').archive(record, 2);
  expect(second.file).toBe(join(dir, 'requests-2025-03-04.host-b.jsonl'));
  expect(await linesOf(first.file)).toHaveLength(1);
  await expect(readFile(second.file)).rejects.toMatchObject({ code: 'ENOENT' });
});

test('a torn fragment of the same request does not count as archived', async () => {
  const a = archiver(dir);
  const record = finishedRecord({ id: 'req-4', decidedAt: '2025-03-05T09:00:00.000Z' });
  const file = join(dir, 'requests-2025-03-05.w1.jsonl');
  await writeFile(file, '{"v":1,"archivedAt":"2025-03-05T09:00:01Z","requestId":"req-4","act\n');
  await a.archive(record, 2);
  const lines = await linesOf(file);
  expect(lines).toHaveLength(2);
  expect((JSON.parse(lines[1]!) as ArchiveLine).requestId).toBe('req-4');
});

test('a failure is counted by errno and rethrown as retryable; the retry after the fix writes the line', async () => {
  const blocker = join(dir, 'blocker');
  await appendFile(blocker, 'a regular file where a directory should be');
  const a = archiver(join(blocker, 'archive'));
  const record = finishedRecord({ id: 'req-5', decidedAt: '2025-03-06T09:00:00.000Z' });
  await expect(a.archive(record, 1)).rejects.toMatchObject({ type: 'archive_failed', nonRetryable: false });
  expect(await a.metrics.registry.getSingleMetricAsString('request_archive_failures_total')).toMatch(
    /request_archive_failures_total\{reason="ENOTDIR"\} 1$/m,
  );
  await rm(blocker);
  const { file } = await a.archive(record, 2);
  expect(await linesOf(file)).toHaveLength(1);
});
