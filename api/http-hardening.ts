import helmet from '@fastify/helmet';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';

const SLACK_ROUTE = '/api/slack/interactions';
const FORM = 'application/x-www-form-urlencoded';

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

function mediaType(req: FastifyRequest): string {
  return String(req.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim()
    .toLowerCase();
}

/**
 * Security headers on every answer, JSON-only bodies on the API and form bodies only on the Slack route (its own
 * parser is registered there), and nothing cached by browsers or proxies.
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
  // Slack posts interactions as forms only; JSON there would reach the signature check as an empty body.
  app.addHook('preParsing', async (req) => {
    if (req.routeOptions.url === SLACK_ROUTE && mediaType(req) !== FORM) {
      throw new HttpError(415, 'unsupported_media_type');
    }
  });
  app.addHook('onSend', async (_req, reply) => {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
  });
}
