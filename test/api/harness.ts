/**
 * The HTTP app in-process, as the composition root builds it (routes, hooks, the Slack plugin and the real Bolt app),
 * over an in-memory gateway instead of Temporal: route contracts, refusals and error mapping are tested with
 * `app.inject`, in milliseconds. Slack's Web API is the fake Slack on loopback, as in the integration tests.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { buildApp } from '../../api/app.js';
import { PolicyStore } from '../../api/policy-store.js';
import { createReceiptSigner, resolveReceiptKey } from '../../api/receipts.js';
import { createTokenSigner } from '../../api/security.js';
import { loadConfig, type Config } from '../../config/env.js';
import { startFakeSlack, type FakeSlack } from '../../dev/fake-slack.js';
import { blockActionPayload, formBody, signSlackRequest, SLACK_USER_AGENT } from '../../dev/slack-signing.js';
import { createAuditLog } from '../../observability/audit.js';
import { createMetrics, type Metrics } from '../../observability/metrics.js';
import { slackHttpPlugin } from '../../slack/http.js';
import { createSlackInteractions } from '../../slack/interactions.js';
import { createMemoryReplayCache } from '../../slack/replay-cache.js';
import { ADMIN_TOKEN, SIGNING_SECRET, TEST_POLICY } from '../integration/fixtures.js';
import { InMemoryGateway } from './fake-gateway.js';

export { ADMIN_TOKEN, SIGNING_SECRET };

export interface Answer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  text: string;
  headers: Headers;
}

export interface SignedOptions {
  timestampSec?: number;
  /** Replaces the computed signature, to forge deliveries. */
  signature?: string;
  /** Sent instead of the payload's form body (signed as sent unless `signature` is given). */
  rawBody?: string;
  headers?: Record<string, string>;
  omitHeaders?: string[];
}

export interface ApiHarness {
  app: FastifyInstance;
  gateway: InMemoryGateway;
  config: Config;
  metrics: Metrics;
  fakeSlack: FakeSlack;
  policyPath: string;
  audit: () => Array<Record<string, unknown>>;
  inject(opts: InjectOptions): Promise<Answer>;
  get(path: string, headers?: Record<string, string>): Promise<Answer>;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Answer>;
  create(action: string, overrides?: Record<string, unknown>, headers?: Record<string, string>): Promise<Created>;
  /** A delivery to the Slack endpoint, signed the way Slack signs it. */
  slack(payload: object, opts?: SignedOptions): Promise<Answer>;
  /** A signed button click on a request. */
  click(actionId: string, requestId: string, userId: string, opts?: { blockId?: string }): Promise<Answer>;
  close(): Promise<void>;
}

export interface Created {
  token: string;
  requestId: string;
  status: string;
  expiresAt: string;
  payloadHash: string;
}

export function requestBody(action: string, overrides: Record<string, unknown> = {}) {
  return {
    action,
    params: { database: 'orders', steps: 3 },
    meta: {
      origin: { repo: 'acme/shop', branch: 'main', pr: 42 },
      requester: { id: 'U_REQ', source: 'slack', display: 'Requester' },
      justification: 'needed for the release',
    },
    ...overrides,
  };
}

function captureAudit() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const lines = () =>
    chunks
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log: createAuditLog({ stream }), lines };
}

function collect(into: string[]): Writable {
  return new Writable({
    write(chunk, _enc, cb) {
      into.push(String(chunk));
      cb();
    },
  });
}

function answer(res: { statusCode: number; body: string; headers: Record<string, unknown> }): Answer {
  let body: unknown = res.body;
  try {
    body = JSON.parse(res.body);
  } catch {
    // plain-text answers stay strings
  }
  const headers = new Headers();
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers.set(k, String(v));
  return { status: res.statusCode, body, text: res.body, headers };
}

/** The app with `policy` (default: the integration tests' policy) and `env` over the test configuration. */
export async function startApiHarness(
  opts: {
    policy?: string;
    env?: Record<string, string>;
    /** Collects the app's log lines (at trace level) here. */
    logs?: string[];
  } = {},
): Promise<ApiHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'guard-api-'));
  const policyPath = join(dir, 'policy.yaml');
  await writeFile(policyPath, opts.policy ?? TEST_POLICY);
  const fakeSlack = await startFakeSlack();
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    TEMPORAL_ADDRESS: '127.0.0.1:1',
    POLICY_PATH: policyPath,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_BOT_TOKEN: 'xoxb-test-token',
    SLACK_API_URL: fakeSlack.url,
    ADMIN_TOKEN,
    TOKEN_SECRET: 'test-token-secret',
    RATE_LIMIT_CAPACITY: '1000000',
    ...opts.env,
  });
  const metrics = createMetrics();
  const audit = captureAudit();
  const gateway = new InMemoryGateway();
  const policy = new PolicyStore(config.POLICY_PATH, metrics, audit.log);
  await policy.reload('startup');
  const interactions = createSlackInteractions({
    gateway,
    botToken: config.SLACK_BOT_TOKEN,
    apiUrl: config.SLACK_API_URL,
    metrics,
    audit: audit.log,
  });
  const slack = slackHttpPlugin({
    interactions,
    signingSecret: config.SLACK_SIGNING_SECRET,
    replayCache: createMemoryReplayCache(),
    metrics,
    audit: audit.log,
  });
  const deps = {
    config,
    gateway,
    policy,
    tokens: createTokenSigner(config.TOKEN_SECRET ?? 'test-token-secret'),
    receipts: createReceiptSigner(resolveReceiptKey(config.RECEIPT_PRIVATE_KEY, join(dir, 'receipt-key.pem'))),
    metrics,
    audit: audit.log,
    redis: null,
  };
  const logger = opts.logs ? { level: 'trace', stream: collect(opts.logs) } : false;
  const app = await buildApp(deps, { plugins: [slack], logger });
  await app.ready();

  const inject = async (o: InjectOptions) => answer(await app.inject({ remoteAddress: '127.0.0.1', ...o }));
  const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    inject({
      method: 'POST',
      url,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  const slackDelivery = (payload: object, o: SignedOptions = {}) => {
    const raw = o.rawBody ?? formBody(payload);
    const headers: Record<string, string> = {
      ...signSlackRequest(SIGNING_SECRET, raw, o.timestampSec),
      'user-agent': SLACK_USER_AGENT,
      ...o.headers,
    };
    if (o.signature !== undefined) headers['x-slack-signature'] = o.signature;
    for (const name of o.omitHeaders ?? []) delete headers[name.toLowerCase()];
    return inject({ method: 'POST', url: '/api/slack/interactions', headers, payload: raw });
  };
  return {
    app,
    gateway,
    config,
    metrics,
    fakeSlack,
    policyPath,
    audit: audit.lines,
    inject,
    get: (url, headers = {}) => inject({ method: 'GET', url, headers }),
    post,
    async create(action, overrides, headers) {
      const res = await post('/api/guard/request', requestBody(action, overrides), headers);
      if (res.status !== 200) throw new Error(`create ${action} failed: ${res.status} ${res.text}`);
      return res.body as Created;
    },
    slack: slackDelivery,
    async click(actionId, requestId, userId, o = {}) {
      // An approval names the params it saw, as the message's decision block does: the current ones unless told.
      const current = (await gateway.view(requestId).catch(() => null))?.payloadHash;
      const blockId = o.blockId ?? (actionId === 'approve' && current ? `decide:${current}` : undefined);
      return slackDelivery(
        blockActionPayload({
          actionId,
          value: requestId,
          userId,
          channelId: 'C_APPROVALS',
          ...(blockId ? { blockId } : {}),
        }),
      );
    },
    async close() {
      await app.close();
      await fakeSlack.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
