/**
 * A fake Slack Web API: a real HTTP server on loopback that speaks the wire protocol the @slack/web-api WebClient
 * uses (`POST /api/<method>`, form or JSON bodies, bearer token, `{ok, error}` envelopes, 429 + Retry-After).
 * Tests point `slackApiUrl` at `fake.url`, then assert on the recorded calls and the message store, and inject
 * faults to exercise retries. Runnable on its own: `tsx dev/fake-slack.ts --port 3999`.
 *
 * As strict as Slack where it matters: blocks and views are checked against Slack's documented Block Kit limits
 * (domain/slack-limits.ts, the same checker the renderers' property tests use) and refused whole, with Slack's own
 * answer shapes; tokens carry scopes (`x-oauth-scopes`), and methods need theirs. The workspace is lenient by
 * default (any channel id exists and has the bot in it) until a test declares otherwise (`setChannel`, `setUser`).
 * Every refusal is recorded: `unexpectedRefusals()` lists those no test asked for (faults injected, state declared),
 * so a suite can assert the service never sent Slack something it refuses.
 */
import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FakeSocketModeServer, type FakeSocketMode } from './fake-socket-mode.js';
import {
  blocksTextLength,
  describeViolation,
  LIMITS,
  messageViolations,
  viewViolations,
} from '../domain/slack-limits.js';

/** The workspace and bot identity the fake answers with (auth.test, message authorship, view ownership). */
export const FAKE_TEAM = { id: 'T0FAKETEAM', domain: 'fake-workspace', name: 'Fake Workspace' } as const;
export const FAKE_BOT = { userId: 'U0FAKEBOT', botId: 'B0FAKEBOT', appId: 'A0FAKEAPP', name: 'slack-guard' } as const;
/** The bot token's scopes unless a test sets others: those deploy/slack/manifest-*.yaml ask for. */
export const FAKE_BOT_SCOPES = ['chat:write', 'channels:read', 'groups:read'] as const;

export type SlackArgs = Record<string, unknown>;

export interface FakeSlackCall {
  method: string;
  /** Arguments as Slack reads them: form fields stay strings, JSON-valued fields (blocks, view...) are parsed. */
  args: SlackArgs;
  at: number;
  status: number;
  /** Token the call carried (bearer header, or `token` form field); kept out of `args`. */
  token?: string;
  /** What the fake answered: the JSON body, or the text of a 5xx. */
  response: unknown;
  /** The refusal was asked for: a fault injected (`failNext`, `failFor`) or state a test declared (`setChannel`...). */
  injected?: true;
}

export interface FakeMessage {
  channel: string;
  ts: string;
  text: string;
  blocks: unknown[];
  attachments?: unknown[];
  thread_ts?: string;
  updates: number;
}

export type FakeView = SlackArgs & { id: string; hash: string };

export type SlackFault =
  { status: 429; retryAfterSec: number } | { status: 500 | 502 | 503 } | { ok: false; error: string };

export interface FakeSlackOptions {
  port?: number;
  host?: string;
  /** Called after each recorded call (the CLI logs with it). */
  onCall?: (call: FakeSlackCall) => void;
  /** Scopes of bot tokens (default FAKE_BOT_SCOPES). */
  scopes?: readonly string[];
  /**
   * Every Web API reply is sent this many milliseconds after its request was read (default 0). Real Slack answers in
   * tens to hundreds of milliseconds; the load harness uses it (`--slack-latency`) so that what waits for Slack shows.
   */
  latencyMs?: number;
}

/** A conversation as a test declares it; channels nobody declared exist, are public and have the bot as a member. */
export interface FakeChannelState {
  exists?: boolean;
  name?: string;
  private?: boolean;
  archived?: boolean;
  /** Whether the bot is in it: posting to a channel without the bot is `not_in_channel`. */
  member?: boolean;
}

export interface FakeSlack {
  /** Base URL ending in `/api/`, as WebClient's `slackApiUrl` expects. */
  readonly url: string;
  readonly calls: FakeSlackCall[];
  /** Keyed `channel:ts`. */
  readonly messages: Map<string, FakeMessage>;
  readonly views: Map<string, FakeView>;
  callsOf(method: string): FakeSlackCall[];
  threadReplies(channel: string, ts: string): FakeMessage[];
  waitFor(predicate: (call: FakeSlackCall) => boolean, timeoutMs?: number): Promise<FakeSlackCall>;
  /** Fail the next `times` calls of `method` ('*' = any method) before they are handled. */
  failNext(method: string, fault: SlackFault, times?: number): void;
  /** Fail every call of `method` for the next `durationMs`. */
  failFor(method: string, fault: SlackFault, durationMs: number): void;
  /** Declares a conversation (by id, e.g. `C0123`): missing, archived, private, without the bot... */
  setChannel(id: string, state: FakeChannelState): void;
  /** Declares a user missing (a DM to them is `channel_not_found`, as Slack answers for an unknown id). */
  setUser(id: string, state: { exists: boolean }): void;
  /** The scopes bot tokens carry from now on. */
  setScopes(scopes: readonly string[]): void;
  /** Refusals no test asked for: a call the service made that Slack would refuse. */
  unexpectedRefusals(): FakeSlackCall[];
  /** The Socket Mode WebSocket endpoint (connect through apps.connections.open with an `xapp-` token). */
  readonly socket: FakeSocketMode;
  /** Forget calls, messages, views, used triggers, declared state, set scopes and pending faults (ts values keep
   * increasing). */
  reset(): void;
  close(): Promise<void>;
}

interface Reply {
  status: number;
  body: SlackArgs | string;
  headers?: Record<string, string>;
  /** Refused because of state a test declared. */
  declared?: true;
}

interface QueuedFault {
  method: string;
  fault: SlackFault;
  remaining: number;
}

interface TimedFault {
  method: string;
  fault: SlackFault;
  until: number;
}

/** Fields Slack accepts as JSON-encoded strings in form bodies, with the error it gives when they don't parse. */
const JSON_FIELDS: Record<string, string> = {
  blocks: 'invalid_blocks_format',
  attachments: 'invalid_attachments',
  view: 'invalid_arguments',
  metadata: 'invalid_metadata_format',
};
/** chat.postMessage: "The text field ... will be truncated" past 40,000 characters; longer is `msg_too_long`. */
const MAX_TEXT = 40_000;

class SlackArgError extends Error {}

const ok = (body: SlackArgs = {}): Reply => ({ status: 200, body: { ok: true, ...body } });
const fail = (error: string, extra: SlackArgs = {}): Reply => ({ status: 200, body: { ok: false, error, ...extra } });
const missing = (field: string): Reply =>
  fail('invalid_arguments', { response_metadata: { messages: [`[ERROR] missing required field: ${field}`] } });
const declared = (reply: Reply): Reply => ({ ...reply, declared: true });

/** Non-empty string form of a scalar arg; Slack treats empty as absent. */
function str(value: unknown): string | undefined {
  if (typeof value === 'number') return String(value);
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function isObject(value: unknown): value is SlackArgs {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const nonEmpty = (value: unknown): boolean => Array.isArray(value) && value.length > 0;
const msgKey = (channel: string, ts: string): string => `${channel}:${ts}`;
const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

function faultReply(fault: SlackFault): Reply {
  if ('ok' in fault) return fail(fault.error);
  if (fault.status === 429) {
    return {
      status: 429,
      body: { ok: false, error: 'ratelimited' },
      headers: { 'retry-after': String(fault.retryAfterSec) },
    };
  }
  // Slack's edge answers 5xx with a non-JSON page; WebClient reports the status, not a body.
  return { status: fault.status, body: `${fault.status} upstream error` };
}

/**
 * Slack refuses a message whose blocks break a Block Kit limit as a whole, naming each problem twice (`errors`, and
 * `response_metadata.messages` with an `[ERROR]` prefix), e.g. `{ok:false, error:'invalid_blocks', errors:['must be
 * less than 3001 characters [json-pointer:/blocks/0/text/text]'], response_metadata:{messages:['[ERROR] must be less
 * than 3001 characters [json-pointer:/blocks/0/text/text]']}}`; too much text in all is `msg_blocks_too_long`.
 */
function contentError(args: SlackArgs): Reply | undefined {
  const { blocks } = args;
  if (blocks !== undefined && !Array.isArray(blocks)) return fail('invalid_blocks_format');
  if (Array.isArray(blocks)) {
    const problems = messageViolations(blocks).map(describeViolation);
    if (problems.length > 0) {
      return fail('invalid_blocks', {
        errors: problems,
        response_metadata: { messages: problems.map((m) => `[ERROR] ${m}`) },
      });
    }
    if (blocksTextLength(blocks) > LIMITS.messageBlocksText) return fail('msg_blocks_too_long');
  }
  const text = str(args.text) ?? '';
  if (text.length > MAX_TEXT) return fail('msg_too_long');
  if (!text && !nonEmpty(blocks) && !nonEmpty(args.attachments)) return fail('no_text');
  return undefined;
}

function methodOf(url: string | undefined): string | undefined {
  const match = /^\/api\/([A-Za-z0-9_.]+)\/?$/.exec(new URL(url ?? '/', 'http://fake').pathname);
  return match?.[1];
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function decodeJsonFields(args: SlackArgs): SlackArgs {
  for (const [field, error] of Object.entries(JSON_FIELDS)) {
    const value = args[field];
    if (typeof value !== 'string') continue;
    try {
      args[field] = JSON.parse(value);
    } catch {
      throw new SlackArgError(error);
    }
  }
  return args;
}

function parseJsonBody(raw: string): SlackArgs {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw || '{}');
  } catch {
    throw new SlackArgError('invalid_json');
  }
  if (!isObject(parsed)) throw new SlackArgError('invalid_json');
  return parsed;
}

/** Query-string args count too (Slack reads both); the body wins on conflicts. */
function parseArgsOf(req: IncomingMessage, raw: string): { args: SlackArgs; json: boolean } {
  const query = Object.fromEntries(new URL(req.url ?? '/', 'http://fake').searchParams);
  const json = (req.headers['content-type'] ?? '').startsWith('application/json');
  const body = json ? parseJsonBody(raw) : Object.fromEntries(new URLSearchParams(raw));
  return { args: decodeJsonFields({ ...query, ...body }), json };
}

/** Slack only honours a body `token` for form posts; JSON posts must use the Authorization header. */
function tokenOf(req: IncomingMessage, args: SlackArgs, json: boolean): string | undefined {
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  return bearer ?? (json ? undefined : str(args.token));
}

/** Not a Slack method: `GET /_fake/calls?method=chat.postEphemeral` lists what the fake recorded (tokens left out). */
export const CALLS_PATH = '/_fake/calls';

/** Methods an app-level token (`xapp-`) calls; every other method wants a bot token (`xoxb-`). */
const APP_TOKEN_METHODS = new Set(['apps.connections.open']);

/**
 * The bot scope each method needs ("Required scopes" on https://api.slack.com/methods/<method>); methods missing
 * here need none (auth.test, chat.getPermalink, views.*). conversations.info needs the read scope of the
 * conversation's kind.
 */
function scopeNeeded(method: string, args: SlackArgs): string | undefined {
  if (method.startsWith('chat.') && method !== 'chat.getPermalink') return 'chat:write';
  if (method === 'conversations.open') return 'im:write';
  if (method !== 'conversations.info') return undefined;
  const channel = str(args.channel) ?? '';
  return channel.startsWith('G') ? 'groups:read' : channel.startsWith('D') ? 'im:read' : 'channels:read';
}

type TokenKind = 'bot' | 'app';
const tokenKind = (token: string): TokenKind | undefined =>
  token.startsWith('xoxb-') ? 'bot' : token.startsWith('xapp-') ? 'app' : undefined;

function send(res: ServerResponse, reply: Reply): void {
  const isJson = typeof reply.body !== 'string';
  const payload = isJson ? JSON.stringify(reply.body) : String(reply.body);
  res.writeHead(reply.status, {
    'content-type': isJson ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    ...reply.headers,
  });
  res.end(payload);
}

class FakeSlackServer implements FakeSlack {
  readonly calls: FakeSlackCall[] = [];
  readonly messages = new Map<string, FakeMessage>();
  readonly views = new Map<string, FakeView>();
  url = '';
  private readonly server: Server;
  private readonly usedTriggers = new Set<string>();
  private queued: QueuedFault[] = [];
  private timed: TimedFault[] = [];
  private lastMicros = 0;
  private viewSeq = 0;
  private readonly channels = new Map<string, Required<FakeChannelState> & { user?: string }>();
  private readonly missingUsers = new Set<string>();
  /** Socket Mode tickets handed out by apps.connections.open and not used yet. */
  private readonly tickets = new Set<string>();
  private scopes: readonly string[];
  private readonly initialScopes: readonly string[];
  private readonly handlers = new Map<string, (args: SlackArgs) => Reply>([
    ['auth.test', () => this.authTest()],
    ['chat.postMessage', (args) => this.postMessage(args)],
    ['chat.update', (args) => this.updateMessage(args)],
    ['chat.postEphemeral', (args) => this.postEphemeral(args)],
    ['chat.getPermalink', (args) => this.getPermalink(args)],
    ['conversations.info', (args) => this.conversationInfo(args)],
    ['conversations.open', (args) => this.openConversation(args)],
    ['views.open', (args) => this.openView(args)],
    ['views.update', (args) => this.updateView(args)],
    ['apps.connections.open', () => this.openConnection()],
  ]);

  readonly socket: FakeSocketModeServer;

  constructor(
    private readonly onCall?: (call: FakeSlackCall) => void,
    scopes: readonly string[] = FAKE_BOT_SCOPES,
    private readonly latencyMs = 0,
  ) {
    this.scopes = scopes;
    this.initialScopes = scopes;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => send(res, { status: 500, body: String(err) }));
    });
    // Tickets are single-use, as Slack's: a client reconnecting asks apps.connections.open for a new URL.
    this.socket = new FakeSocketModeServer(this.server, (ticket) => this.tickets.delete(ticket), FAKE_BOT.appId);
  }

  async listen(port: number, host: string): Promise<void> {
    await new Promise<void>((done, failed) => {
      this.server.once('error', failed);
      this.server.listen(port, host, () => done());
    });
    const address = this.server.address() as AddressInfo;
    const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.url = `http://${shownHost}:${address.port}/api/`;
  }

  callsOf(method: string): FakeSlackCall[] {
    return this.calls.filter((call) => call.method === method);
  }

  /** Replies in posting order, which is ts order since ts values only grow. */
  threadReplies(channel: string, ts: string): FakeMessage[] {
    return [...this.messages.values()].filter((m) => m.channel === channel && m.thread_ts === ts);
  }

  async waitFor(predicate: (call: FakeSlackCall) => boolean, timeoutMs = 5_000): Promise<FakeSlackCall> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.calls.find(predicate);
      if (hit) return hit;
      if (Date.now() >= deadline) {
        const seen = this.calls.map((c) => `${c.method}(${c.status})`).join(', ') || 'none';
        throw new Error(`fake-slack: no matching call within ${timeoutMs} ms; calls seen: ${seen}`);
      }
      await sleep(10);
    }
  }

  failNext(method: string, fault: SlackFault, times = 1): void {
    this.queued.push({ method, fault, remaining: times });
  }

  failFor(method: string, fault: SlackFault, durationMs: number): void {
    this.timed.push({ method, fault, until: Date.now() + durationMs });
  }

  setChannel(id: string, state: FakeChannelState): void {
    const current = this.channels.get(id);
    this.channels.set(id, { ...(current ?? defaultChannel(id)), ...state });
  }

  setUser(id: string, state: { exists: boolean }): void {
    if (state.exists) this.missingUsers.delete(id);
    else this.missingUsers.add(id);
  }

  setScopes(scopes: readonly string[]): void {
    this.scopes = [...scopes];
  }

  unexpectedRefusals(): FakeSlackCall[] {
    return this.calls.filter((c) => !c.injected && (c.status !== 200 || (c.response as SlackArgs).ok !== true));
  }

  reset(): void {
    // Emptied in place so callers holding `fake.calls` keep a live view.
    this.calls.length = 0;
    this.messages.clear();
    this.views.clear();
    this.usedTriggers.clear();
    this.channels.clear();
    this.missingUsers.clear();
    this.scopes = this.initialScopes;
    this.queued = [];
    this.timed = [];
  }

  async close(): Promise<void> {
    this.socket.close();
    const closed = new Promise<void>((done) => this.server.close(() => done()));
    // WebClient's fetch keeps sockets alive; without this, close() waits for them to idle out.
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (req.method === 'GET' && url.pathname === CALLS_PATH) return this.listCalls(res, url.searchParams.get('method'));
    const method = methodOf(req.url);
    if (method === undefined) return send(res, { status: 404, body: 'Not Found' });
    const raw = await readBody(req);
    const { args, token, reply } = this.decode(req, raw);
    const fault = this.takeFault(method);
    const final = fault ?? reply ?? this.authorize(method, token, args) ?? this.dispatch(method, args);
    const injected = fault !== undefined || final.declared === true;
    this.record({ method, args, at: Date.now(), status: final.status, token, response: final.body, injected });
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    send(res, { ...final, headers: { ...this.scopeHeaders(method, token, args), ...final.headers } });
  }

  /** For tools in another process (the walkthrough): the recorded calls, optionally of one method, as JSON. */
  private listCalls(res: ServerResponse, method: string | null): void {
    const calls = method ? this.callsOf(method) : this.calls;
    send(res, { status: 200, body: { ok: true, calls: calls.map(({ token: _token, ...call }) => call) } });
  }

  /** Slack checks the token before anything else: present, of the kind the method takes, with the scope it needs. */
  private authorize(method: string, token: string | undefined, args: SlackArgs): Reply | undefined {
    if (token === undefined) return fail('not_authed');
    const kind = tokenKind(token);
    if (kind === undefined) return fail('invalid_auth');
    if ((kind === 'app') !== APP_TOKEN_METHODS.has(method)) return fail('not_allowed_token_type');
    const needed = kind === 'bot' ? scopeNeeded(method, args) : undefined;
    if (needed && !this.scopes.includes(needed)) {
      return fail('missing_scope', { needed, provided: this.scopes.join(',') });
    }
    return undefined;
  }

  /** Every answer to a bot token names its scopes, and the ones the method accepts (what slack:check reads). */
  private scopeHeaders(method: string, token: string | undefined, args: SlackArgs): Record<string, string> {
    if (token === undefined || tokenKind(token) !== 'bot') return {};
    return { 'x-oauth-scopes': this.scopes.join(','), 'x-accepted-oauth-scopes': scopeNeeded(method, args) ?? '' };
  }

  private decode(req: IncomingMessage, raw: string): { args: SlackArgs; token?: string; reply?: Reply } {
    try {
      const { args, json } = parseArgsOf(req, raw);
      const token = tokenOf(req, args, json);
      delete args.token;
      return { args, token };
    } catch (err) {
      if (!(err instanceof SlackArgError)) throw err;
      return { args: { raw }, token: tokenOf(req, {}, true), reply: fail(err.message) };
    }
  }

  private record({ injected, ...fields }: Omit<FakeSlackCall, 'injected'> & { injected: boolean }): void {
    const call: FakeSlackCall = { ...fields, ...(injected ? { injected } : {}) };
    if (call.token === undefined) delete call.token;
    this.calls.push(call);
    this.onCall?.(call);
  }

  private takeFault(method: string): Reply | undefined {
    const matches = (m: string): boolean => m === '*' || m === method;
    const queued = this.queued.find((q) => q.remaining > 0 && matches(q.method));
    if (queued) {
      queued.remaining -= 1;
      this.queued = this.queued.filter((q) => q.remaining > 0);
      return faultReply(queued.fault);
    }
    const now = Date.now();
    this.timed = this.timed.filter((t) => t.until > now);
    const timed = this.timed.find((t) => matches(t.method));
    return timed && faultReply(timed.fault);
  }

  private dispatch(method: string, args: SlackArgs): Reply {
    const handler = this.handlers.get(method);
    return handler ? handler(args) : fail('unknown_method', { req_method: method });
  }

  /** Unique, increasing `seconds.micros` like Slack's (`1732712345.000100`), even within one millisecond. */
  private nextTs(): string {
    this.lastMicros = Math.max(Date.now() * 1000, this.lastMicros + 100);
    const digits = String(this.lastMicros);
    return `${digits.slice(0, -6)}.${digits.slice(-6)}`;
  }

  private authTest(): Reply {
    return ok({
      url: `https://${FAKE_TEAM.domain}.slack.com/`,
      team: FAKE_TEAM.name,
      user: FAKE_BOT.name,
      team_id: FAKE_TEAM.id,
      user_id: FAKE_BOT.userId,
      bot_id: FAKE_BOT.botId,
      is_enterprise_install: false,
    });
  }

  /**
   * Where a post lands: a channel id (one nobody declared exists, with the bot in it), or a user id, which Slack
   * answers by posting in the bot's DM with that user (the answer's `channel` is the DM's `D…` id).
   */
  private postTarget(arg: string | undefined): { channel: string } | { reply: Reply } {
    if (!arg) return { reply: fail('channel_not_found') };
    if (/^[UW][A-Z0-9_]+$/.test(arg)) {
      if (this.missingUsers.has(arg)) return { reply: declared(fail('channel_not_found')) };
      return { channel: this.dmWith(arg) };
    }
    const known = this.channels.get(arg);
    if (!known) return { channel: arg };
    if (!known.exists) return { reply: declared(fail('channel_not_found')) };
    if (known.archived) return { reply: declared(fail('is_archived')) };
    if (!known.member) return { reply: declared(fail('not_in_channel')) };
    return { channel: arg };
  }

  private dmWith(user: string): string {
    const id = `D${user.slice(1)}`;
    if (!this.channels.has(id)) this.channels.set(id, { ...defaultChannel(id), private: true, user });
    return id;
  }

  private postMessage(args: SlackArgs): Reply {
    const target = this.postTarget(str(args.channel));
    if ('reply' in target) return target.reply;
    const { channel } = target;
    const invalid = contentError(args);
    if (invalid) return invalid;
    const message: FakeMessage = { channel, ts: this.nextTs(), text: str(args.text) ?? '', blocks: [], updates: 0 };
    this.applyContent(message, args);
    const root = this.threadRoot(channel, str(args.thread_ts));
    if (root) message.thread_ts = root;
    this.messages.set(msgKey(channel, message.ts), message);
    return ok({ channel, ts: message.ts, message: this.render(message) });
  }

  /**
   * Replies to a reply land in the parent's thread. A thread_ts naming no message is not an error on Slack: the
   * message is posted to the channel top level, so it stays out of `threadReplies` here too.
   */
  private threadRoot(channel: string, threadTs: string | undefined): string | undefined {
    if (!threadTs) return undefined;
    const parent = this.messages.get(msgKey(channel, threadTs));
    return parent ? (parent.thread_ts ?? parent.ts) : undefined;
  }

  /** chat.update keeps the previous blocks/attachments/text unless the call sends new ones. */
  private applyContent(message: FakeMessage, args: SlackArgs): void {
    if (args.text !== undefined) message.text = str(args.text) ?? '';
    if (Array.isArray(args.blocks)) message.blocks = args.blocks;
    if (Array.isArray(args.attachments)) message.attachments = args.attachments;
  }

  private render(message: FakeMessage): SlackArgs {
    return {
      user: FAKE_BOT.userId,
      type: 'message',
      ts: message.ts,
      text: message.text,
      blocks: message.blocks,
      ...(message.attachments ? { attachments: message.attachments } : {}),
      ...(message.thread_ts ? { thread_ts: message.thread_ts, parent_user_id: FAKE_BOT.userId } : {}),
      bot_id: FAKE_BOT.botId,
      app_id: FAKE_BOT.appId,
      team: FAKE_TEAM.id,
      bot_profile: { id: FAKE_BOT.botId, app_id: FAKE_BOT.appId, name: FAKE_BOT.name, team_id: FAKE_TEAM.id },
    };
  }

  private updateMessage(args: SlackArgs): Reply {
    const channel = str(args.channel);
    if (!channel) return fail('channel_not_found');
    const known = this.channels.get(channel);
    if (known && !known.exists) return declared(fail('channel_not_found'));
    const ts = str(args.ts);
    const message = ts ? this.messages.get(msgKey(channel, ts)) : undefined;
    if (!message) return fail('message_not_found');
    const invalid = contentError({ text: message.text, blocks: message.blocks, ...args });
    if (invalid) return invalid;
    this.applyContent(message, args);
    message.updates += 1;
    return ok({ channel, ts: message.ts, text: message.text, message: this.render(message) });
  }

  private postEphemeral(args: SlackArgs): Reply {
    const target = this.postTarget(str(args.channel));
    if ('reply' in target) return target.reply;
    const user = str(args.user);
    if (!user) return missing('user');
    if (this.missingUsers.has(user)) return declared(fail('user_not_in_channel'));
    return contentError(args) ?? ok({ message_ts: this.nextTs() });
  }

  /** https://api.slack.com/methods/chat.getPermalink: thread replies link with `thread_ts` and `cid`. */
  private getPermalink(args: SlackArgs): Reply {
    const channel = str(args.channel);
    const known = channel ? this.channels.get(channel) : undefined;
    if (!channel || (known && !known.exists))
      return known ? declared(fail('channel_not_found')) : fail('channel_not_found');
    const ts = str(args.message_ts);
    const message = ts ? this.messages.get(msgKey(channel, ts)) : undefined;
    if (!message) return fail('message_not_found');
    const base = `https://${FAKE_TEAM.domain}.slack.com/archives/${channel}/p${message.ts.replace('.', '')}`;
    const thread = message.thread_ts ? `?thread_ts=${message.thread_ts}&cid=${channel}` : '';
    return ok({ channel, permalink: `${base}${thread}` });
  }

  /** https://api.slack.com/methods/conversations.info, the fields slack:check reads. */
  private conversationInfo(args: SlackArgs): Reply {
    const id = str(args.channel);
    if (!id) return fail('channel_not_found');
    const known = this.channels.get(id) ?? defaultChannel(id);
    if (!known.exists) return declared(fail('channel_not_found'));
    const im = id.startsWith('D');
    return ok({
      channel: {
        id,
        name: known.name,
        is_channel: !im && !known.private,
        is_group: !im && known.private,
        is_im: im,
        is_private: known.private,
        is_archived: known.archived,
        is_member: known.member,
        created: 1_700_000_000,
      },
    });
  }

  /**
   * https://api.slack.com/methods/apps.connections.open (app-level token): a single-use Socket Mode URL, as Slack's
   * `wss://wss-primary.slack.com/link/?ticket=…&app_id=…`, here on the fake's own port.
   */
  private openConnection(): Reply {
    const ticket = randomBytes(16).toString('hex');
    this.tickets.add(ticket);
    const base = this.url.replace(/^http/, 'ws').replace(/\/api\/$/, '');
    return ok({ url: `${base}/link/?ticket=${ticket}&app_id=${FAKE_BOT.appId}` });
  }

  /** https://api.slack.com/methods/conversations.open with one user: the bot's DM with them. */
  private openConversation(args: SlackArgs): Reply {
    const users = str(args.users);
    if (!users) return fail('users_list_not_supplied');
    const ids = users.split(',');
    if (ids.length !== 1) return fail('method_not_supported_for_channel_type');
    const [user] = ids as [string];
    if (this.missingUsers.has(user)) return declared(fail('user_not_found'));
    return ok({ channel: { id: this.dmWith(user) } });
  }

  /** Trigger ids are single-use on Slack; a retried views.open with the same one fails the same way here. */
  private openView(args: SlackArgs): Reply {
    const trigger = str(args.trigger_id);
    if (!trigger) return missing('trigger_id');
    const invalid = viewError(args.view);
    if (invalid) return invalid;
    if (this.usedTriggers.has(trigger)) return fail('exchanged_trigger_id');
    this.usedTriggers.add(trigger);
    const id = `V${String(++this.viewSeq).padStart(10, '0')}`;
    return ok({ view: this.storeView(id, args.view as SlackArgs) });
  }

  private updateView(args: SlackArgs): Reply {
    const viewId = str(args.view_id);
    const externalId = str(args.external_id);
    if (!viewId && !externalId) return missing('view_id');
    const current = viewId ? this.views.get(viewId) : this.findByExternalId(externalId);
    if (!current) return fail('not_found');
    const hash = str(args.hash);
    if (hash && hash !== current.hash) return fail('hash_conflict');
    const invalid = viewError(args.view);
    if (invalid) return invalid;
    return ok({ view: this.storeView(current.id, args.view as SlackArgs, current) });
  }

  private findByExternalId(externalId: string | undefined): FakeView | undefined {
    return [...this.views.values()].find((v) => v.external_id === externalId);
  }

  private storeView(id: string, input: SlackArgs, previous?: FakeView): FakeView {
    const view: FakeView = {
      type: 'modal',
      blocks: [],
      private_metadata: '',
      callback_id: '',
      external_id: '',
      submit: null,
      close: null,
      clear_on_close: false,
      notify_on_close: false,
      previous_view_id: null,
      ...input,
      id,
      team_id: FAKE_TEAM.id,
      state: { values: {} },
      hash: `${Math.floor(Date.now() / 1000)}.${randomBytes(4).toString('hex')}`,
      root_view_id: previous?.root_view_id ?? id,
      app_id: FAKE_BOT.appId,
      app_installed_team_id: FAKE_TEAM.id,
      bot_id: FAKE_BOT.botId,
    };
    this.views.set(id, view);
    return view;
  }
}

/**
 * views.open/update refuse a view over a Block Kit limit as `invalid_arguments`, the problems in
 * `response_metadata.messages` only: `{ok:false, error:'invalid_arguments', response_metadata:{messages:['[ERROR]
 * must be less than 25 characters [json-pointer:/view/title/text]']}}`.
 */
function viewError(view: unknown): Reply | undefined {
  if (!isObject(view)) return missing('view');
  const problems = viewViolations(view).map((v) => `[ERROR] ${describeViolation(v)}`);
  return problems.length > 0 ? fail('invalid_arguments', { response_metadata: { messages: problems } }) : undefined;
}

function defaultChannel(id: string): Required<FakeChannelState> {
  return { exists: true, name: id.toLowerCase(), private: id.startsWith('G'), archived: false, member: true };
}

export async function startFakeSlack(opts: FakeSlackOptions = {}): Promise<FakeSlack> {
  const fake = new FakeSlackServer(opts.onCall, opts.scopes, opts.latencyMs);
  await fake.listen(opts.port ?? 0, opts.host ?? '127.0.0.1');
  return fake;
}

function describeCall(call: FakeSlackCall): string {
  const response = isObject(call.response) ? call.response : {};
  const outcome = response.ok === true ? 'ok' : String(response.error ?? 'error');
  const where = ['channel', 'ts', 'thread_ts', 'trigger_id', 'view_id']
    .filter((key) => call.args[key] !== undefined)
    .map((key) => `${key}=${String(call.args[key])}`);
  return [new Date(call.at).toISOString(), call.method, call.status, outcome, ...where].join(' ');
}

function isMainModule(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(resolvePath(entry)) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

async function runCli(): Promise<void> {
  const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string' } } });
  const fake = await startFakeSlack({
    port: Number(values.port ?? 3999),
    host: values.host ?? '127.0.0.1',
    onCall: (call) => console.log(describeCall(call)),
  });
  console.log(`fake slack listening: SLACK_API_URL=${fake.url}`);
  const stop = (): void => void fake.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (isMainModule()) {
  runCli().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
