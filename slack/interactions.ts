import { App, LogLevel, type BlockAction, type ButtonAction } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import { z } from 'zod';
import { DECISION_BLOCK_PREFIX } from '../domain/slack-message.js';
import type { CommandOutcome, RequestGateway } from '../api/requests.js';
import * as msg from '../workflows/messages.js';
import { FastifyReceiver, type AckResult } from './receiver.js';

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

const REFUSAL_TEXT: Record<string, string> = {
  not_authorized: 'You are not authorized to do that on this request.',
  duplicate: 'You have already approved this request.',
  self_approval: 'You cannot approve your own request.',
  not_ready: 'Required personas must acknowledge before a decision.',
  already_decided: 'This request has already been decided.',
  already_acked: 'That persona has already been acknowledged.',
  stale_payload: 'The parameters changed since this message was shown; look again before approving.',
  not_found: 'This request no longer exists.',
};

export interface SlackInteractionsDeps {
  gateway: RequestGateway;
  botToken: string | undefined;
  apiUrl: string | undefined;
}

export interface SlackInteractions {
  dispatch(payload: Record<string, unknown>): Promise<AckResult>;
  client: WebClient;
}

/** The Bolt app behind `/api/slack/interactions`: button clicks become workflow Updates. */
export function createSlackInteractions({ gateway, botToken, apiUrl }: SlackInteractionsDeps): SlackInteractions {
  const receiver = new FastifyReceiver();
  const app = new App({
    receiver,
    authorize: async () => ({ botToken: botToken ?? '', botId: 'B_GUARD', botUserId: 'U_GUARD' }),
    logLevel: LogLevel.ERROR,
    ...(apiUrl ? { clientOptions: { slackApiUrl: apiUrl } } : {}),
  });

  const decide =
    (run: (requestId: string, userId: string, action: ButtonAction) => Promise<CommandOutcome>) =>
    async ({
      ack,
      body,
      action,
      client,
    }: {
      ack: (r?: unknown) => Promise<void>;
      body: BlockAction;
      action: ButtonAction;
      client: WebClient;
    }) => {
      const requestId = action.value;
      const outcome = requestId
        ? await run(requestId, body.user.id, action)
        : ({ ok: false, reason: 'not_found', message: 'button without a request id' } as const);
      const text = describe(outcome);
      await ack(
        outcome.ok
          ? { ok: true, status: outcome.view?.status ?? 'queued', text }
          : { ok: false, error: outcome.reason, text },
      );
      if (!outcome.ok && botToken) void tellClicker(client, body, text);
    };

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
    }) as never,
  );
  app.action<BlockAction<ButtonAction>>(
    'deny',
    decide((requestId, userId) => gateway.command(requestId, msg.denyUpdate, msg.denySignal, { userId })) as never,
  );
  app.action<BlockAction<ButtonAction>>(
    /^persona_ack:.+$/,
    decide((requestId, userId, action) => {
      const persona = action.action_id.slice('persona_ack:'.length);
      return gateway.command(requestId, msg.personaAckUpdate, msg.personaAckSignal, { persona, userId });
    }) as never,
  );

  return { dispatch: (payload) => receiver.dispatch(payload), client: app.client };
}

function describe(outcome: CommandOutcome): string {
  if (!outcome.ok) return REFUSAL_TEXT[outcome.reason] ?? outcome.message;
  if (!outcome.view) return 'Received; the request will update in a moment.';
  const v = outcome.view;
  return `Recorded. Request is ${v.status} (${v.approvals.length} of ${v.minApprovals} approvals).`;
}

async function tellClicker(client: WebClient, body: BlockAction, text: string): Promise<void> {
  const channel = body.channel?.id ?? body.container?.channel_id;
  if (!channel) return;
  try {
    await client.chat.postEphemeral({ channel, user: body.user.id, text });
  } catch {
    // The refusal already went back in the HTTP answer; an ephemeral that fails is not worth a retry.
  }
}
