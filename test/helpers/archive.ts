import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { appendLine, createArchiveActivities, type ArchiveRecord } from '../../activities/archive.js';
import type { Plan } from '../../domain/plan.js';
import { initialState, reduce, type Command } from '../../domain/request-state.js';
import { createAuditLog } from '../../observability/audit.js';
import { createMetrics } from '../../observability/metrics.js';
import { makePlan, makeRequest } from '../fixtures/plans.js';

export interface RecordSpec {
  id: string;
  action?: string;
  decidedAt: string;
  /** The command that ends the request (default: U_ALICE approves). */
  end?: Command;
  params?: Record<string, unknown>;
  redaction?: Plan['redaction'];
}

/** A final record produced by the real state machine, as the workflow hands it to the archive activity. */
export function finishedRecord(spec: RecordSpec): ArchiveRecord {
  const action = spec.action ?? 'run_migration';
  const plan = makePlan({ action, ...(spec.redaction ? { redaction: spec.redaction } : {}) });
  const request = makeRequest({ action, ...(spec.params ? { params: spec.params } : {}) });
  const createdAt = new Date(Date.parse(spec.decidedAt) - 60_000).toISOString();
  const expiresAt = new Date(Date.parse(createdAt) + 3600_000).toISOString();
  const input = { requestId: spec.id, request, plan, createdAt, expiresAt, lineageId: null, agent: 'ci-bot' };
  const t = reduce(initialState(input), plan, spec.end ?? { type: 'approve', userId: 'U_ALICE' }, spec.decidedAt);
  if (!t.ok) throw new Error(`fixture refused: ${t.reason}`);
  return { input, final: { ...t.state, slack: { channel: 'C_APPROVALS', ts: '1.2' } } };
}

// Failed attempts are expected in these tests: the SDK's warning for each would only be noise.
const quiet = new DefaultLogger('ERROR');

/** The real archive activity, run in a mock activity context (attempt and locality settable), with its metrics. */
export function archiver(archiveDir: string, writerId = 'w1', appendDelayMs = 0) {
  const metrics = createMetrics();
  const audit: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      audit.push(String(chunk));
      cb();
    },
  });
  const { archiveRequest } = createArchiveActivities({
    archiveDir,
    metrics,
    audit: createAuditLog({ stream }),
    writerId,
    // A slow disk: the write lands only after the delay (a second attempt may start meanwhile).
    ...(appendDelayMs
      ? { append: (file: string, line: string) => sleep(appendDelayMs).then(() => appendLine(file, line)) }
      : {}),
  });
  return {
    metrics,
    audit,
    /** `isLocal`: the workflow runs the archive as a local activity first, a normal one after that failed. */
    archive: (record: ArchiveRecord, attempt = 1, isLocal = true) =>
      new MockActivityEnvironment({ attempt, isLocal }, { logger: quiet }).run<
        [ArchiveRecord],
        { file: string },
        typeof archiveRequest
      >(archiveRequest, record),
  };
}
