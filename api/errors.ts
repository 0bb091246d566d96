import type { FastifyError, FastifyInstance } from 'fastify';
import { ZodError } from 'zod';

/** A refusal with a stable code, answered as `{error: code, ...extra}`. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(code);
  }
}

/** Temporal could not be reached: the API answers 503 and `/readyz` degrades until it comes back. */
export function isUnavailable(err: unknown): boolean {
  const e = err as { code?: number; name?: string; message?: string };
  return (
    e?.code === 14 ||
    e?.code === 4 ||
    e?.name === 'ServiceError' ||
    e?.name === 'TransportError' ||
    /UNAVAILABLE|DEADLINE_EXCEEDED|ECONNREFUSED|Failed to connect/.test(e?.message ?? '')
  );
}

/** One error handler: validation → 400, refusals → their code, 5xx never leaks internals. */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | HttpError | ZodError | Error, req, reply) => {
    if (err instanceof HttpError) return reply.code(err.statusCode).send({ error: err.code, ...err.extra });
    if (err instanceof ZodError) {
      return reply.code(400).send({ error: 'invalid_payload', details: err.issues.map(formatIssue) });
    }
    const fe = err as FastifyError;
    if (fe.statusCode === 413) return reply.code(413).send({ error: 'payload_too_large' });
    if (fe.statusCode === 415) return reply.code(415).send({ error: 'unsupported_media_type' });
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      return reply.code(fe.statusCode).send({ error: 'invalid_payload', details: [fe.message] });
    }
    if (isUnavailable(err)) {
      req.log.warn({ err: err.message }, 'temporal unavailable');
      return reply
        .code(503)
        .send({ error: 'temporal_unavailable', detail: 'the workflow service cannot be reached; retry shortly' });
    }
    req.log.error({ err }, 'unhandled error');
    return reply.code(500).send({ error: 'internal_error' });
  });
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'not_found' }));
}

function formatIssue(issue: { path: PropertyKey[]; message: string }): { path: string; message: string } {
  return { path: issue.path.map(String).join('.'), message: issue.message };
}
