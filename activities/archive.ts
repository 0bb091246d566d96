import { ApplicationFailure, Context } from '@temporalio/activity';
import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Metrics } from '../observability/metrics.js';
import type { ApprovalInput, RequestView } from '../workflows/messages.js';

export interface ArchiveDeps {
  archiveDir: string;
  metrics: Metrics;
}

export interface ArchiveRecord {
  input: ApprovalInput;
  final: RequestView;
}

/** File of the day a request ended, so archives rotate daily and stay greppable by date. */
export function archiveFileFor(archiveDir: string, decidedAt: string): string {
  return join(archiveDir, `requests-${decidedAt.slice(0, 10)}.jsonl`);
}

export function createArchiveActivities({ archiveDir, metrics }: ArchiveDeps) {
  return {
    /**
     * Appends the final record as one JSON line. One write() on an O_APPEND descriptor keeps lines whole
     * with several writers; fsync makes it durable before the workflow may mark the request archived.
     */
    async archiveRequest({ input, final }: ArchiveRecord): Promise<{ file: string }> {
      const file = archiveFileFor(archiveDir, final.decidedAt ?? final.createdAt);
      const line = `${JSON.stringify({ archivedAt: new Date().toISOString(), requestId: input.requestId, request: input.request, plan: input.plan, lineageId: input.lineageId, agent: input.agent, final })}\n`;
      try {
        await mkdir(archiveDir, { recursive: true });
        // A retry may follow a write that landed before the worker died: never write the line twice.
        if (Context.current().info.attempt > 1 && (await alreadyArchived(file, input.requestId))) return { file };
        const fh = await open(file, 'a');
        try {
          await fh.write(line);
          await fh.sync();
        } finally {
          await fh.close();
        }
      } catch (err) {
        const reason = (err as NodeJS.ErrnoException).code ?? 'unknown';
        metrics.archiveFailures.inc({ reason });
        throw ApplicationFailure.retryable(`archiving ${input.requestId} failed: ${reason}`, 'archive_failed');
      }
      metrics.archivedRequests.inc();
      return { file };
    },
  };
}

async function alreadyArchived(file: string, requestId: string): Promise<boolean> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.includes(`"requestId":${JSON.stringify(requestId)}`);
}

export type ArchiveActivities = ReturnType<typeof createArchiveActivities>;
