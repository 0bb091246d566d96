/**
 * `npm run slack:check`: is this Slack app set up the way the service needs it? With the service's own environment
 * (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_APP_TOKEN, SLACK_API_URL, POLICY_PATH) it checks, and says how to fix:
 * the bot token (auth.test), its scopes (the `x-oauth-scopes` header Slack sends with every answer), each channel the
 * policy routes to (exists, not archived, the bot is in it: conversations.info), the signing secret for HTTP
 * interactivity, and the app-level token for Socket Mode (apps.connections.open). Exit 0 when nothing failed, 1 else.
 * docs/slack-setup.md walks through the setup it checks.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LogLevel, WebClient } from '@slack/web-api';
import { ConfigError, loadConfig, type Config } from '../config/env.js';
import { loadPolicyFile, PolicyError } from '../domain/policy-loader.js';
import type { Policy } from '../domain/policy-schema.js';

/** The bot scopes of deploy/slack/manifest-*.yaml, what each is for, and whether the service fails without it. */
export const BOT_SCOPES = [
  { scope: 'chat:write', needed: true, why: 'post, update and thread the request messages, tell refused clicks' },
  { scope: 'channels:read', needed: false, why: 'slack:check reads public channels (conversations.info)' },
  { scope: 'groups:read', needed: false, why: 'slack:check reads private channels (conversations.info)' },
] as const;

export type Level = 'ok' | 'warn' | 'fail';
export interface Finding {
  level: Level;
  text: string;
}

export interface CheckInput {
  config: Pick<Config, 'SLACK_BOT_TOKEN' | 'SLACK_SIGNING_SECRET' | 'SLACK_APP_TOKEN' | 'SLACK_API_URL'>;
  policy: Policy | null;
}

type SlackishError = { code?: string; data?: { error?: string; needed?: string }; message?: string };
const slackError = (err: unknown): string => {
  const e = err as SlackishError;
  return e.data?.error ?? (e.code === 'slack_webapi_request_error' ? 'unreachable' : (e.message ?? String(err)));
};

/** What to do about what Slack answered for a token. */
const TOKEN_ADVICE: Record<string, string> = {
  invalid_auth: 'the token is not valid: copy it again (OAuth & Permissions → Bot User OAuth Token)',
  not_authed: 'no token reached Slack',
  account_inactive: 'the token belongs to a deactivated app or workspace: reinstall the app',
  token_revoked: 'the token was revoked (the app was uninstalled?): reinstall the app and copy the new token',
  token_expired: 'the token expired: token rotation is on; turn it off in OAuth & Permissions or refresh the token',
  not_allowed_token_type: 'this is not the kind of token this setting takes',
};

export async function slackCheck({ config, policy }: CheckInput): Promise<Finding[]> {
  const out: Finding[] = [];
  const say = (level: Level, text: string) => out.push({ level, text });
  const options = {
    ...(config.SLACK_API_URL ? { slackApiUrl: config.SLACK_API_URL } : {}),
    retryConfig: { retries: 0 },
    logLevel: LogLevel.ERROR,
  };
  const token = config.SLACK_BOT_TOKEN;
  if (!token) {
    say('fail', 'SLACK_BOT_TOKEN is not set: install the app, then copy OAuth & Permissions → Bot User OAuth Token');
  } else if (!token.startsWith('xoxb-')) {
    say('fail', 'SLACK_BOT_TOKEN is not a bot token (xoxb-…): use the Bot User OAuth Token, not a user token');
  } else {
    await checkBot(new WebClient(token, options), policy, say);
  }
  checkInteractivity(config, say);
  if (config.SLACK_APP_TOKEN) await checkAppToken(new WebClient(config.SLACK_APP_TOKEN, options), say);
  return out;
}

async function checkBot(web: WebClient, policy: Policy | null, say: (l: Level, t: string) => void): Promise<void> {
  let scopes: string[];
  try {
    const auth = await web.auth.test();
    say('ok', `bot token: @${auth.user} (${auth.user_id}) in ${auth.team} (${auth.team_id})`);
    scopes = auth.response_metadata?.scopes ?? [];
  } catch (err) {
    const code = slackError(err);
    const advice = TOKEN_ADVICE[code] ?? (code === 'unreachable' ? 'check SLACK_API_URL and the network' : code);
    say('fail', `bot token: auth.test failed (${code}): ${advice}`);
    return;
  }
  for (const { scope, needed, why } of BOT_SCOPES) {
    if (scopes.includes(scope)) continue;
    const fix = 'add it in OAuth & Permissions → Scopes (or from deploy/slack/manifest-*.yaml) and reinstall the app';
    say(needed ? 'fail' : 'warn', `bot token lacks scope ${scope} (${why}): ${fix}`);
  }
  const extra = scopes.filter((s) => !BOT_SCOPES.some((b) => b.scope === s));
  if (extra.length > 0) say('warn', `bot token has scopes the service does not use: ${extra.join(', ')} (remove them)`);
  if (scopes.includes('chat:write')) say('ok', `bot token scopes: ${scopes.join(', ')}`);
  if (policy) await checkChannels(web, policy, say);
}

/** Every channel the policy posts to, with the settings that name it. */
export function policyChannels(policy: Policy): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const add = (channel: string | undefined, where: string) => {
    if (channel) found.set(channel, [...(found.get(channel) ?? []), where]);
  };
  add(policy.routing.defaultChannel, 'routing.defaultChannel');
  for (const [name, action] of Object.entries(policy.actions)) {
    add(action.channel, `actions.${name}.channel`);
    add(action.escalation?.escalationChannel, `actions.${name}.escalation.escalationChannel`);
  }
  return found;
}

async function checkChannels(web: WebClient, policy: Policy, say: (l: Level, t: string) => void): Promise<void> {
  const channels = policyChannels(policy);
  if (channels.size === 0 && !policy.routing.dmFallbackUser) {
    say('warn', 'the policy routes requests nowhere: set routing.defaultChannel (or an action channel)');
  }
  for (const [channel, where] of channels) {
    const named = `${channel} (${where.join(', ')})`;
    if (channel.startsWith('#')) {
      say('warn', `${named}: a channel name; Slack takes it but it breaks on a rename: use the channel id (C…)`);
      continue;
    }
    try {
      const { channel: info } = await web.conversations.info({ channel });
      const label = info?.name ? `#${info.name}` : channel;
      if (info?.is_archived) say('fail', `${named}: ${label} is archived: unarchive it or route to another channel`);
      else if (!info?.is_member) say('fail', `${named}: the bot is not in ${label}: invite it (/invite @Slack Guard)`);
      else say('ok', `${named}: ${label}, the bot is a member`);
    } catch (err) {
      const code = slackError(err);
      if (code === 'missing_scope') {
        say('warn', `${named}: not checked, the token lacks ${(err as SlackishError).data?.needed ?? 'a read scope'}`);
      } else if (code === 'channel_not_found') {
        say('fail', `${named}: no such channel (or a private one without the bot): use the id from its "Copy link"`);
      } else {
        say('fail', `${named}: conversations.info failed (${code})`);
      }
    }
  }
  const dm = policy.routing.dmFallbackUser;
  if (dm && !/^[UW][A-Z0-9]+$/.test(dm)) {
    say('warn', `routing.dmFallbackUser ${dm} does not look like a Slack user id (U…): DMs to it will fail`);
  }
}

function checkInteractivity(config: CheckInput['config'], say: (l: Level, t: string) => void): void {
  if (config.SLACK_APP_TOKEN) {
    say('ok', 'interactions arrive over Socket Mode (SLACK_APP_TOKEN set): no public URL needed');
  } else if (!config.SLACK_SIGNING_SECRET) {
    say('fail', 'SLACK_SIGNING_SECRET is not set: copy Basic Information → App Credentials → Signing Secret');
  } else {
    say('ok', 'SLACK_SIGNING_SECRET is set; Slack must reach https://<host>/api/slack/interactions');
  }
}

async function checkAppToken(web: WebClient, say: (l: Level, t: string) => void): Promise<void> {
  try {
    await web.apps.connections.open();
    say('ok', 'app-level token: apps.connections.open answers a Socket Mode URL');
  } catch (err) {
    const code = slackError(err);
    const advice =
      code === 'not_allowed_token_type'
        ? 'SLACK_APP_TOKEN must be an app-level token (Basic Information → App-Level Tokens, scope connections:write)'
        : (TOKEN_ADVICE[code] ?? code);
    say('fail', `app-level token: apps.connections.open failed (${code}): ${advice}`);
  }
}

const MARK: Record<Level, string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' };

async function main(): Promise<number> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    return 1;
  }
  let policy: Policy | null = null;
  try {
    policy = (await loadPolicyFile(config.POLICY_PATH)).policy;
  } catch (err) {
    if (!(err instanceof PolicyError) && (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    console.log(`warn  ${config.POLICY_PATH}: not loaded (${(err as Error).message}); channels not checked`);
  }
  const findings = await slackCheck({ config, policy });
  for (const f of findings) console.log(`${MARK[f.level]}  ${f.text}`);
  const failed = findings.filter((f) => f.level === 'fail').length;
  console.log(failed === 0 ? 'slack:check passed' : `slack:check: ${failed} problem(s) to fix`);
  return failed === 0 ? 0 : 1;
}

function isMainModule(): boolean {
  const entry = process.argv[1];
  return entry !== undefined && realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
}

if (isMainModule()) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
