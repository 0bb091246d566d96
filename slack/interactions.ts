import { createHash } from 'node:crypto';
import { App, LogLevel, type BlockAction, type ButtonAction } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import { z } from 'zod';
import { DECISION_BLOCK_PREFIX } from '../domain/slack-message.js';
import type { ClickMeta, RequestGateway, SentClick } from '../gateway/types.js';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';
import { registerEditHandlers } from './edits.js';
import { FastifyReceiver, type AckResult } from './receiver.js';
import { countedSlackCall, ephemeralTeller, refusalText, replyTo, type Tell } from './replies.js';

/** The parts of an interaction payload we rely on; anything else Slack sends passes through untouched. */
export const interactionSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('block_actions'),
      user: z.object({ id: z.string().min(1) }).loose(),
      actions: z
        .array(
          z
            .object({ action_id: z.string().min(1), value: z.string().optional(), block_id: z.string().optional() })
            .loose(),
        )
        .min(1),
    })
    .loose(),
  z
    .object({
      type: z.literal('view_submission'),
      user: z.object({ id: z.string().min(1) }).loose(),
      view: z.object({ callback_id: z.string(), private_metadata: z.string().optional() }).loose(),
    })
    .loose(),
]);

export interface SlackInteractionsDeps {
  gateway: RequestGateway;
  botToken: string | undefined;
  apiUrl: string | undefined;
  metrics: Metrics;
  audit: AuditLog;
}

export interface SlackInteractions {
  dispatch(payload: Record<string, unknown>): Promise<AckResult>;
  client: WebClient;
}

type ButtonArgs = { ack: (r?: unknown) => Promise<void>; body: BlockAction; action: ButtonAction; client: WebClient };
type Command = (requestId: string, userId: string, action: ButtonAction, meta: ClickMeta) => Promise<SentClick>;

/**
 * The Bolt app behind `/api/slack/interactions`: clicks become workflow Signals (answered as soon as Temporal
 * has them), modal submissions Updates (the modal shows their refusals in place).
 */
export function createSlackInteractions(deps: SlackInteractionsDeps): SlackInteractions {
  const { gateway, botToken, apiUrl } = deps;
  const receiver = new FastifyReceiver();
  const app = new App({
    receiver,
    authorize: async () => ({ botToken: botToken ?? '', botId: 'B_GUARD', botUserId: 'U_GUARD' }),
    logLevel: LogLevel.ERROR,
    // A click must be answered within 3 s: the client gives up at once instead of retrying for minutes.
    clientOptions: {
      ...(apiUrl ? { slackApiUrl: apiUrl } : {}),
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
    },
  });
  const slackCall = countedSlackCall(deps.metrics);
  const tell = ephemeralTeller(slackCall, Boolean(botToken));
  const decide = (run: Command) => clickHandler(run, tell) as never;

  app.action<BlockAction<ButtonAction>>(
    'approve',
    decide(async (requestId, userId, action, meta) => {
      // The decision block's id carries the payload hash of the params the clicker saw; an approval that cannot say
      // which params it approves (a forged, replayed or foreign button) counts for nothing.
      const seen = action.block_id?.startsWith(DECISION_BLOCK_PREFIX)
        ? action.block_id.slice(DECISION_BLOCK_PREFIX.length)
        : '';
      if (!seen) return UNSEEN;
      return gateway.click(requestId, 'approve', { userId, seenPayloadHash: seen }, meta);
    }),
  );
  app.action<BlockAction<ButtonAction>>(
    'deny',
    decide((requestId, userId, _action, meta) => gateway.click(requestId, 'deny', { userId }, meta)),
  );
  app.action<BlockAction<ButtonAction>>(
    /^persona_ack:.+$/,
    decide((requestId, userId, action, meta) => {
      const persona = action.action_id.slice('persona_ack:'.length);
      return gateway.click(requestId, 'personaAck', { persona, userId }, meta);
    }),
  );
  registerEditHandlers(app, { ...deps, slackCall, tell });

  return { dispatch: (payload) => receiver.dispatch(payload), client: app.client };
}

const RECEIVED_TEXT = 'Received; the request will update in a moment.';
const UNSEEN: SentClick = {
  ok: false,
  reason: 'stale_payload',
  message: 'this button does not say which parameters you saw; approve from the current request message',
};

/**
 * Sends the click as a Signal and answers Slack as soon as Temporal has it (SPEC 4: "sends the workflow
 * message and answers at once"). The workflow applies it; a refused clicker is told privately by the workflow
 * (an activity), and waiting agents hear the new state from the history.
 */
function clickHandler(run: Command, tell: Tell) {
  return async ({ ack, body, action, client }: ButtonArgs) => {
    const requestId = action.value;
    const clickId = clickIdOf(body, action);
    let sent: SentClick;
    try {
      sent = requestId
        ? await run(requestId, body.user.id, action, { clickId, replyTo: replyTo(body) })
        : { ok: false, reason: 'not_found', message: 'button without a request id' };
    } catch {
      // Temporal unreachable: nothing was recorded, and the clicker must know to click again.
      const text = 'The approval service is temporarily unavailable: nothing was recorded, please click again shortly.';
      await ack({ ok: false, error: 'temporarily_unavailable', text });
      tell(client, body, text);
      return;
    }
    if (!sent.ok) {
      const text = refusalText(sent.reason, sent.message);
      await ack({ ok: false, error: sent.reason, text });
      tell(client, body, text);
      return;
    }
    await ack({ ok: true, status: 'received', requestId, clickId, text: RECEIVED_TEXT });
  };
}

/**
 * A click's identity, from what Slack sent: the same delivery replayed (or retried) gives the same id, so the
 * workflow applies it once; two real clicks differ (Slack stamps each with its own action_ts and trigger id).
 */
export function clickIdOf(body: BlockAction, action: ButtonAction): string {
  const parts = [body.user.id, action.action_id, action.block_id, action.value, action.action_ts, body.trigger_id];
  return `click_${createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32)}`;
}
