import { ApplicationFailure, Context } from '@temporalio/activity';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Plan } from '../domain/plan.js';
import type { CreateRequest } from '../domain/request-schema.js';
import type { Status } from '../domain/request-state.js';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';
import type { ApprovalInput, RequestView } from '../workflows/messages.js';

export interface ArchiveDeps {
  archiveDir: string;
  metrics: Metrics;
  audit: AuditLog;
  /** Names this writer's files; default: the host name (a pod name in Kubernetes). */
  writerId?: string;
  /** Appends one line durably (default: one O_APPEND write, then fsync); tests slow it down. */
  append?: (file: string, line: string) => Promise<void>;
}

export interface ArchiveRecord {
  input: ApprovalInput;
  final: RequestView;
}

/**
 * One line of an archive file: the permanent record of a request once Temporal has purged it (SPEC section 7).
 * The top-level fields are what analytics filter on; `final` is the whole final state: approvals with the payload
 * hash each approver saw, voided approvals, overrides with their diffs, persona acks, escalation, decider and
 * reason, effective params and their hash, and the Slack message reference.
 */
export interface ArchiveLine {
  v: 1;
  archivedAt: string;
  requestId: string;
  action: string;
  outcome: Status;
  createdAt: string;
  expiresAt: string;
  decidedAt: string | null;
  decidedBy: string | null;
  lineageId: string | null;
  agent: string | null;
  /** The request as the agent submitted it (params before any edit). */
  request: CreateRequest;
  /** The policy's decision frozen at creation (approvers, quorum, personas, redaction, policy hash). */
  plan: Plan;
  final: RequestView;
}

/**
 * `requests-<UTC day the request ended>.<writer>.jsonl`: archives rotate daily and stay greppable by date, and each
 * host appends only to its own files, so a directory shared between hosts (NFS, where O_APPEND is not atomic across
 * clients) never sees two hosts append to one file.
 */
export function archiveFileFor(archiveDir: string, decidedAt: string, writerId: string): string {
  return join(archiveDir, `${dayPrefix(decidedAt)}${writerId}.jsonl`);
}

const dayPrefix = (decidedAt: string) => `requests-${decidedAt.slice(0, 10)}.`;

/** Matches every archive file name, with or without a writer part; group 1 is the day. */
export const ARCHIVE_FILE_NAME = /^requests-(\d{4}-\d{2}-\d{2})(?:\.[A-Za-z0-9_-]+)?\.jsonl$/;

function defaultWriterId(): string {
  return hostname().replace(/[^A-Za-z0-9_-]/g, '_') || 'local';
}

export function archiveLine({ input, final }: ArchiveRecord, archivedAt: string): ArchiveLine {
  return {
    v: 1,
    archivedAt,
    requestId: input.requestId,
    action: final.action,
    outcome: final.status,
    createdAt: final.createdAt,
    expiresAt: final.expiresAt,
    decidedAt: final.decidedAt,
    decidedBy: final.decidedBy,
    lineageId: input.lineageId,
    agent: input.agent,
    request: input.request,
    plan: input.plan,
    final,
  };
}

export function createArchiveActivities({
  archiveDir,
  metrics,
  audit,
  writerId = defaultWriterId(),
  append = appendLine,
}: ArchiveDeps) {
  const archive = oneAtATime(
    (record: ArchiveRecord) => record.input.requestId,
    (r) => archiveOnce(r),
  );
  /**
   * Appends the final record as one JSON line, durably, then counts it. Any failure is counted by errno and
   * rethrown as retryable: the workflow retries without limit, and stays open (so unpurgeable) until it lands.
   */
  const archiveOnce = async (record: ArchiveRecord): Promise<{ file: string }> => {
    const { input, final } = record;
    const day = final.decidedAt ?? final.createdAt;
    const file = archiveFileFor(archiveDir, day, writerId);
    let wrote = false;
    try {
      await mkdir(archiveDir, { recursive: true });
      // A retry (maybe on another host) may follow a write that landed before the attempt failed (fsync error,
      // worker died): never twice. The workflow runs the archive as a local activity first and as a normal one
      // only after that failed or timed out, so a normal activity's first attempt is a retry too.
      const { attempt, isLocal } = Context.current().info;
      const retry = attempt > 1 || !isLocal;
      if (!(retry && (await alreadyArchived(archiveDir, day, input.requestId)))) {
        await append(file, `${JSON.stringify(archiveLine(record, new Date().toISOString()))}\n`);
        wrote = true;
      }
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? 'unknown';
      metrics.archiveFailures.inc({ reason });
      throw ApplicationFailure.retryable(`archiving ${input.requestId} to ${file} failed: ${reason}`, 'archive_failed');
    }
    // Counted and audited by the attempt that wrote the line: a retry that finds it (the local attempt landed but
    // its answer came too late) must not say it again.
    if (!wrote) return { file };
    metrics.archivedRequests.inc();
    audit.emit({
      event: 'request_archived',
      requestId: input.requestId,
      action: final.action,
      actor: 'system',
      file,
    });
    return { file };
  };
  return { archiveRequest: archive };
}

/**
 * One write() on an O_APPEND descriptor, then fsync. On Linux an appending write to a regular file holds the inode
 * lock for its whole length, so lines from several worker processes of one host never interleave whatever their size
 * (PIPE_BUF only bounds pipes and FIFOs). Across hosts that lock does not exist (NFS): hence one file per host.
 */
export async function appendLine(file: string, line: string): Promise<void> {
  const bytes = Buffer.from(line);
  const fh = await open(file, 'a');
  try {
    const created = (await fh.stat()).size === 0;
    const { bytesWritten } = await fh.write(bytes);
    if (bytesWritten !== bytes.length) {
      // A short write (disk full) leaves a fragment: end it so the next record starts on its own line. Readers
      // skip lines that do not parse, and the retry writes the whole record again.
      await fh.write('\n').catch(() => undefined);
      throw Object.assign(new Error(`short write to ${file}`), { code: 'short_write' });
    }
    await fh.sync();
    if (created) await syncDir(dirname(file));
  } finally {
    await fh.close();
  }
}

/** A new file's directory entry is only durable once the directory itself is synced. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** True when a file of that day, whoever wrote it, holds a whole record of `requestId` (not a torn fragment). */
async function alreadyArchived(archiveDir: string, day: string, requestId: string): Promise<boolean> {
  const prefix = dayPrefix(day);
  const files = (await readdir(archiveDir)).filter((n) => n.startsWith(prefix) && ARCHIVE_FILE_NAME.test(n));
  for (const name of files) {
    if (await fileHasRecord(join(archiveDir, name), requestId)) return true;
  }
  return false;
}

async function fileHasRecord(file: string, requestId: string): Promise<boolean> {
  const needle = `"requestId":${JSON.stringify(requestId)}`;
  const stream = createReadStream(file, { encoding: 'utf8' });
  try {
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
      if (line.includes(needle) && parsedRequestId(line) === requestId) return true;
    }
    return false;
  } finally {
    stream.destroy();
  }
}

function parsedRequestId(line: string): unknown {
  try {
    return (JSON.parse(line) as { requestId?: unknown }).requestId;
  } catch {
    return undefined;
  }
}

export type ArchiveActivities = ReturnType<typeof createArchiveActivities>;

/**
 * Calls of `fn` for one key wait for the one running in this process: a local archive attempt the workflow gave up
 * on (its 5 s passed) may still be writing when the normal activity that follows it starts here; that one waits for
 * it, then finds its line.
 */
function oneAtATime<A, R>(keyOf: (arg: A) => string, fn: (arg: A) => Promise<R>): (arg: A) => Promise<R> {
  const running = new Map<string, Promise<unknown>>();
  return async (arg) => {
    const key = keyOf(arg);
    const earlier = running.get(key);
    if (earlier) await earlier.catch(() => {});
    const attempt = fn(arg);
    running.set(key, attempt);
    try {
      return await attempt;
    } finally {
      if (running.get(key) === attempt) running.delete(key);
    }
  };
}
