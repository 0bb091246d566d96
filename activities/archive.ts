import { ApplicationFailure, Context } from '@temporalio/activity';
import { createReadStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
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

/** File of the day a request ended, so archives rotate daily and stay greppable by date. */
export function archiveFileFor(archiveDir: string, decidedAt: string): string {
  return join(archiveDir, `requests-${decidedAt.slice(0, 10)}.jsonl`);
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

export function createArchiveActivities({ archiveDir, metrics, audit }: ArchiveDeps) {
  return {
    /**
     * Appends the final record as one JSON line, durably, then counts it. Any failure is counted by errno and
     * rethrown as retryable: the workflow retries without limit, and stays open (so unpurgeable) until it lands.
     */
    async archiveRequest(record: ArchiveRecord): Promise<{ file: string }> {
      const { input, final } = record;
      const file = archiveFileFor(archiveDir, final.decidedAt ?? final.createdAt);
      try {
        await mkdir(archiveDir, { recursive: true });
        // A retry may follow a write that landed before the attempt failed (fsync error, worker died): never twice.
        const retry = Context.current().info.attempt > 1;
        if (!(retry && (await alreadyArchived(file, input.requestId)))) {
          await appendLine(file, `${JSON.stringify(archiveLine(record, new Date().toISOString()))}\n`);
        }
      } catch (err) {
        const reason = (err as NodeJS.ErrnoException).code ?? 'unknown';
        metrics.archiveFailures.inc({ reason });
        throw ApplicationFailure.retryable(`archiving ${input.requestId} to ${file} failed: ${reason}`, 'archive_failed');
      }
      metrics.archivedRequests.inc();
      audit.emit({ event: 'request_archived', requestId: input.requestId, action: final.action, actor: 'system', file });
      return { file };
    },
  };
}

/**
 * One write() on an O_APPEND descriptor, then fsync. On a local Linux filesystem an appending write holds the
 * inode lock for its whole length, so lines from several workers never interleave whatever their size (PIPE_BUF
 * only bounds pipes). NFS does not make O_APPEND atomic: the archive directory must be local to one host, or each
 * host must have its own directory.
 */
async function appendLine(file: string, line: string): Promise<void> {
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

/** True when `file` holds a whole, parseable record of `requestId` (a torn fragment does not count). */
async function alreadyArchived(file: string, requestId: string): Promise<boolean> {
  const needle = `"requestId":${JSON.stringify(requestId)}`;
  const stream = createReadStream(file, { encoding: 'utf8' });
  try {
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
      if (line.includes(needle) && parsedRequestId(line) === requestId) return true;
    }
    return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
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
