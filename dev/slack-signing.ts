/**
 * Act as Slack towards our interactivity endpoint: block_actions payloads shaped like the ones Slack sends, encoded
 * the way Slack does (`payload=<JSON>` form body) and signed with the v0 scheme. Shared by the tests, the dev
 * walkthrough and the load harness.
 */
import { createHmac, randomBytes, randomInt } from 'node:crypto';
import { FAKE_BOT, FAKE_TEAM } from './fake-slack.js';

export const INTERACTIONS_PATH = '/api/slack/interactions';
export const SLACK_USER_AGENT = 'Slackbot 1.0 (+https://api.slack.com/robots)';
/** The legacy verification token Slack still puts in every payload; we verify signatures, never this. */
export const VERIFICATION_TOKEN = 'fakeVerificationToken0001';

export interface SlackSignedHeaders {
  'x-slack-signature': string;
  'x-slack-request-timestamp': string;
  'content-type': string;
}

export interface SlackUser {
  id: string;
  username: string;
  name: string;
  team_id: string;
}

export interface ButtonAction {
  action_id: string;
  block_id: string;
  text: { type: 'plain_text'; text: string; emoji: boolean };
  value: string;
  type: 'button';
  action_ts: string;
}

export interface BlockActionPayload {
  type: 'block_actions';
  user: SlackUser;
  api_app_id: string;
  token: string;
  container: { type: 'message'; message_ts: string; channel_id: string; is_ephemeral: false };
  trigger_id: string;
  team: { id: string; domain: string };
  enterprise: null;
  is_enterprise_install: false;
  channel: { id: string; name: string };
  message: Record<string, unknown> & { ts: string; text: string; blocks: unknown[] };
  state: { values: Record<string, unknown> };
  response_url: string;
  actions: [ButtonAction];
}

export interface BlockActionOptions {
  actionId: string;
  value: string;
  userId: string;
  userName?: string;
  channelId?: string;
  messageTs?: string;
  triggerId?: string;
  responseUrl?: string;
  blockId?: string;
  buttonText?: string;
  /** The blocks of the message the button sits in; defaults to a section plus an actions block with the button. */
  messageBlocks?: unknown[];
  messageText?: string;
}

export const nowSec = (): number => Math.floor(Date.now() / 1000);
export const digits = (n: number): string => Array.from({ length: n }, () => randomInt(10)).join('');

/** Slack's `seconds.micros` timestamp format, e.g. `1732712345.000100`. */
function slackTs(): string {
  const micros = Date.now() * 1000 + randomInt(1000);
  return `${String(micros).slice(0, -6)}.${String(micros).slice(-6)}`;
}

/** Shaped like Slack's (`<digits>.<digits>.<hex>`), random so each one is single-use-fresh for views.open. */
export function newTriggerId(): string {
  return `${digits(13)}.${digits(11)}.${randomBytes(16).toString('hex')}`;
}

function newResponseUrl(): string {
  return `https://hooks.slack.com/actions/${FAKE_TEAM.id}/${digits(13)}/${randomBytes(12).toString('base64url')}`;
}

export function slackUser(userId: string, userName?: string): SlackUser {
  const name = userName ?? `user.${userId.toLowerCase()}`;
  return { id: userId, username: name, name, team_id: FAKE_TEAM.id };
}

export function signSlackRequest(secret: string, rawBody: string, timestampSec = nowSec()): SlackSignedHeaders {
  const digest = createHmac('sha256', secret).update(`v0:${timestampSec}:${rawBody}`).digest('hex');
  return {
    'x-slack-signature': `v0=${digest}`,
    'x-slack-request-timestamp': String(timestampSec),
    'content-type': 'application/x-www-form-urlencoded',
  };
}

const BUTTON_TEXT: Record<string, string> = { approve: 'Approve', deny: 'Deny', approve_edit: 'Approve with edits' };

function defaultButtonText(actionId: string): string {
  const persona = /^persona_ack:(.+)$/.exec(actionId)?.[1];
  return persona ? `${persona}: acknowledge` : (BUTTON_TEXT[actionId] ?? actionId);
}

function buttonBlocks(opts: BlockActionOptions, blockId: string, text: string, summary: string): unknown[] {
  const button = { type: 'button', action_id: opts.actionId, text: { type: 'plain_text', text, emoji: true } };
  return [
    { type: 'section', block_id: 'summary', text: { type: 'mrkdwn', text: summary } },
    { type: 'actions', block_id: blockId, elements: [{ ...button, value: opts.value }] },
  ];
}

export function blockActionPayload(opts: BlockActionOptions): BlockActionPayload {
  const channelId = opts.channelId ?? 'C0FAKECHAN';
  const messageTs = opts.messageTs ?? slackTs();
  const blockId = opts.blockId ?? 'decision';
  const text = opts.buttonText ?? defaultButtonText(opts.actionId);
  const messageText = opts.messageText ?? 'Approval requested';
  return {
    type: 'block_actions',
    user: slackUser(opts.userId, opts.userName),
    api_app_id: FAKE_BOT.appId,
    token: VERIFICATION_TOKEN,
    container: { type: 'message', message_ts: messageTs, channel_id: channelId, is_ephemeral: false },
    trigger_id: opts.triggerId ?? newTriggerId(),
    team: { id: FAKE_TEAM.id, domain: FAKE_TEAM.domain },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: channelId, name: 'approvals' },
    message: {
      user: FAKE_BOT.userId,
      type: 'message',
      ts: messageTs,
      bot_id: FAKE_BOT.botId,
      app_id: FAKE_BOT.appId,
      text: messageText,
      team: FAKE_TEAM.id,
      blocks: opts.messageBlocks ?? buttonBlocks(opts, blockId, text, messageText),
    },
    state: { values: {} },
    response_url: opts.responseUrl ?? newResponseUrl(),
    actions: [
      {
        action_id: opts.actionId,
        block_id: blockId,
        text: { type: 'plain_text', text, emoji: true },
        value: opts.value,
        type: 'button',
        action_ts: slackTs(),
      },
    ],
  };
}

/** Slack posts interactions as a form with a single `payload` field holding the JSON. */
export function formBody(payload: object): string {
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}
