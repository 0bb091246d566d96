import { ApplicationFailure, log } from '@temporalio/activity';
import type { WebClient } from '@slack/web-api';
import { refusalText } from '../domain/refusal-text.js';
import {
  anythingCut,
  renderEscalationNotice,
  renderMinimalMessage,
  renderNotice,
  renderRequestMessage,
  renderThreadDetails,
  type Cut,
  type SlackMessage,
} from '../domain/slack-message.js';
import type { Metrics } from '../observability/metrics.js';
import type {
  MessageInput,
  PostOutcome,
  RefusalNotice,
  SlackActivityContract,
  SlackRef,
  UpdateHint,
} from '../workflows/messages.js';
import { SlackUpdateQueue } from './slack-update-queue.js';

export interface SlackActivityDeps {
  /** null when no bot token is configured: messages are skipped, decisions still work (API, signals). */
  slack: WebClient | null;
  metrics: Metrics;
  /** SLACK_UPDATE_QUEUE: bursts of changes to one message wait `coalesceMs` and go out as one chat.update. */
  updateQueue?: { coalesceMs: number } | null;
}

/** Slack refused the content itself: a smaller message to the same place may still go through. */
const CONTENT_REFUSALS = new Set([
  'invalid_blocks',
  'invalid_blocks_format',
  'msg_too_long',
  'msg_blocks_too_long',
  'no_text',
  'invalid_attachments',
  'too_many_attachments',
  'invalid_arguments',
]);

/** Slack errors another try cannot fix (https://api.slack.com/methods/chat.postMessage, chat.update: Errors). */
const PERMANENT = new Set([
  ...CONTENT_REFUSALS,
  'channel_not_found',
  'user_not_in_channel',
  'not_in_channel',
  'is_archived',
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'missing_scope',
  'not_allowed_token_type',
  'no_permission',
  'restricted_action',
  'cannot_dm_bot',
  'messages_tab_disabled',
  'user_not_found',
  'user_disabled',
  'message_not_found',
  'cant_update_message',
  'edit_window_closed',
]);

const ALL_CUT: Cut = { params: true, justification: true, links: true };

/** A permanent refusal, with Slack's error code (the workflow and the fallbacks read it). */
class Refused extends Error {
  constructor(
    readonly method: string,
    readonly code: string,
  ) {
    super(`${method} failed: ${code}`);
  }
}

/** What Slack refused, for operators (the workflow records the outcome itself). */
const say = (message: string) => log.warn(message);

type SlackFn<T> = (client: WebClient) => Promise<T>;

/** Web API calls counted in slack_api_calls_total, by how a failure is meant. */
interface Calls {
  /** Transient errors throw a retryable Temporal failure, refusals throw `Refused`. */
  call<T>(client: WebClient, method: string, fn: SlackFn<T>): Promise<T>;
  /** A refusal is a Temporal failure that is not retried (the workflow logs it and moves on). */
  must<T>(client: WebClient, method: string, fn: SlackFn<T>): Promise<T>;
  /** Best effort: what fails here (a permalink, a thread reply) must not undo what was already posted. */
  maybe<T>(client: WebClient, method: string, fn: SlackFn<T>): Promise<T | null>;
}

function slackCalls(metrics: Metrics): Calls {
  const call = async <T>(client: WebClient, method: string, fn: SlackFn<T>): Promise<T> => {
    try {
      const result = await fn(client);
      metrics.slackApiCalls.inc({ method, outcome: 'ok' });
      return result;
    } catch (err) {
      throw classify(method, err, metrics);
    }
  };
  return {
    call,
    async must(client, method, fn) {
      try {
        return await call(client, method, fn);
      } catch (err) {
        if (err instanceof Refused) throw ApplicationFailure.nonRetryable(err.message, `slack_${err.code}`);
        throw err;
      }
    },
    async maybe(client, method, fn) {
      try {
        return await call(client, method, fn);
      } catch (err) {
        say(`${method} failed (ignored): ${(err as Error).message}`);
        return null;
      }
    },
  };
}

/** What every Slack activity works with. */
interface Ctx {
  slack: WebClient | null;
  calls: Calls;
  queue: SlackUpdateQueue | null;
  /** With the update queue on: how long the workflow lets changes accumulate before the next update. */
  hint: UpdateHint;
}

async function postThread(ctx: Ctx, client: WebClient, ref: SlackRef, messages: SlackMessage[]): Promise<void> {
  for (const message of messages) {
    await ctx.calls.must(client, 'chat.postMessage', (c) =>
      c.chat.postMessage({ channel: ref.channel, thread_ts: ref.ts, ...message }),
    );
  }
}

/**
 * The rich message, or when Slack refuses its content the minimal one (plus, in its thread, every detail it leaves
 * out); null when Slack refuses this destination, with why in `errors`.
 */
async function postTo(
  ctx: Ctx,
  client: WebClient,
  channel: string,
  input: MessageInput,
  errors: string[],
): Promise<{ ref: SlackRef; minimal: boolean; paramsCut: boolean; postMs: number } | null> {
  const { request, plan, state } = input;
  const rich = renderRequestMessage(request, plan, state);
  const attempts: Array<[boolean, SlackMessage]> = [
    [false, rich],
    [true, renderMinimalMessage(request, plan, state)],
  ];
  for (const [minimal, message] of attempts) {
    try {
      const started = performance.now();
      const res = await ctx.calls.call(client, 'chat.postMessage', (c) => c.chat.postMessage({ channel, ...message }));
      const postMs = Math.round(performance.now() - started);
      const ref = { channel: res.channel ?? channel, ts: res.ts ?? '' };
      if (!minimal) return { ref, minimal, paramsCut: anythingCut(rich.cut), postMs };
      const details = renderThreadDetails(request, plan, state, ALL_CUT);
      const threaded = await postThread(ctx, client, ref, details).then(
        () => true,
        (err: unknown) => (say(`details thread failed: ${(err as Error).message}`), false),
      );
      return { ref, minimal, paramsCut: !threaded, postMs };
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      errors.push(`${minimal ? 'minimal message' : 'message'} to ${channel}: ${err.code}`);
      say(`chat.postMessage to ${channel} refused: ${err.code}`);
      if (!CONTENT_REFUSALS.has(err.code)) return null;
    }
  }
  return null;
}

/**
 * Posts the request where the plan routes it: its channel, else (or when the channel refuses it) a DM to
 * `routing.dmFallbackUser`. A refused rich message falls back to a minimal one with the buttons. Only when everything
 * is refused is the outcome `failed` (never thrown: the workflow records it); Slack being down or rate limiting
 * throws, and Temporal retries.
 */
async function postRequestMessage(ctx: Ctx, input: MessageInput): Promise<PostOutcome> {
  const { slack } = ctx;
  const { plan } = input;
  const targets = [...new Set([plan.channel, plan.dmFallbackUser].filter((t): t is string => Boolean(t)))];
  if (!slack || targets.length === 0) return { slack: 'skipped' };
  const errors: string[] = [];
  for (const [i, channel] of targets.entries()) {
    const posted = await postTo(ctx, slack, channel, input, errors);
    if (!posted) continue;
    const { ref, minimal, paramsCut, postMs } = posted;
    const link = await ctx.calls.maybe(slack, 'chat.getPermalink', (c) =>
      c.chat.getPermalink({ channel: ref.channel, message_ts: ref.ts }),
    );
    const fallback = i > 0 ? 'dm' : minimal ? 'minimal' : undefined;
    return {
      slack: 'posted',
      ...ref,
      ...(link?.permalink ? { permalink: link.permalink } : {}),
      ...(fallback ? { fallback } : {}),
      ...(paramsCut ? { paramsCut } : {}),
      postMs,
      ...ctx.hint,
    };
  }
  return { slack: 'failed', error: errors.join('; ') };
}

/** Re-renders the message; content Slack refuses falls back to the minimal message, its details in the thread. */
async function updateRequestMessage(ctx: Ctx, input: MessageInput & { ref: SlackRef }): Promise<UpdateHint> {
  const { slack, calls } = ctx;
  if (!slack) return ctx.hint;
  const { request, plan, state, ref } = input;
  const rich = renderRequestMessage(request, plan, state);
  let paramsCut = anythingCut(rich.cut);
  const send = async () => {
    try {
      await calls.call(slack, 'chat.update', (c) => c.chat.update({ channel: ref.channel, ts: ref.ts, ...rich }));
    } catch (err) {
      if (!(err instanceof Refused) || !CONTENT_REFUSALS.has(err.code)) throw asFailure(err);
      say(`chat.update of ${ref.channel}/${ref.ts} refused (${err.code}): sending the minimal message`);
      const minimal = renderMinimalMessage(request, plan, state);
      await calls.must(slack, 'chat.update', (c) => c.chat.update({ channel: ref.channel, ts: ref.ts, ...minimal }));
      paramsCut = true;
    }
  };
  if (ctx.queue) await ctx.queue.submit(ref, state.version, send);
  else await send();
  return { ...ctx.hint, ...(paramsCut ? { paramsCut } : {}) };
}

/**
 * What the message cannot show, in full, in its thread: the params (redacted as configured) in as many code blocks
 * and messages as they need; the first time (before any edit) the justification and links it cut too.
 */
async function postParamsThread(ctx: Ctx, { request, plan, state, ref }: MessageInput & { ref: SlackRef }) {
  if (!ctx.slack) return;
  const { cut } = renderRequestMessage(request, plan, state);
  const first = state.overrides.length === 0;
  const show: Cut = anythingCut(cut)
    ? { params: true, justification: first && cut.justification, links: first && cut.links }
    : ALL_CUT;
  await postThread(ctx, ctx.slack, ref, renderThreadDetails(request, plan, state, show));
}

/** Tells a clicker, in the channel of the button and only to them, why their click was refused. */
async function tellRefusal(ctx: Ctx, { replyTo, reason, message }: RefusalNotice): Promise<void> {
  if (!ctx.slack) return;
  const notice = renderNotice(refusalText(reason, message));
  await ctx.calls.must(ctx.slack, 'chat.postEphemeral', (c) =>
    c.chat.postEphemeral({ channel: replyTo.channel, user: replyTo.user, ...notice }),
  );
}

async function postEscalationNotice(ctx: Ctx, input: MessageInput & { ref: SlackRef | null }): Promise<void> {
  const { slack, calls } = ctx;
  if (!slack) return;
  const { request, plan, state, ref } = input;
  const channel = plan.escalation?.channel;
  const link =
    ref && channel
      ? await calls.maybe(slack, 'chat.getPermalink', (c) =>
          c.chat.getPermalink({ channel: ref.channel, message_ts: ref.ts }),
        )
      : null;
  const notice = renderEscalationNotice(request, state, link?.permalink ?? null);
  if (ref) {
    await calls.must(slack, 'chat.postMessage', (c) =>
      c.chat.postMessage({ channel: ref.channel, thread_ts: ref.ts, ...notice }),
    );
  }
  if (channel) await calls.must(slack, 'chat.postMessage', (c) => c.chat.postMessage({ channel, ...notice }));
}

export function createSlackActivities({ slack, metrics, updateQueue }: SlackActivityDeps) {
  const ctx: Ctx = {
    slack,
    calls: slackCalls(metrics),
    queue: updateQueue ? new SlackUpdateQueue(metrics.slackUpdateQueueDepth) : null,
    hint: updateQueue ? { coalesceMs: updateQueue.coalesceMs } : {},
  };
  const activities = {
    postRequestMessage: (input: MessageInput) => postRequestMessage(ctx, input),
    updateRequestMessage: (input: MessageInput & { ref: SlackRef }) => updateRequestMessage(ctx, input),
    postParamsThread: (input: MessageInput & { ref: SlackRef }) => postParamsThread(ctx, input),
    tellRefusal: (notice: RefusalNotice) => tellRefusal(ctx, notice),
    postEscalationNotice: (input: MessageInput & { ref: SlackRef | null }) => postEscalationNotice(ctx, input),
  };
  return activities satisfies SlackActivityContract;
}

export type SlackActivities = ReturnType<typeof createSlackActivities>;

interface SlackishError {
  code?: string;
  data?: { error?: string };
  retryAfter?: number;
  statusCode?: number;
}

const asFailure = (err: unknown): unknown =>
  err instanceof Refused ? ApplicationFailure.nonRetryable(err.message, `slack_${err.code}`) : err;

/** A WebClient error as what to do about it: 429 honours Retry-After, refusals are `Refused`, the rest is retried. */
function classify(method: string, err: unknown, metrics: Metrics): Error {
  const e = err as SlackishError;
  if (e.code === 'slack_webapi_rate_limited_error') {
    metrics.slackApiCalls.inc({ method, outcome: 'rate_limited' });
    const retryAfterMs = Math.max(1, e.retryAfter ?? 1) * 1000;
    // The delay goes in the details too: a local activity's failure reaches the workflow without nextRetryDelay,
    // and the workflow waits it out before the normal activity takes over (workflows/activities.ts).
    return ApplicationFailure.create({
      type: 'slack_rate_limited',
      message: `${method} rate limited by Slack`,
      nextRetryDelay: retryAfterMs,
      details: [{ retryAfterMs }],
    });
  }
  metrics.slackApiCalls.inc({ method, outcome: 'error' });
  const slackError = e.data?.error;
  if (slackError && PERMANENT.has(slackError)) return new Refused(method, slackError);
  return ApplicationFailure.retryable(`${method} failed: ${slackError ?? (err as Error).message}`, 'slack_unavailable');
}
