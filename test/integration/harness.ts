import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, type WorkflowBundleOption } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { ChangeFeed } from '../../gateway/events.js';
import { startApiServer, type ApiServer } from '../../service/api-server.js';
import { loadConfig, type Config } from '../../config/env.js';
import { startFakeSlack, type FakeSlack } from '../../dev/fake-slack.js';
import { createAuditLog, type AuditLog } from '../../observability/audit.js';
import { createMetrics, type Metrics } from '../../observability/metrics.js';
import { WORKFLOW_TRACING_MODULE, type Tracing } from '../../observability/tracing.js';
import { startWorker, type RunningWorker } from '../../worker/run.js';
import { workflowsPath } from '../../worker/worker.js';
import { WORKFLOW_BUNDLE_DIR_ENV } from '../helpers/run-bundle.js';
import { workflowBundle } from '../helpers/workflow-bundle.js';
import {
  blockActionPayload,
  expectNoUnexpectedRefusals,
  sendInteraction,
  type InteractionResponse,
} from '../helpers/slack.js';
import { clickResult, judgeWith, type ClickResult, type SentClick } from './clicks.js';
import { ADMIN_TOKEN, SIGNING_SECRET, TEST_POLICY, testLog } from './fixtures.js';

// Suites import these with the harness; they live in fixtures.ts, which the harness builds on.
export { ADMIN_TOKEN, SIGNING_SECRET, TEST_POLICY };

export { workflowBundle };

let tracedBundle: Promise<WorkflowBundleOption> | null = null;
/**
 * The workflow code with the OpenTelemetry workflow interceptors, for harnesses started with `tracing`: the run's
 * traced bundle (test/helpers/run-bundle.ts), else bundled once per test file.
 */
function tracedWorkflowBundle(): Promise<WorkflowBundleOption> {
  const dir = process.env[WORKFLOW_BUNDLE_DIR_ENV];
  if (dir) return Promise.resolve({ codePath: join(dir, 'workflows-traced.js') });
  tracedBundle ??= bundleWorkflowCode({
    workflowsPath,
    workflowInterceptorModules: [WORKFLOW_TRACING_MODULE],
    logger: quietLogger,
  });
  return tracedBundle;
}

const noop = () => {};
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: console.error, log: noop };

export interface Harness {
  url: string;
  config: Config;
  fakeSlack: FakeSlack;
  metrics: Metrics;
  audit: { lines: () => Array<Record<string, unknown>> };
  api: ApiServer;
  worker: RunningWorker;
  /** A Temporal client of the test's own (not the API's), to check what the API says against Temporal itself. */
  client: Client;
  policyPath: string;
  dir: string;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<JsonResponse>;
  get(path: string): Promise<JsonResponse>;
  create(action: string, overrides?: Record<string, unknown>, headers?: Record<string, string>): Promise<Created>;
  click(actionId: string, requestId: string, userId: string, opts?: { blockId?: string }): Promise<Click>;
  /** Clicks, then learns what became of the click: from Slack's answer, the workflow's state and its notices. */
  clickOutcome(actionId: string, requestId: string, userId: string, opts?: { blockId?: string }): Promise<ClickResult>;
  /** What became of a click already sent (`sent`: who clicked what, for a click not sent by `click`). */
  outcomeOf(res: { body: unknown; sent?: SentClick }, sent?: SentClick): Promise<ClickResult>;
  close(): Promise<void>;
}

export interface JsonResponse {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: Headers;
}

export type { ClickResult, SentClick };

/** Slack's answer to a click, with what was clicked. */
export type Click = InteractionResponse & { sent: SentClick };

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

/** The decision block id of the request's current message (`decide:<payloadHash>`), or none for an unknown request. */
export async function currentDecisionBlock(base: string, requestId: string): Promise<string | undefined> {
  const res = await fetchJson(base, 'GET', `/api/guard/status?requestId=${encodeURIComponent(requestId)}`);
  return res.status === 200 ? `decide:${String(res.body.payloadHash)}` : undefined;
}

/** A call to the API at `base`: JSON answers parsed, plain-text ones (healthz, metrics) kept as strings. */
export async function fetchJson(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // plain-text answers stay strings
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

function captureAudit(): { log: AuditLog; lines: () => Array<Record<string, unknown>> } {
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

/**
 * The whole service in this process against the run's real dev server: worker (own task queue), API on a
 * free port, and a fake Slack Web API on loopback.
 */
export async function startHarness(
  opts: {
    policy?: string;
    env?: Record<string, string>;
    /** Another server than the run's shared one (a test that stops and restarts its own). */
    temporalAddress?: string;
    /** Traces the API and the worker (see observability/tracing.ts startTracing). */
    tracing?: Tracing;
    /** The worker announces state changes here and the API hears them (gateway/events.ts); else history only. */
    changes?: ChangeFeed;
    /** The fake Slack answers every Web API call after this many ms (real Slack: tens to hundreds). */
    slackLatencyMs?: number;
  } = {},
): Promise<Harness> {
  const address = opts.temporalAddress ?? process.env.TEMPORAL_TEST_ADDRESS;
  if (!address) throw new Error('TEMPORAL_TEST_ADDRESS is not set: run through the integration Jest project');
  const dir = await mkdtemp(join(tmpdir(), 'guard-it-'));
  const policyPath = join(dir, 'policy.yaml');
  await writeFile(policyPath, opts.policy ?? TEST_POLICY);
  const fakeSlack = await startFakeSlack({ latencyMs: opts.slackLatencyMs ?? 0 });
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    TEMPORAL_ADDRESS: address,
    TEMPORAL_TASK_QUEUE: `it-${randomUUID()}`,
    POLICY_PATH: policyPath,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_BOT_TOKEN: 'xoxb-test-token',
    SLACK_API_URL: fakeSlack.url,
    ADMIN_TOKEN,
    TOKEN_SECRET: 'test-token-secret',
    RETENTION_ARCHIVE_DIR: join(dir, 'archive'),
    // Every test calls from 127.0.0.1: one IP bucket. The limiter's own tests set a small capacity.
    RATE_LIMIT_CAPACITY: '1000000',
    // Temporal's own logs (its retries while a test stops the server) only at ERROR, unless a test asks.
    LOG_LEVEL: 'error',
    ...opts.env,
  });
  const metrics = createMetrics();
  const audit = captureAudit();
  const worker = await startWorker({
    config,
    metrics,
    audit: audit.log,
    workflowBundle: await (opts.tracing ? tracedWorkflowBundle() : workflowBundle()),
    tracing: opts.tracing ?? null,
    log: noop,
    ...(opts.changes ? { onStateChange: (c: { requestId: string; version: number }) => opts.changes!.publish(c) } : {}),
  });
  const api = await startApiServer({
    config,
    metrics,
    audit: audit.log,
    tracing: opts.tracing ?? null,
    log: testLog('api'),
    ...(opts.changes ? { changes: opts.changes } : {}),
  });
  const url = api.url;

  const request = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
    fetchJson(url, method, path, body, headers);
  // Lazy: it connects on first use, so suites that never ask Temporal directly pay nothing.
  const client = new Client({
    connection: Connection.lazy({ address }),
    namespace: config.TEMPORAL_NAMESPACE,
  });

  const judge = judgeWith(client, fakeSlack);
  const harness: Harness = {
    url,
    config,
    fakeSlack,
    metrics,
    audit: { lines: audit.lines },
    api,
    worker,
    client,
    policyPath,
    dir,
    post: (path, body, headers) => request('POST', path, body, headers),
    get: (path) => request('GET', path),
    async create(action, overrides, headers) {
      const res = await request('POST', '/api/guard/request', requestBody(action, overrides), headers);
      if (res.status !== 200) throw new Error(`create ${action} failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body as Created;
    },
    async click(actionId, requestId, userId, o = {}) {
      // An approval names the params it saw, as the message's decision block does: the current ones unless told.
      const blockId = o.blockId ?? (actionId === 'approve' ? await currentDecisionBlock(url, requestId) : undefined);
      const sent = { actionId, requestId, userId, channelId: 'C_APPROVALS', sentAt: Date.now() };
      const payload = blockActionPayload({
        actionId,
        value: requestId,
        userId,
        channelId: sent.channelId,
        ...(blockId ? { blockId } : {}),
      });
      return { ...(await sendInteraction(url, SIGNING_SECRET, payload)), sent };
    },
    async clickOutcome(actionId, requestId, userId, o) {
      // The state before the click tells its effect from an earlier one's (the request may be gone: no state).
      const before = await judge.readState(requestId).catch(() => null);
      const res = await harness.click(actionId, requestId, userId, o);
      return clickResult(judge, res.sent, res.body, before);
    },
    outcomeOf(res, sent = res.sent) {
      if (!sent) throw new Error('outcomeOf: say what was clicked (a click not sent by h.click)');
      return clickResult(judge, sent, res.body);
    },
    async close() {
      await api.close();
      await worker.shutdown();
      await fakeSlack.close();
      await client.connection.close();
      await rm(dir, { recursive: true, force: true });
      expectNoUnexpectedRefusals(fakeSlack);
    },
  };
  return harness;
}
