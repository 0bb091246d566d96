/**
 * Connecting a real workspace (issue 14 item 6): the app manifests ask for exactly the scopes the code's Web API calls
 * need, and `npm run slack:check` (scripts/slack-check.ts) finds and explains each setup mistake, against the fake
 * Slack answering auth.test, conversations.info and apps.connections.open with Slack's headers and errors.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { FAKE_BOT_SCOPES, startFakeSlack, type FakeSlack } from '../../dev/fake-slack.js';
import { INTERACTIONS_PATH } from '../../dev/slack-signing.js';
import { policySchema, type Policy } from '../../domain/policy-schema.js';
import { BOT_SCOPES, slackCheck, type Finding } from '../../scripts/slack-check.js';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');
type Manifest = {
  oauth_config: { scopes: { bot: string[]; user?: string[] } };
  settings: { interactivity: { is_enabled: boolean; request_url?: string }; socket_mode_enabled: boolean };
  features: { app_home: { messages_tab_enabled: boolean } };
};
const manifest = (name: string) => parse(read(`deploy/slack/${name}`)) as Manifest;

/** Web API methods production code calls (`client.chat.postMessage(`...), from its source. */
function methodsCalled(): string[] {
  const files = (dir: string): string[] =>
    readdirSync(join(ROOT, dir)).flatMap((f) => {
      const path = join(dir, f);
      return statSync(join(ROOT, path)).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
    });
  const sources = ['activities', 'slack', 'api', 'worker', 'scripts'].flatMap(files).map(read).join('\n');
  return [...new Set([...sources.matchAll(/\.(auth|chat|views|conversations|apps|users)\.(\w+(?:\.\w+)?)\(/g)])]
    .map((m) => `${m[1]}.${m[2]}`)
    .filter((m, i, all) => all.indexOf(m) === i)
    .sort();
}

/** Scope each method needs of a bot token ("Required scopes" on https://api.slack.com/methods/<method>). */
const SCOPE_OF: Record<string, string | null> = {
  'auth.test': null,
  'chat.postMessage': 'chat:write',
  'chat.update': 'chat:write',
  'chat.postEphemeral': 'chat:write',
  'chat.getPermalink': null,
  'views.open': null,
  'conversations.info': 'channels:read', // and groups:read for private channels
  'apps.connections.open': null, // app-level token, connections:write
};

describe('app manifests', () => {
  test('the code calls only methods whose scopes are known here', () => {
    expect(methodsCalled().filter((m) => !(m in SCOPE_OF))).toEqual([]);
  });

  test.each(['manifest-http.yaml', 'manifest-socket-mode.yaml'])(
    '%s asks for exactly the scopes those methods need, and what the fake grants',
    (file) => {
      const scopes = manifest(file).oauth_config.scopes;
      const needed = new Set(
        methodsCalled()
          .map((m) => SCOPE_OF[m])
          .filter((s): s is string => Boolean(s)),
      );
      needed.add('groups:read');
      expect([...scopes.bot].sort()).toEqual([...needed].sort());
      expect(scopes.user).toBeUndefined();
      expect([...scopes.bot].sort()).toEqual([...FAKE_BOT_SCOPES].sort());
      expect(BOT_SCOPES.map((s) => s.scope).sort()).toEqual([...scopes.bot].sort());
      expect(manifest(file).features.app_home.messages_tab_enabled).toBe(true);
    },
  );

  test('HTTP interactivity posts to the service route; Socket Mode has no request URL', () => {
    const http = manifest('manifest-http.yaml').settings;
    expect(http.socket_mode_enabled).toBe(false);
    expect(new URL(http.interactivity.request_url!).pathname).toBe(INTERACTIONS_PATH);
    const socket = manifest('manifest-socket-mode.yaml').settings;
    expect(socket).toMatchObject({ socket_mode_enabled: true, interactivity: { is_enabled: true } });
    expect(socket.interactivity.request_url).toBeUndefined();
  });
});

describe('npm run slack:check', () => {
  let fake: FakeSlack;
  beforeAll(async () => {
    fake = await startFakeSlack();
  });
  afterEach(() => fake.reset());
  afterAll(() => fake.close());

  const policy = (routing: Record<string, unknown>, actions: Record<string, unknown> = {}): Policy =>
    policySchema.parse({ routing, actions });
  const check = (
    env: Record<string, string | undefined>,
    p: Policy | null = policy({ defaultChannel: 'C0APPROVALS' }),
  ) =>
    slackCheck({
      config: {
        SLACK_API_URL: fake.url,
        SLACK_BOT_TOKEN: 'xoxb-test',
        SLACK_SIGNING_SECRET: 'secret',
        SLACK_APP_TOKEN: undefined,
        ...env,
      },
      policy: p,
    });
  const failures = (f: Finding[]) => f.filter((x) => x.level === 'fail').map((x) => x.text);
  const warnings = (f: Finding[]) => f.filter((x) => x.level === 'warn').map((x) => x.text);

  test('a good setup passes: token, scopes read from x-oauth-scopes, channels with the bot', async () => {
    const found = await check(
      {},
      policy(
        { defaultChannel: 'C0APPROVALS' },
        {
          deploy: {
            approvers: { allowSlackIds: ['U0ALICE'] },
            channel: 'G0PRIVATE',
            escalation: { escalateBeforeSec: 60, escalationChannel: 'C0ESC' },
          },
        },
      ),
    );
    expect(failures(found)).toEqual([]);
    expect(warnings(found)).toEqual([]);
    expect(found.map((f) => f.text)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^bot token: @slack-guard \(U0FAKEBOT\) in Fake Workspace/),
        'bot token scopes: chat:write, channels:read, groups:read',
        'C0APPROVALS (routing.defaultChannel): #c0approvals, the bot is a member',
        'G0PRIVATE (actions.deploy.channel): #g0private, the bot is a member',
        'C0ESC (actions.deploy.escalation.escalationChannel): #c0esc, the bot is a member',
      ]),
    );
    expect(fake.callsOf('conversations.info')).toHaveLength(3);
  });

  test.each<[string, (f: FakeSlack) => void, Record<string, string | undefined>, RegExp]>([
    ['no bot token', () => {}, { SLACK_BOT_TOKEN: undefined }, /SLACK_BOT_TOKEN is not set/],
    ['a user token', () => {}, { SLACK_BOT_TOKEN: 'xoxp-1' }, /not a bot token/],
    ['a revoked token', (f) => f.failNext('auth.test', { ok: false, error: 'token_revoked' }), {}, /reinstall/],
    ['no chat:write', (f) => f.setScopes(['channels:read', 'groups:read']), {}, /lacks scope chat:write/],
    ['a missing channel', (f) => f.setChannel('C0APPROVALS', { exists: false }), {}, /no such channel/],
    ['an archived channel', (f) => f.setChannel('C0APPROVALS', { archived: true }), {}, /is archived/],
    ['a channel without the bot', (f) => f.setChannel('C0APPROVALS', { member: false }), {}, /\/invite @Slack Guard/],
    ['no signing secret (HTTP)', () => {}, { SLACK_SIGNING_SECRET: undefined }, /SLACK_SIGNING_SECRET is not set/],
    ['a bot token as app token', () => {}, { SLACK_APP_TOKEN: 'xoxb-test' }, /must be an app-level token/],
  ])('%s fails, saying how to fix it', async (_name, arrange, env, message) => {
    arrange(fake);
    const found = await check(env);
    expect(failures(found)).toEqual([expect.stringMatching(message)]);
  });

  test('missing read scopes and extra scopes warn; channels then go unchecked', async () => {
    fake.setScopes(['chat:write', 'users:read']);
    const found = await check({});
    expect(failures(found)).toEqual([]);
    expect(warnings(found)).toEqual([
      expect.stringContaining('lacks scope channels:read'),
      expect.stringContaining('lacks scope groups:read'),
      'bot token has scopes the service does not use: users:read (remove them)',
      expect.stringContaining('C0APPROVALS (routing.defaultChannel): not checked, the token lacks channels:read'),
    ]);
  });

  test('Socket Mode: an app-level token opens a connection URL; no signing secret needed', async () => {
    const found = await check({ SLACK_APP_TOKEN: 'xapp-1-A0FAKEAPP-1-abc', SLACK_SIGNING_SECRET: undefined });
    expect(failures(found)).toEqual([]);
    expect(found.map((f) => f.text)).toContain('app-level token: apps.connections.open answers a Socket Mode URL');
  });

  test('a channel given by name is flagged, not checked', async () => {
    const found = await check({}, policy({ defaultChannel: '#approvals' }));
    expect(warnings(found)).toEqual([expect.stringMatching(/^#approvals \(routing.defaultChannel\): a channel name/)]);
    expect(fake.callsOf('conversations.info')).toEqual([]);
  });

  test('the CLI reads the service environment, prints each finding and exits 1 on a problem', async () => {
    // Asynchronously: the fake Slack answering the child runs in this process.
    const run = promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/slack-check.ts'], {
      cwd: ROOT,
      env: { ...process.env, SLACK_API_URL: fake.url, SLACK_BOT_TOKEN: 'xoxb-x', SLACK_SIGNING_SECRET: '' },
    });
    const res = (await run.catch((err: unknown) => err)) as { code?: number; stdout: string };
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/^ok {4}bot token: @slack-guard/m);
    expect(res.stdout).toMatch(/^ok {4}C_APPROVALS \(routing.defaultChannel\): #c_approvals, the bot is a member$/m);
    expect(res.stdout).toMatch(/^FAIL {2}SLACK_SIGNING_SECRET is not set/m);
    expect(res.stdout).toMatch(/slack:check: 1 problem\(s\) to fix$/m);
  });
});
