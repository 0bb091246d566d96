import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { trace } from '@opentelemetry/api';
import type { Config } from '../config/env.js';

export interface AuditEvent {
  event: string;
  requestId?: string | undefined;
  action?: string | undefined;
  actor?: string | undefined;
  /** The trace the fact belongs to; defaults to the active span's (facts from workflows bring their own). */
  traceId?: string | null | undefined;
  [field: string]: unknown;
}

export interface AuditLog {
  emit(event: AuditEvent): void;
  close(): Promise<void>;
}

export const SECRET_MASK = '«secret»';
/** Shorter values are not treated as secrets: masking them would garble ordinary text. */
const MIN_SECRET_LENGTH = 8;

/**
 * NDJSON audit trail: one line per fact, to stdout or appended to AUDIT_FILE. A file line is one synchronous
 * write() on an O_APPEND descriptor: it is in the file when emit returns (a crash loses nothing), and lines of
 * concurrent emitters, other processes included, never interleave. Configured secrets are masked wherever they
 * would appear, as a last guard behind the emitters never putting them there.
 */
export function createAuditLog(
  opts: { file?: string | undefined; stream?: NodeJS.WritableStream; secrets?: ReadonlyArray<string | undefined> } = {},
): AuditLog {
  const mask = secretMasker(opts.secrets ?? []);
  const format = (event: AuditEvent) => {
    const traceId = event.traceId ?? trace.getActiveSpan()?.spanContext().traceId ?? null;
    return `${mask(JSON.stringify({ time: new Date().toISOString(), ...event, traceId }))}\n`;
  };
  if (opts.stream || !opts.file) {
    const out = opts.stream ?? process.stdout;
    return {
      emit: (event) => void out.write(format(event)),
      close: () =>
        new Promise<void>((resolve) => {
          if (out === process.stdout || !('end' in out)) return resolve();
          out.end(() => resolve());
        }),
    };
  }
  mkdirSync(dirname(opts.file), { recursive: true });
  const fd = openSync(opts.file, 'a');
  let open = true;
  return {
    emit(event) {
      if (open) writeSync(fd, format(event));
    },
    async close() {
      if (!open) return;
      open = false;
      fsyncSync(fd);
      closeSync(fd);
    },
  };
}

/** Replaces every configured secret (as it appears inside a JSON string) with SECRET_MASK. */
function secretMasker(secrets: ReadonlyArray<string | undefined>): (line: string) => string {
  const escaped = secrets
    .filter((s): s is string => typeof s === 'string' && s.length >= MIN_SECRET_LENGTH)
    .map((s) => JSON.stringify(s).slice(1, -1));
  if (escaped.length === 0) return (line) => line;
  return (line) => escaped.reduce((acc, s) => (acc.includes(s) ? acc.replaceAll(s, SECRET_MASK) : acc), line);
}

/** The configuration values that must never reach a log or the audit trail. */
export function configSecrets(
  config: Pick<
    Config,
    | 'SLACK_SIGNING_SECRET'
    | 'SLACK_BOT_TOKEN'
    | 'ADMIN_TOKEN'
    | 'TOKEN_SECRET'
    | 'AGENT_API_KEYS'
    | 'RECEIPT_PRIVATE_KEY'
  >,
): string[] {
  const agentKeys = (config.AGENT_API_KEYS ?? '')
    .split(',')
    .map((pair) => pair.slice(pair.indexOf(':') + 1).trim())
    .filter(Boolean);
  return [
    config.SLACK_SIGNING_SECRET,
    config.SLACK_BOT_TOKEN,
    config.ADMIN_TOKEN,
    config.TOKEN_SECRET,
    config.RECEIPT_PRIVATE_KEY,
    ...agentKeys,
  ].filter((s): s is string => !!s);
}
