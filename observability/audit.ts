import { createWriteStream, type WriteStream } from 'node:fs';
import { trace } from '@opentelemetry/api';

export interface AuditEvent {
  event: string;
  requestId?: string | undefined;
  action?: string | undefined;
  actor?: string | undefined;
  [field: string]: unknown;
}

export interface AuditLog {
  emit(event: AuditEvent): void;
  close(): Promise<void>;
}

/**
 * NDJSON audit trail: one line per fact, to stdout or appended to AUDIT_FILE. Each line is one write() so
 * lines from concurrent emitters never interleave.
 */
export function createAuditLog(opts: { file?: string | undefined; stream?: NodeJS.WritableStream } = {}): AuditLog {
  const out: NodeJS.WritableStream | WriteStream =
    opts.stream ?? (opts.file ? createWriteStream(opts.file, { flags: 'a' }) : process.stdout);
  return {
    emit(event) {
      const traceId = trace.getActiveSpan()?.spanContext().traceId ?? null;
      out.write(`${JSON.stringify({ time: new Date().toISOString(), traceId, ...event })}\n`);
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (out === process.stdout || !('end' in out)) return resolve();
        out.end(() => resolve());
      }),
  };
}
