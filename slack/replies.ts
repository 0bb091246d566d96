import type { BlockAction } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import { renderNotice } from '../domain/slack-message.js';
import type { Metrics } from '../observability/metrics.js';
import type { ReplyTo } from '../workflows/messages.js';

export { refusalText } from '../domain/refusal-text.js';

export const UNAVAILABLE_TEXT = 'The approval service is briefly unavailable; try again in a moment.';

/** Runs one Web API call from the API process, counted in `slack_api_calls_total` like the worker's. */
export type SlackCall = <T>(method: string, fn: () => Promise<T>) => Promise<T>;

export function countedSlackCall(metrics: Metrics): SlackCall {
  return async (method, fn) => {
    try {
      const result = await fn();
      metrics.slackApiCalls.inc({ method, outcome: 'ok' });
      return result;
    } catch (err) {
      metrics.slackApiCalls.inc({ method, outcome: isRateLimited(err) ? 'rate_limited' : 'error' });
      throw err;
    }
  };
}

export function isRateLimited(err: unknown): boolean {
  return (err as { code?: string }).code === 'slack_webapi_rate_limited_error';
}

/** Where a clicker is told privately: the button's channel, to the clicker only (none outside a channel). */
export function replyTo(body: BlockAction): ReplyTo | undefined {
  const channel = body.channel?.id ?? body.container?.channel_id;
  return channel ? { channel, user: body.user.id } : undefined;
}

/** Sends the clicker a message only they see, in the channel of the button. */
export type Tell = (client: WebClient, body: BlockAction, text: string) => void;

export function ephemeralTeller(slackCall: SlackCall, enabled: boolean): Tell {
  return (client, body, text) => {
    const to = replyTo(body);
    if (!enabled || !to) return;
    // Escaped and cut like every other notice: a reducer message can carry persona or key names.
    const notice = renderNotice(text);
    slackCall('chat.postEphemeral', () => client.chat.postEphemeral({ ...to, ...notice })).catch(() => {
      // The refusal already went back in the HTTP answer; an ephemeral that fails is not worth a retry.
    });
  };
}
