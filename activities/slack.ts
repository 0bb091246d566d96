import { ApplicationFailure } from '@temporalio/activity';
import type { WebClient } from '@slack/web-api';
import type { Plan } from '../domain/plan.js';
import { refusalText } from '../domain/refusal-text.js';
import type { CreateRequest } from '../domain/request-schema.js';
import type { RequestState } from '../domain/request-state.js';
import { renderEscalationNotice, renderRequestMessage, type SlackMessage } from '../domain/slack-message.js';
import type { Metrics } from '../observability/metrics.js';
import type { ReplyTo, SlackRef } from '../workflows/messages.js';
import { SlackUpdateQueue } from './slack-update-queue.js';

export interface SlackActivityDeps {
  /** null when no bot token is configured: messages are skipped, decisions still work (API, signals). */
  slack: WebClient | null;
  metrics: Metrics;
  /** SLACK_UPDATE_QUEUE: bursts of changes to one message wait `coalesceMs` and go out as one chat.update. */
  updateQueue?: { coalesceMs: number } | null;
}

/**
 * What the worker tells the workflow's Slack loop after each call: with the update queue on, how long to let
 * changes accumulate before the next update. Coming from the worker's config, it applies to requests in flight.
 */
export interface UpdateHint {
  coalesceMs?: number;
}

export type PostedMessage = SlackRef & UpdateHint;

export interface MessageInput {
  request: CreateRequest;
  plan: Plan;
  state: RequestState;
}

/** Slack errors that retrying cannot fix. */
const PERMANENT = new Set([
  'channel_not_found',
  'user_not_in_channel',
  'not_in_channel',
  'is_archived',
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'invalid_blocks',
  'msg_too_long',
  'message_not_found',
  'cant_update_message',
]);

export interface RefusalNotice {
  replyTo: ReplyTo;
  reason: string;
  message: string;
}

export function createSlackActivities({ slack, metrics, updateQueue }: SlackActivityDeps) {
  const queue = updateQueue ? new SlackUpdateQueue(metrics.slackUpdateQueueDepth) : null;
  const hint: UpdateHint = updateQueue ? { coalesceMs: updateQueue.coalesceMs } : {};

  async function call<T>(method: string, fn: (client: WebClient) => Promise<T>): Promise<T | null> {
    if (!slack) return null;
    try {
      const result = await fn(slack);
      metrics.slackApiCalls.inc({ method, outcome: 'ok' });
      return result;
    } catch (err) {
      throw classify(method, err, metrics);
    }
  }

  return {
    async postRequestMessage({ request, plan, state }: MessageInput): Promise<PostedMessage | null> {
      const channel = plan.channel ?? plan.dmFallbackUser;
      if (!channel) return null;
      const msg = renderRequestMessage(request, plan, state);
      const res = await call('chat.postMessage', (c) => c.chat.postMessage({ channel, ...msg }));
      return res?.ts && res.channel ? { channel: res.channel, ts: res.ts, ...hint } : null;
    },

    async updateRequestMessage({
      request,
      plan,
      state,
      ref,
    }: MessageInput & { ref: SlackRef }): Promise<UpdateHint | void> {
      const msg = renderRequestMessage(request, plan, state);
      const send = async () => {
        await call('chat.update', (c) => c.chat.update({ channel: ref.channel, ts: ref.ts, ...msg }));
      };
      if (queue) await queue.submit(ref, state.version, send);
      else await send();
      return hint;
    },

    /** Tells a clicker, in the channel of the button and only to them, why their click was refused. */
    async tellRefusal({ replyTo, reason, message }: RefusalNotice): Promise<void> {
      await call('chat.postEphemeral', (c) =>
        c.chat.postEphemeral({ channel: replyTo.channel, user: replyTo.user, text: refusalText(reason, message) }),
      );
    },

    async postEscalationNotice({ request, plan, state, ref }: MessageInput & { ref: SlackRef | null }): Promise<void> {
      const notice: SlackMessage = renderEscalationNotice(request, state);
      if (ref)
        await call('chat.postMessage', (c) =>
          c.chat.postMessage({ channel: ref.channel, thread_ts: ref.ts, ...notice }),
        );
      const channel = plan.escalation?.channel;
      if (channel) await call('chat.postMessage', (c) => c.chat.postMessage({ channel, ...notice }));
    },
  };
}

export type SlackActivities = ReturnType<typeof createSlackActivities>;

interface SlackishError {
  code?: string;
  data?: { error?: string };
  retryAfter?: number;
  statusCode?: number;
}

/** Maps a WebClient error to a Temporal failure: 429 honours Retry-After, permanent errors stop retries. */
function classify(method: string, err: unknown, metrics: Metrics): Error {
  const e = err as SlackishError;
  if (e.code === 'slack_webapi_rate_limited_error') {
    metrics.slackApiCalls.inc({ method, outcome: 'rate_limited' });
    return ApplicationFailure.create({
      type: 'slack_rate_limited',
      message: `${method} rate limited by Slack`,
      nextRetryDelay: Math.max(1, e.retryAfter ?? 1) * 1000,
    });
  }
  const slackError = e.data?.error;
  if (slackError && PERMANENT.has(slackError)) {
    metrics.slackApiCalls.inc({ method, outcome: 'error' });
    return ApplicationFailure.nonRetryable(`${method} failed: ${slackError}`, `slack_${slackError}`);
  }
  metrics.slackApiCalls.inc({ method, outcome: 'error' });
  return ApplicationFailure.retryable(`${method} failed: ${slackError ?? (err as Error).message}`, 'slack_unavailable');
}
