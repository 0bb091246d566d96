/**
 * `npm run audit:export -- [--dir DIR] [--from ISO] [--to ISO] [--action A]... [--outcome O]... [--format csv|jsonl]
 * [--out FILE]`: reads the archive files (`requests-YYYY-MM-DD.<host>.jsonl` in RETENTION_ARCHIVE_DIR) and writes one
 * row per archived request for analytics ingestion. Filters: decision time in [from, to), action, outcome.
 * Params are exported redacted as the request's policy says (as Slack showed them).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ARCHIVE_FILE_NAME, type ArchiveLine } from '../activities/archive.js';
import { redactParams } from '../domain/redaction.js';
import { TERMINAL_STATUSES } from '../domain/request-state.js';

export const CSV_COLUMNS = [
  'requestId',
  'action',
  'outcome',
  'requesterId',
  'requesterSource',
  'agent',
  'repo',
  'createdAt',
  'decidedAt',
  'decidedBy',
  'reason',
  'approvers',
  'approvalsCount',
  'minApprovals',
  'escalated',
  'overridden',
  'payloadHash',
  'effectiveParams',
  'policyHash',
  'lineageId',
  'archivedAt',
] as const;

export type ExportRow = Record<(typeof CSV_COLUMNS)[number], unknown>;

export interface ExportOptions {
  dir: string;
  /** Inclusive lower bound on the decision time. */
  from?: Date | undefined;
  /** Exclusive upper bound on the decision time. */
  to?: Date | undefined;
  /** Empty = every action / outcome. */
  actions: string[];
  outcomes: string[];
  format: 'csv' | 'jsonl';
}

export interface ExportStats {
  files: number;
  exported: number;
  /** Lines that are not a whole record (a fragment left by a failed write): skipped. */
  unreadable: number;
  /** A request met twice (a retried archive write): exported once. */
  duplicates: number;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

const DAY_MS = 24 * 3600 * 1000;

export function exportRow(line: ArchiveLine): ExportRow {
  const { final, request, plan } = line;
  return {
    requestId: line.requestId,
    action: line.action,
    outcome: line.outcome,
    requesterId: request.meta.requester.id,
    requesterSource: request.meta.requester.source,
    agent: line.agent,
    repo: request.meta.origin.repo,
    createdAt: line.createdAt,
    decidedAt: line.decidedAt,
    decidedBy: line.decidedBy,
    reason: final.reason,
    approvers: final.approvals.map((a) => a.userId),
    approvalsCount: final.approvals.length,
    minApprovals: final.minApprovals,
    escalated: final.escalated,
    overridden: final.overrides.length > 0,
    payloadHash: final.payloadHash,
    effectiveParams: redactParams(final.effectiveParams, plan.redaction),
    policyHash: plan.policyHash,
    lineageId: line.lineageId,
    archivedAt: line.archivedAt,
  };
}

/** RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. Lists joined with `;`. */
export function csvField(value: unknown): string {
  let text: string;
  if (value === null || value === undefined) text = '';
  else if (Array.isArray(value)) text = value.join(';');
  else if (typeof value === 'object') text = JSON.stringify(value);
  else text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvLine(values: readonly unknown[]): string {
  return `${values.map(csvField).join(',')}\r\n`;
}

function decisionTime(line: ArchiveLine): number {
  return Date.parse(line.decidedAt ?? line.createdAt);
}

function matches(line: ArchiveLine, opts: ExportOptions): boolean {
  const t = decisionTime(line);
  if (opts.from && t < opts.from.getTime()) return false;
  if (opts.to && t >= opts.to.getTime()) return false;
  if (opts.actions.length && !opts.actions.includes(line.action)) return false;
  if (opts.outcomes.length && !opts.outcomes.includes(line.outcome)) return false;
  return true;
}

/** Archive files whose day can hold a match, oldest first (a file holds the requests decided on its UTC day). */
async function archiveFiles({ dir, from, to }: ExportOptions): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => ARCHIVE_FILE_NAME.test(n)).sort();
  return names
    .filter((name) => {
      const dayStart = Date.parse(`${ARCHIVE_FILE_NAME.exec(name)![1]}T00:00:00Z`);
      return !(from && dayStart + DAY_MS <= from.getTime()) && !(to && dayStart >= to.getTime());
    })
    .map((name) => join(dir, name));
}

function parseLine(text: string): ArchiveLine | null {
  try {
    const line = JSON.parse(text) as Partial<ArchiveLine>;
    return line && typeof line.requestId === 'string' && line.final && line.request && line.plan
      ? (line as ArchiveLine)
      : null;
  } catch {
    return null;
  }
}

/** Writes the header (CSV) and every matching record to `out`; returns what it read and skipped. */
export async function exportArchive(opts: ExportOptions, out: NodeJS.WritableStream): Promise<ExportStats> {
  const stats: ExportStats = { files: 0, exported: 0, unreadable: 0, duplicates: 0 };
  const seen = new Set<string>();
  const write = async (chunk: string) => {
    if (!out.write(chunk)) await once(out, 'drain');
  };
  if (opts.format === 'csv') await write(csvLine(CSV_COLUMNS));
  for (const file of await archiveFiles(opts)) {
    stats.files++;
    for await (const text of createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity })) {
      if (!text.trim()) continue;
      const line = parseLine(text);
      if (!line) {
        stats.unreadable++;
        continue;
      }
      if (!matches(line, opts)) continue;
      if (seen.has(line.requestId)) {
        stats.duplicates++;
        continue;
      }
      seen.add(line.requestId);
      const row = exportRow(line);
      await write(opts.format === 'csv' ? csvLine(CSV_COLUMNS.map((c) => row[c])) : `${JSON.stringify(row)}\n`);
      stats.exported++;
    }
  }
  return stats;
}

function parseTime(flag: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new UsageError(`--${flag}: not an ISO date or time: ${value}`);
  return date;
}

/** Repeated flags and comma-separated values both work: `--action a --action b` = `--action a,b`. */
function list(values: string[] | undefined): string[] {
  return (values ?? [])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
}

export function parseExportArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): ExportOptions & { out?: string | undefined; help: boolean } {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        dir: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        action: { type: 'string', multiple: true },
        outcome: { type: 'string', multiple: true },
        format: { type: 'string', default: 'csv' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const format = values.format;
  if (format !== 'csv' && format !== 'jsonl') throw new UsageError(`--format: csv or jsonl, not ${format}`);
  const outcomes = list(values.outcome);
  const bad = outcomes.filter((o) => !(TERMINAL_STATUSES as readonly string[]).includes(o));
  if (bad.length) throw new UsageError(`--outcome: ${bad.join(', ')} (expected ${TERMINAL_STATUSES.join(', ')})`);
  return {
    dir: values.dir ?? env.RETENTION_ARCHIVE_DIR ?? '.data/archive',
    from: parseTime('from', values.from),
    to: parseTime('to', values.to),
    actions: list(values.action),
    outcomes,
    format,
    out: values.out,
    help: values.help,
  };
}

const USAGE = `usage: npm run audit:export -- [--dir DIR] [--from ISO] [--to ISO] [--action NAME]... [--outcome ${TERMINAL_STATUSES.join('|')}]...
                              [--format csv|jsonl] [--out FILE]
  --dir      archive directory (default: RETENTION_ARCHIVE_DIR, else .data/archive)
  --from     decision time, inclusive (e.g. 2025-01-01 or 2025-01-01T12:00:00Z)
  --to       decision time, exclusive
  --format   csv (default; fixed header) or jsonl
  --out      output file (default: stdout)`;

async function main(): Promise<void> {
  const opts = parseExportArgs(process.argv.slice(2));
  if (opts.help) {
    console.log(USAGE);
    return;
  }
  const out = opts.out ? createWriteStream(opts.out) : process.stdout;
  const stats = await exportArchive(opts, out);
  if (out !== process.stdout) {
    out.end();
    await finished(out);
  }
  console.error(
    `audit:export: ${stats.exported} records from ${stats.files} files` +
      (stats.unreadable ? `, ${stats.unreadable} unreadable lines skipped` : '') +
      (stats.duplicates ? `, ${stats.duplicates} duplicates skipped` : ''),
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof UsageError ? `${err.message}\n${USAGE}` : `audit:export failed: ${String(err)}`);
    process.exit(err instanceof UsageError ? 2 : 1);
  });
}
