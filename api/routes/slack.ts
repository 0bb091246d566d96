import { createHmac } from 'node:crypto';
import type { FastifyInstance, FastifyRequest, FastifySchema } from 'fastify';
import { apiError } from '../../domain/api-schemas.js';
import { interactionSchema } from '../../slack/interactions.js';
import type { ApiDeps } from '../deps.js';
import { HttpError } from '../errors.js';
import { SLACK_SECURITY } from '../openapi.js';
import { safeEqual } from '../security.js';

const MAX_SKEW_SEC = 300;
const REPLAY_WINDOW_SEC = 300;

type SecurityType = 'bad_signature' | 'stale_signature' | 'replay';

/** Slack's interactivity endpoint (SPEC section 4): verify, refuse replays, then hand the payload to Bolt. */
export function slackRoutes(deps: ApiDeps) {
  return async (app: FastifyInstance) => {
    // Slack signs the exact bytes it sent, so the body is kept as a string and parsed after verification.
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) =>
      done(null, body),
    );

    const doc: FastifySchema = {
      summary: "Slack's interactivity endpoint (button clicks, modal submissions)",
      description: 'A form body `payload=<JSON>`, signed by Slack (`x-slack-signature`, `x-slack-request-timestamp`).',
      tags: ['slack'],
      security: SLACK_SECURITY,
      consumes: ['application/x-www-form-urlencoded'],
      response: {
        200: { description: 'Slack acknowledgement (a refusal the clicker sees is also a 200)' },
        400: apiError('bad_signature', 'stale_signature', 'replay_detected', 'invalid_payload'),
      },
    };
    app.post('/api/slack/interactions', { schema: doc }, async (req, reply) => {
      const raw = typeof req.body === 'string' ? req.body : '';
      await verify(deps, req, raw);
      const payload = parsePayload(raw);
      const ack = await deps.slack.dispatch(payload);
      return reply.code(ack.status).send(ack.body);
    });
  };
}

async function verify(deps: ApiDeps, req: FastifyRequest, raw: string): Promise<void> {
  const secret = deps.config.SLACK_SIGNING_SECRET;
  if (!secret) throw new HttpError(503, 'slack_not_configured');
  const signature = header(req, 'x-slack-signature');
  const timestamp = header(req, 'x-slack-request-timestamp');
  if (!signature || !timestamp) return refuse(deps, req, 'bad_signature', 'bad_signature');
  const ts = Number(timestamp);
  if (!/^\d{1,12}$/.test(timestamp) || Math.abs(Date.now() / 1000 - ts) > MAX_SKEW_SEC) {
    return refuse(deps, req, 'stale_signature', 'stale_signature');
  }
  const expected = `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${raw}`).digest('hex')}`;
  if (!safeEqual(signature, expected)) return refuse(deps, req, 'bad_signature', 'bad_signature');
  if (!(await deps.replayCache.firstSeen(`slack-sig:${signature}`, REPLAY_WINDOW_SEC))) {
    return refuse(deps, req, 'replay', 'replay_detected');
  }
}

function refuse(deps: ApiDeps, req: FastifyRequest, type: SecurityType, code: string): never {
  deps.metrics.securityEvents.inc({ type });
  deps.audit.emit({ event: 'security_event', type, actor: req.ip, route: '/api/slack/interactions' });
  throw new HttpError(400, code);
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function parsePayload(raw: string): Record<string, unknown> {
  const field = new URLSearchParams(raw).get('payload');
  if (!field) throw new HttpError(400, 'invalid_payload', { details: ['missing payload field'] });
  let json: unknown;
  try {
    json = JSON.parse(field);
  } catch {
    throw new HttpError(400, 'invalid_payload', { details: ['payload is not JSON'] });
  }
  const parsed = interactionSchema.safeParse(json);
  if (!parsed.success) {
    throw new HttpError(400, 'invalid_payload', {
      details: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  return parsed.data as Record<string, unknown>;
}
