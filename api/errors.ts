import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
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

/**
 * One error handler: validation → 400, refusals → their code, 5xx never leaks internals. Error bodies are built
 * here from known fields, so they skip the routes' response serializers: a refusal must never turn into a 500.
 */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | HttpError | ZodError | Error, req, reply) => {
    reply.type('application/json; charset=utf-8').serializer((body: unknown) => JSON.stringify(body));
    if (err instanceof HttpError) return reply.code(err.statusCode).send({ error: err.code, ...err.extra });
    if (hasZodFastifySchemaValidationErrors(err)) {
      const details = err.validation.map((v) => ({
        path: v.instancePath.slice(1).replaceAll('/', '.'),
        message: v.message,
      }));
      return reply.code(400).send({ error: 'invalid_payload', details });
    }
    if (err instanceof ZodError) {
      return reply.code(400).send({ error: 'invalid_payload', details: err.issues.map(formatIssue) });
    }
    if (isSerializationError(err)) {
      req.log.error({ err, cause: (err as { cause?: unknown }).cause }, 'response does not match its schema');
      return reply.code(500).send({ error: 'internal_error' });
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

function isSerializationError(err: unknown): boolean {
  return (err as FastifyError).code === 'FST_ERR_RESPONSE_SERIALIZATION' && isResponseSerializationError(err as never);
}

function formatIssue(issue: { path: PropertyKey[]; message: string }): { path: string; message: string } {
  return { path: issue.path.map(String).join('.'), message: issue.message };
}
