import { App, LogLevel, type BlockAction, type ButtonAction } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import { z } from 'zod';
import { DECISION_BLOCK_PREFIX } from '../domain/slack-message.js';
import type { CommandOutcome, RequestGateway } from '../api/requests.js';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';
import * as msg from '../workflows/messages.js';
import { registerEditHandlers } from './edits.js';
import { FastifyReceiver, type AckResult } from './receiver.js';
import { countedSlackCall, ephemeralTeller, refusalText, type Tell } from './replies.js';

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
type Command = (requestId: string, userId: string, action: ButtonAction) => Promise<CommandOutcome>;

/** The Bolt app behind `/api/slack/interactions`: clicks and modal submissions become workflow Updates. */
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
  const decide = (run: Command) => decisionHandler(run, tell) as never;

  app.action<BlockAction<ButtonAction>>(
    'approve',
    decide((requestId, userId, action) => {
      const seen = action.block_id?.startsWith(DECISION_BLOCK_PREFIX)
        ? action.block_id.slice(DECISION_BLOCK_PREFIX.length)
        : undefined;
      return gateway.command(requestId, msg.approveUpdate, msg.approveSignal, {
        userId,
        ...(seen ? { seenPayloadHash: seen } : {}),
      });
    }),
  );
  app.action<BlockAction<ButtonAction>>(
    'deny',
    decide((requestId, userId) => gateway.command(requestId, msg.denyUpdate, msg.denySignal, { userId })),
  );
  app.action<BlockAction<ButtonAction>>(
    /^persona_ack:.+$/,
    decide((requestId, userId, action) => {
      const persona = action.action_id.slice('persona_ack:'.length);
      return gateway.command(requestId, msg.personaAckUpdate, msg.personaAckSignal, { persona, userId });
    }),
  );
  registerEditHandlers(app, { ...deps, slackCall, tell });

  return { dispatch: (payload) => receiver.dispatch(payload), client: app.client };
}

/** Sends the command, answers the click with the outcome, and tells a refused clicker privately. */
function decisionHandler(run: Command, tell: Tell) {
  return async ({ ack, body, action, client }: ButtonArgs) => {
    const requestId = action.value;
    let outcome: CommandOutcome;
    try {
      outcome = requestId
        ? await run(requestId, body.user.id, action)
        : { ok: false, reason: 'not_found', message: 'button without a request id' };
    } catch {
      // Temporal unreachable: nothing was recorded, and the clicker must know to click again.
      const text = 'The approval service is temporarily unavailable: nothing was recorded, please click again shortly.';
      await ack({ ok: false, error: 'temporarily_unavailable', text });
      tell(client, body, text);
      return;
    }
    const text = describe(outcome);
    await ack(
      outcome.ok
        ? { ok: true, status: outcome.view?.status ?? 'queued', text }
        : { ok: false, error: outcome.reason, text },
    );
    if (!outcome.ok) tell(client, body, text);
  };
}

function describe(outcome: CommandOutcome): string {
  if (!outcome.ok) return refusalText(outcome.reason, outcome.message);
  if (!outcome.view) return 'Received; the request will update in a moment.';
  const v = outcome.view;
  return `Recorded. Request is ${v.status} (${v.approvals.length} of ${v.minApprovals} approvals).`;
}
