import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { apiError } from '../domain/api-schemas.js';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';
import { interactionSchema, type SlackInteractions } from './interactions.js';
import { ReplayCacheUnavailable, type ReplayCache } from './replay-cache.js';

export const INTERACTIONS_ROUTE = '/api/slack/interactions';
const MAX_SKEW_SEC = 300;
const REPLAY_WINDOW_SEC = 300;
const FORM = 'application/x-www-form-urlencoded';

type SecurityType = 'bad_signature' | 'stale_signature' | 'replay';

export interface SlackHttpDeps {
  interactions: SlackInteractions;
  signingSecret: string | undefined;
  replayCache: ReplayCache;
  metrics: Metrics;
  audit: AuditLog;
}

/** A refusal of the endpoint itself (Slack, not the clicker, sees it). */
class Refused extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly details?: unknown[],
  ) {
    super(code);
  }
}

/**
 * Slack's interactivity endpoint (SPEC section 4) as a Fastify plugin the composition root adds to the HTTP app:
 * verify the signature, refuse stale and replayed deliveries, then hand the payload to Bolt.
 */
export function slackHttpPlugin(deps: SlackHttpDeps): FastifyPluginAsync {
  return async (app) => {
    // Slack signs the exact bytes it sent, so the body is kept as a string and parsed after verification.
    app.addContentTypeParser(FORM, { parseAs: 'string' }, (_req, body, done) => done(null, body));
    // Slack posts interactions as forms only; anything else would reach the signature check as an empty body.
    app.addHook('preParsing', async (req, reply) => {
      if (mediaType(req) !== FORM) return reply.code(415).send({ error: 'unsupported_media_type' });
    });

    app.post(
      INTERACTIONS_ROUTE,
      {
        config: { auth: 'slack', rateLimit: false },
        schema: {
          summary: "Slack's interactivity endpoint (button clicks, modal submissions)",
          description:
            'A form body `payload=<JSON>`, signed by Slack (`x-slack-signature`, `x-slack-request-timestamp`).',
          tags: ['slack'],
          consumes: [FORM],
          response: {
            200: z.unknown().describe('Slack acknowledgement (a refusal the clicker sees is also a 200)'),
            400: apiError('bad_signature', 'stale_signature', 'replay_detected', 'invalid_payload'),
          },
        },
      },
      async (req, reply) => {
        const raw = typeof req.body === 'string' ? req.body : '';
        try {
          await verify(deps, req, raw);
          const ack = await deps.interactions.dispatch(parsePayload(raw));
          return await reply.code(ack.status as 200).send(ack.body);
        } catch (err) {
          return refusal(reply, err);
        }
      },
    );
  };
}

function refusal(reply: FastifyReply, err: unknown) {
  reply.type('application/json; charset=utf-8').serializer((body: unknown) => JSON.stringify(body));
  if (err instanceof Refused) {
    return reply.code(err.status).send({ error: err.code, ...(err.details ? { details: err.details } : {}) });
  }
  if (err instanceof ReplayCacheUnavailable) return reply.code(503).send({ error: 'replay_cache_unavailable' });
  throw err;
}

async function verify(deps: SlackHttpDeps, req: FastifyRequest, raw: string): Promise<void> {
  if (!deps.signingSecret) throw new Refused(503, 'slack_not_configured');
  const signature = header(req, 'x-slack-signature');
  const timestamp = header(req, 'x-slack-request-timestamp');
  if (!signature || !timestamp) return refuse(deps, req, 'bad_signature', 'bad_signature');
  const ts = Number(timestamp);
  if (!/^\d{1,12}$/.test(timestamp) || Math.abs(Date.now() / 1000 - ts) > MAX_SKEW_SEC) {
    return refuse(deps, req, 'stale_signature', 'stale_signature');
  }
  const expected = `v0=${createHmac('sha256', deps.signingSecret).update(`v0:${timestamp}:${raw}`).digest('hex')}`;
  if (!sameText(signature, expected)) return refuse(deps, req, 'bad_signature', 'bad_signature');
  if (!(await deps.replayCache.firstSeen(`slack-sig:${signature}`, REPLAY_WINDOW_SEC))) {
    return refuse(deps, req, 'replay', 'replay_detected');
  }
}

/** Constant-time comparison; hashing first makes the lengths equal so nothing leaks through them. */
function sameText(a: string, b: string): boolean {
  const digest = (s: string) => createHmac('sha256', 'compare').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

function refuse(deps: SlackHttpDeps, req: FastifyRequest, type: SecurityType, code: string): never {
  deps.metrics.securityEvents.inc({ type });
  deps.audit.emit({ event: 'security_event', type, actor: req.ip, route: INTERACTIONS_ROUTE });
  throw new Refused(400, code);
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function mediaType(req: FastifyRequest): string {
  return String(req.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim()
    .toLowerCase();
}

function parsePayload(raw: string): Record<string, unknown> {
  const field = new URLSearchParams(raw).get('payload');
  if (!field) throw new Refused(400, 'invalid_payload', ['missing payload field']);
  let json: unknown;
  try {
    json = JSON.parse(field);
  } catch {
    throw new Refused(400, 'invalid_payload', ['payload is not JSON']);
  }
  const parsed = interactionSchema.safeParse(json);
  if (!parsed.success) {
    const details = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new Refused(400, 'invalid_payload', details);
  }
  return parsed.data as Record<string, unknown>;
}
