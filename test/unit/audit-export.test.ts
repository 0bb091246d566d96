import { execFile } from 'node:child_process';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import {
  CSV_COLUMNS,
  csvField,
  exportArchive,
  parseExportArgs,
  UsageError,
  type ExportOptions,
} from '../../scripts/audit-export.js';
import { archiver, finishedRecord } from '../helpers/archive.js';

let dir: string;

/** Three days of archives written by the real archive activity on two hosts, plus a torn fragment and a duplicate. */
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'guard-export-'));
  const { archive } = archiver(dir);
  await archive(finishedRecord({ id: 'r1', decidedAt: '2025-05-01T09:00:00.000Z' }));
  await archive(
    finishedRecord({
      id: 'r2',
      action: 'rotate_secret',
      decidedAt: '2025-05-01T23:59:59.000Z',
      end: { type: 'deny', userId: 'U_BOB', reason: 'too risky, "really"\nsee thread' },
      params: { name: 'db', password: 'hunter2' },
      redaction: { mode: 'denylist', keys: ['password'] },
    }),
  );
  await archive(
    finishedRecord({ id: 'r3', decidedAt: '2025-05-02T12:00:00.000Z', end: { type: 'cancel', actor: 'U_REQ' } }),
  );
  await archiver(dir, 'w2').archive(
    finishedRecord({ id: 'r4', action: 'rotate_secret', decidedAt: '2025-05-03T00:00:00.000Z' }),
  );
  await archiver(dir, 'w2').archive(finishedRecord({ id: 'r5', decidedAt: '2025-05-01T10:00:00.000Z' }));
  const day2 = join(dir, 'requests-2025-05-02.w1.jsonl');
  await appendFile(day2, '{"v":1,"requestId":"torn","fin\n');
  await appendFile(day2, (await readFile(day2, 'utf8')).split('\n')[0] + '\n');
  await appendFile(join(dir, 'notes.txt'), 'not an archive file\n');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(opts: Partial<ExportOptions>) {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const stats = await exportArchive({ dir, actions: [], outcomes: [], format: 'csv', ...opts }, out);
  return { stats, text: Buffer.concat(chunks).toString('utf8') };
}

const jsonl = async (opts: Partial<ExportOptions>) =>
  (await run({ ...opts, format: 'jsonl' })).text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const ids = async (opts: Partial<ExportOptions>) => (await jsonl(opts)).map((r) => r.requestId);

describe('csv', () => {
  test('fixed header, one row per request, RFC 4180 quoting, redacted params', async () => {
    const { text, stats } = await run({});
    const header = `${CSV_COLUMNS.join(',')}\r\n`;
    expect(header).toBe(
      'requestId,action,outcome,requesterId,requesterSource,agent,repo,createdAt,decidedAt,decidedBy,reason,approvers,' +
        'approvalsCount,minApprovals,escalated,overridden,payloadHash,effectiveParams,policyHash,lineageId,archivedAt\r\n',
    );
    expect(text.startsWith(header)).toBe(true);
    const denied = text.split('\r\n').find((l) => l.startsWith('r2,'));
    expect(denied).toContain(',denied,U_REQ,slack,ci-bot,acme/shop,');
    expect(denied).toContain(',U_BOB,"too risky, ""really""\nsee thread",,0,1,false,false,sha256:');
    expect(denied).toContain(',"{""name"":""db"",""password"":""«redacted»""}",');
    expect(text).not.toContain('hunter2');
    expect(stats).toEqual({ files: 4, exported: 5, unreadable: 1, duplicates: 1 });
  });

  test.each([
    [null, ''],
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    [['U1', 'U2'], 'U1;U2'],
    [{ k: 1 }, '"{""k"":1}"'],
    [3, '3'],
    [false, 'false'],
  ])('csvField(%j) = %s', (value, expected) => {
    expect(csvField(value)).toBe(expected);
  });
});

describe('filters', () => {
  test('time window on the decision time: from inclusive, to exclusive, across day files', async () => {
    expect(await ids({ from: new Date('2025-05-01T23:59:59Z'), to: new Date('2025-05-03T00:00:00Z') })).toEqual([
      'r2',
      'r3',
    ]);
    expect(await ids({ from: new Date('2025-05-02T12:00:00.001Z') })).toEqual(['r4']);
    expect(await ids({ to: new Date('2025-05-01T09:00:00.001Z') })).toEqual(['r1']);
  });

  test('action and outcome, alone and combined', async () => {
    expect(await ids({ actions: ['rotate_secret'] })).toEqual(['r2', 'r4']);
    expect(await ids({ outcomes: ['approved'] })).toEqual(['r1', 'r5', 'r4']);
    expect(await ids({ outcomes: ['denied', 'cancelled'] })).toEqual(['r2', 'r3']);
    expect(await ids({ actions: ['rotate_secret'], outcomes: ['approved'] })).toEqual(['r4']);
    expect(await ids({ actions: ['nope'] })).toEqual([]);
  });
});

test('jsonl rows carry the same columns with their JSON types', async () => {
  const [r1] = await jsonl({ to: new Date('2025-05-01T10:00:00Z') });
  expect(Object.keys(r1!)).toEqual([...CSV_COLUMNS]);
  expect(r1).toMatchObject({
    requestId: 'r1',
    outcome: 'approved',
    approvers: ['U_ALICE'],
    approvalsCount: 1,
    escalated: false,
    effectiveParams: { database: 'orders', steps: 3 },
    decidedAt: '2025-05-01T09:00:00.000Z',
  });
});

describe('arguments', () => {
  test('lists, dates and defaults', () => {
    const opts = parseExportArgs(
      ['--from', '2025-05-01', '--action', 'a,b', '--action', 'c', '--outcome', 'approved', '--format', 'jsonl'],
      { RETENTION_ARCHIVE_DIR: '/srv/archive' },
    );
    expect(opts).toMatchObject({
      dir: '/srv/archive',
      actions: ['a', 'b', 'c'],
      outcomes: ['approved'],
      format: 'jsonl',
      to: undefined,
    });
    expect(opts.from?.toISOString()).toBe('2025-05-01T00:00:00.000Z');
    expect(parseExportArgs([], {}).format).toBe('csv');
  });

  test.each([[['--format', 'xml']], [['--outcome', 'pending']], [['--from', 'yesterday']], [['--bogus']]])(
    '%j is a usage error',
    (argv) => {
      expect(() => parseExportArgs(argv, {})).toThrow(UsageError);
    },
  );
});

test('the npm script writes the file named by --out', async () => {
  const out = join(dir, 'out.csv');
  const { stderr } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'scripts/audit-export.ts', '--dir', dir, '--outcome', 'approved', '--out', out],
    { cwd: join(import.meta.dirname, '..', '..') },
  );
  const rows = (await readFile(out, 'utf8')).split('\r\n').filter(Boolean);
  expect(rows).toHaveLength(4);
  expect(rows.slice(1).map((r) => r.split(',')[0])).toEqual(['r1', 'r5', 'r4']);
  expect(stderr).toContain('3 records from 4 files');
}, 30_000);
