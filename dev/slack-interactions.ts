/**
 * Act as Slack towards our interactivity endpoint, beyond block_actions (dev/slack-signing.ts): view_submission
 * payloads shaped like Slack's, and sending a signed interaction as Slack posts it. Shared by the tests and the
 * dev walkthrough.
 */
import { randomBytes } from 'node:crypto';
import { FAKE_BOT, FAKE_TEAM } from './fake-slack.js';
import {
  digits,
  formBody,
  INTERACTIONS_PATH,
  newTriggerId,
  nowSec,
  signSlackRequest,
  SLACK_USER_AGENT,
  slackUser,
  VERIFICATION_TOKEN,
  type SlackSignedHeaders,
  type SlackUser,
} from './slack-signing.js';

export type InputValues = Record<string, Record<string, { type: 'plain_text_input'; value: string | null }>>;

export interface ViewSubmissionOptions {
  userId: string;
  userName?: string;
  callbackId: string;
  /** Sent as-is if a string, JSON-encoded otherwise (Slack only carries strings). */
  privateMetadata: string | object;
  values: InputValues;
  viewId?: string;
  title?: string;
}

export interface ViewSubmissionPayload {
  type: 'view_submission';
  team: { id: string; domain: string };
  user: SlackUser;
  api_app_id: string;
  token: string;
  trigger_id: string;
  view: Record<string, unknown> & {
    id: string;
    callback_id: string;
    private_metadata: string;
    state: { values: InputValues };
  };
  response_urls: unknown[];
  is_enterprise_install: false;
  enterprise: null;
}

export interface SendInteractionOptions {
  timestampSec?: number;
  /** Replaces the computed signature, to forge requests. */
  signature?: string;
  /** Sent instead of `formBody(payload)`; signed as sent unless `signature` is also given. */
  rawBodyOverride?: string;
  /** Extra or replacement headers. */
  headers?: Record<string, string>;
  /** Headers to leave out, e.g. `['x-slack-signature']`. */
  omitHeaders?: string[];
}

export interface InteractionResponse {
  status: number;
  body: string;
  json?: unknown;
  headers: Record<string, string>;
}

/** One input block per (block_id, action_id) in `values`, as our override modal declares them. */
function inputBlocks(values: InputValues): unknown[] {
  return Object.entries(values).flatMap(([blockId, actions]) =>
    Object.keys(actions).map((actionId) => ({
      type: 'input',
      block_id: blockId,
      label: { type: 'plain_text', text: blockId, emoji: true },
      optional: false,
      dispatch_action: false,
      element: { type: 'plain_text_input', action_id: actionId, dispatch_action_config: {} },
    })),
  );
}

export function viewSubmissionPayload(opts: ViewSubmissionOptions): ViewSubmissionPayload {
  const viewId = opts.viewId ?? `V${digits(10)}`;
  const metadata =
    typeof opts.privateMetadata === 'string' ? opts.privateMetadata : JSON.stringify(opts.privateMetadata);
  return {
    type: 'view_submission',
    team: { id: FAKE_TEAM.id, domain: FAKE_TEAM.domain },
    user: slackUser(opts.userId, opts.userName),
    api_app_id: FAKE_BOT.appId,
    token: VERIFICATION_TOKEN,
    trigger_id: newTriggerId(),
    view: {
      id: viewId,
      team_id: FAKE_TEAM.id,
      type: 'modal',
      blocks: inputBlocks(opts.values),
      private_metadata: metadata,
      callback_id: opts.callbackId,
      state: { values: opts.values },
      hash: `${nowSec()}.${randomBytes(4).toString('hex')}`,
      title: { type: 'plain_text', text: opts.title ?? 'Approve with edits', emoji: true },
      clear_on_close: false,
      notify_on_close: false,
      close: { type: 'plain_text', text: 'Cancel', emoji: true },
      submit: { type: 'plain_text', text: 'Approve', emoji: true },
      previous_view_id: null,
      root_view_id: viewId,
      app_id: FAKE_BOT.appId,
      external_id: '',
      app_installed_team_id: FAKE_TEAM.id,
      bot_id: FAKE_BOT.botId,
    },
    response_urls: [],
    is_enterprise_install: false,
    enterprise: null,
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function requestHeaders(signed: SlackSignedHeaders, opts: SendInteractionOptions): Record<string, string> {
  const headers: Record<string, string> = { ...signed, 'user-agent': SLACK_USER_AGENT, ...opts.headers };
  if (opts.signature !== undefined) headers['x-slack-signature'] = opts.signature;
  for (const name of opts.omitHeaders ?? []) delete headers[name.toLowerCase()];
  return headers;
}

/** POST a signed interaction to `<baseUrl>/api/slack/interactions`, as Slack would. */
export async function sendInteraction(
  baseUrl: string,
  secret: string,
  payload: object,
  opts: SendInteractionOptions = {},
): Promise<InteractionResponse> {
  const body = opts.rawBodyOverride ?? formBody(payload);
  const headers = requestHeaders(signSlackRequest(secret, body, opts.timestampSec), opts);
  const res = await fetch(`${baseUrl.replace(/\/+$/, '')}${INTERACTIONS_PATH}`, { method: 'POST', headers, body });
  const text = await res.text();
  const json = parseJson(text);
  return {
    status: res.status,
    body: text,
    ...(json === undefined ? {} : { json }),
    headers: Object.fromEntries(res.headers.entries()),
  };
}
