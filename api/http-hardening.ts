import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';

/** Headers that carry credentials; the logger prints them as "[Redacted]" should anything ever log a request. */
const SECRET_HEADERS = ['authorization', 'x-admin-token', 'x-slack-signature', 'cookie'];

/**
 * The logger settings of the app: request serializations leave out the query string (it carries request tokens)
 * and mask credential headers. Request logging itself is off (see app.ts).
 */
export function loggerOptions(logger: boolean | object | undefined): false | object {
  if (!logger) return false;
  return {
    ...(typeof logger === 'object' ? logger : {}),
    redact: SECRET_HEADERS.map((h) => `req.headers["${h}"]`),
    serializers: {
      req: (req: { method?: string; url?: string; ip?: string }) => ({
        method: req.method,
        url: req.url?.split('?')[0],
        remoteAddress: req.ip,
      }),
    },
  };
}

/**
 * Security headers on every answer, JSON-only bodies (a plugin that takes forms, like Slack's, registers its own
 * parser), and nothing cached by browsers or proxies.
 */
export async function registerHttpHardening(app: FastifyInstance): Promise<void> {
  await app.register(helmet, {
    global: true,
    // Nothing here is a page: a JSON answer rendered by mistake may load, frame and submit nothing.
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
  });
  // Fastify parses text/plain by default, which would hand strings to JSON routes; without it they answer 415.
  app.removeContentTypeParser('text/plain');
  app.addHook('onSend', async (_req, reply) => {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
  });
}
