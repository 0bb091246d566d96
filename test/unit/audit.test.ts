import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { configSecrets, createAuditLog, SECRET_MASK } from '../../observability/audit.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

function capture() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return { stream, text: () => chunks.join('') };
}

test('a line is in AUDIT_FILE when emit returns, appended after what was there', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'audit-'));
  const file = join(dir, 'nested', 'audit.ndjson');
  const first = createAuditLog({ file });
  first.emit({ event: 'request_created', requestId: 'r1', action: 'a', actor: 'U1' });
  expect(readFileSync(file, 'utf8')).toContain('"requestId":"r1"');
  await first.close();
  const second = createAuditLog({ file });
  second.emit({ event: 'request_approved', requestId: 'r1', action: 'a', actor: 'U2' });
  await second.close();
  const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
  expect(lines.map((l) => (JSON.parse(l) as { event: string }).event)).toEqual(['request_created', 'request_approved']);
});

test('lines from several processes appending to one AUDIT_FILE never interleave', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'audit-'));
  const file = join(dir, 'audit.ndjson');
  const script = join(dir, 'writer.mts');
  const lines = 400;
  await writeFile(
    script,
    `import { createAuditLog } from ${JSON.stringify(join(ROOT, 'observability/audit.ts'))};
const log = createAuditLog({ file: process.argv[2] });
const pad = process.argv[3].repeat(4000);
for (let i = 0; i < ${lines}; i++) log.emit({ event: 'probe', actor: process.argv[3], seq: i, pad });
await log.close();
`,
  );
  const writers = ['A', 'B', 'C'].map(
    (name) =>
      new Promise<number | null>((done) =>
        spawn(process.execPath, ['--import', 'tsx', script, file, name], { cwd: ROOT, stdio: 'inherit' }).once(
          'exit',
          done,
        ),
      ),
  );
  expect(await Promise.all(writers)).toEqual([0, 0, 0]);
  const parsed = (await readFile(file, 'utf8'))
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as { actor: string; seq: number; pad: string });
  expect(parsed).toHaveLength(3 * lines);
  for (const name of ['A', 'B', 'C']) {
    const mine = parsed.filter((p) => p.actor === name);
    expect(mine.map((p) => p.seq)).toEqual([...Array(lines).keys()]);
    expect(mine.every((p) => p.pad === name.repeat(4000))).toBe(true);
  }
}, 60_000);

test('configured secrets are masked wherever they would appear; short values are left alone', () => {
  const out = capture();
  const audit = createAuditLog({ stream: out.stream, secrets: ['xoxb-bot-token-123', 'abc', undefined] });
  audit.emit({ event: 'security_event', actor: 'x', detail: 'header was Bearer xoxb-bot-token-123', note: 'abc' });
  const line = JSON.parse(out.text()) as { detail: string; note: string };
  expect(line.detail).toBe(`header was Bearer ${SECRET_MASK}`);
  expect(line.note).toBe('abc');
});

test('every line has time and traceId; a fact from a workflow keeps the trace id it brought', () => {
  const out = capture();
  const audit = createAuditLog({ stream: out.stream });
  audit.emit({ event: 'policy_reloaded', actor: 'admin', hash: 'h' });
  audit.emit({ event: 'request_created', requestId: 'r', action: 'a', actor: 'U', traceId: 'f'.repeat(32) });
  const [reload, created] = out
    .text()
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(reload).toMatchObject({ event: 'policy_reloaded', traceId: null, time: expect.any(String) });
  expect(created).toMatchObject({ event: 'request_created', traceId: 'f'.repeat(32) });
});

test('configSecrets lists the Slack, admin, token and receipt secrets and every agent key', () => {
  expect(
    configSecrets({
      SLACK_SIGNING_SECRET: 'signing',
      SLACK_BOT_TOKEN: 'xoxb',
      ADMIN_TOKEN: 'admin',
      TOKEN_SECRET: undefined,
      AGENT_API_KEYS: 'ci:key-one, bot:key-two',
      RECEIPT_PRIVATE_KEY: undefined,
    }),
  ).toEqual(['signing', 'xoxb', 'admin', 'key-one', 'key-two']);
});
