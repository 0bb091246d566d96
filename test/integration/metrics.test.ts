import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { ApiServer } from '../../service/api-server.js';
import { freePort } from '../../temporal/dev-server.js';
import { startFakeSlack, type FakeSlack } from '../../dev/fake-slack.js';
import { createAuditLog } from '../../observability/audit.js';
import { loadConfig } from '../../config/env.js';
import { blockActionPayload, sendInteraction, viewSubmissionPayload } from '../helpers/slack.js';
import { scrape, type Scrape } from '../helpers/prometheus.js';
import { startWorker } from '../../worker/run.js';
import { approvedBy, standardPolicy, startApi, type Actions } from './fixtures.js';
import {
  ADMIN_TOKEN,
  currentDecisionBlock,
  requestBody,
  SIGNING_SECRET,
  startHarness,
  workflowBundle,
  type Created,
  type Harness,
} from './harness.js';
import { childEnv, pollUntil, startProc, type Proc } from './procs.js';
import { workflowIdOf } from '../../gateway/ids.js';

const ESC: Actions = {
  esc: approvedBy(['U_ALICE'], 1, {
    timeoutSec: 6,
    escalation: { escalateBeforeSec: 4, escalationChannel: 'C_ESCALATIONS' },
  }),
};
/** The suite's policy; a test reloads it without the `esc` action. */
const policy = (esc: Actions) =>
  standardPolicy({
    simple: approvedBy(['U_ALICE', 'U_BOB'], 1),
    quorum2: approvedBy(['U_ALICE', 'U_BOB', 'U_CAROL'], 2),
    personas: approvedBy(['U_ALICE', 'U_BOB'], 1, { personasRequired: ['DBA', 'Security'] }),
    edits: approvedBy(['U_ALICE', 'U_BOB'], 1, { allowParamOverrides: true, overrideKeys: ['steps'] }),
    ...esc,
  });
const POLICY = policy(ESC);

const ACTIONS = ['simple', 'quorum2', 'personas', 'edits', 'esc'];

let h: Harness;

beforeAll(async () => {
  // One changed character at most: '42' is refused (diff_size_exceeded), '5' is applied.
  h = await startHarness({ policy: POLICY, env: { OVERRIDE_MAX_CHARS: '1' } });
}, 120_000);

afterAll(async () => {
  await h?.close();
});

const metricsOf = (baseUrl: string) => scrape(`${baseUrl}/metrics`);
const closed = (ids: string[]) => Promise.all(ids.map((id) => h.client.workflow.getHandle(workflowIdOf(id)).result()));

async function createOn(baseUrl: string, action: string, headers: Record<string, string> = {}): Promise<Created> {
  const res = await fetch(`${baseUrl}/api/guard/request`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(requestBody(action)),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Created;
}

async function clickOn(baseUrl: string, actionId: string, requestId: string, userId: string): Promise<void> {
  // An approval carries the hash of the params shown, as the message's decision button does.
  const blockId = actionId === 'approve' ? await currentDecisionBlock(baseUrl, requestId) : undefined;
  const payload = blockActionPayload({
    actionId,
    value: requestId,
    userId,
    channelId: 'C_APPROVALS',
    ...(blockId ? { blockId } : {}),
  });
  const sent = { actionId, requestId, userId, channelId: 'C_APPROVALS', sentAt: Date.now() };
  const res = await sendInteraction(baseUrl, SIGNING_SECRET, payload);
  expect(res.status).toBe(200);
  expect(await h.outcomeOf(res, sent)).toMatchObject({ ok: true });
}

function submitEdit(requestId: string, steps: string) {
  return sendInteraction(
    h.url,
    SIGNING_SECRET,
    viewSubmissionPayload({
      userId: 'U_ALICE',
      callbackId: 'override_submit',
      privateMetadata: { request_id: requestId },
      values: { ov_steps: { value: { type: 'plain_text_input', value: steps } } },
    }),
  );
}

async function cancel(baseUrl: string, token: string): Promise<void> {
  const res = await fetch(`${baseUrl}/api/guard/cancel`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token }),
  });
  expect(res.status).toBe(200);
}

/** after − before for every listed sample. */
function deltas(before: Scrape, after: Scrape, wanted: Array<[string, Record<string, string>?]>) {
  return Object.fromEntries(
    wanted.map(([name, labels = {}]) => [
      `${name}${JSON.stringify(labels)}`,
      after.count(name, labels) - before.count(name, labels),
    ]),
  );
}

test('counters move by exactly what each scenario did', async () => {
  const before = await metricsOf(h.url);
  const postsBefore = h.fakeSlack.callsOf('chat.postMessage').filter((c) => c.status === 200).length;

  const approved = await h.create('simple');
  await clickOn(h.url, 'approve', approved.requestId, 'U_ALICE');
  const denied = await h.create('simple');
  await clickOn(h.url, 'deny', denied.requestId, 'U_BOB');
  const key = { 'idempotency-key': `k-${randomUUID()}` };
  const cancelled = await createOn(h.url, 'simple', key);
  expect((await createOn(h.url, 'simple', key)).requestId).toBe(cancelled.requestId);
  await cancel(h.url, cancelled.token);
  const personas = await h.create('personas');
  await clickOn(h.url, 'persona_ack:DBA', personas.requestId, 'U_DBA');
  await clickOn(h.url, 'persona_ack:Security', personas.requestId, 'U_ALICE');
  await clickOn(h.url, 'approve', personas.requestId, 'U_BOB');
  const quorum = await h.create('quorum2');
  await clickOn(h.url, 'approve', quorum.requestId, 'U_ALICE');
  await clickOn(h.url, 'approve', quorum.requestId, 'U_BOB');
  const edits = await h.create('edits');
  expect((await submitEdit(edits.requestId, '42')).json).toMatchObject({ response_action: 'errors' });
  const applied = await submitEdit(edits.requestId, '5');
  expect(applied.status).toBe(200);
  expect(applied.body).not.toContain('errors');
  const escalating = await h.create('esc');

  const badSignature = await sendInteraction(
    h.url,
    SIGNING_SECRET,
    blockActionPayload({ actionId: 'approve', value: approved.requestId, userId: 'U_ALICE' }),
    { signature: `v0=${'0'.repeat(64)}` },
  );
  expect(badSignature.status).toBe(400);
  expect((await h.post('/api/admin/reload-policy', {})).status).toBe(401);
  expect((await h.post('/api/admin/reload-policy', {}, { 'x-admin-token': ADMIN_TOKEN })).status).toBe(200);

  const all = [approved, denied, cancelled, personas, quorum, edits, escalating].map((r) => r.requestId);
  await closed(all);
  const after = await metricsOf(h.url);

  expect(
    deltas(before, after, [
      ['approval_requests_total', { action: 'simple' }],
      ['approval_requests_total', { action: 'personas' }],
      ['approval_requests_total', { action: 'quorum2' }],
      ['approval_requests_total', { action: 'edits' }],
      ['approval_requests_total', { action: 'esc' }],
      ['approvals_total', { action: 'simple' }],
      ['approvals_total', { action: 'personas' }],
      ['approvals_total', { action: 'quorum2' }],
      ['approvals_total', { action: 'edits' }],
      ['approvals_total', { action: 'esc' }],
      ['denies_total', { action: 'simple' }],
      ['cancelled_total', { action: 'simple' }],
      ['expired_total', { action: 'esc' }],
      ['expired_total', { action: 'simple' }],
      ['escalations_total', { action: 'esc' }],
      ['persona_ack_total', { action: 'personas', persona: 'DBA' }],
      ['persona_ack_total', { action: 'personas', persona: 'Security' }],
      ['param_overrides_total', { action: 'edits', outcome: 'applied' }],
      ['param_overrides_total', { action: 'edits', outcome: 'rejected' }],
      ['override_rejections_total', { action: 'edits', reason: 'diff_size_exceeded' }],
      ['security_events_total', { type: 'bad_signature' }],
      ['security_events_total', { type: 'unauthorized' }],
      ['policy_reloads_total', { source: 'api' }],
      ['archived_requests_total'],
      ['purged_requests_total'],
      ['decision_latency_seconds_count', { action: 'simple', outcome: 'approved' }],
      ['decision_latency_seconds_count', { action: 'simple', outcome: 'denied' }],
      ['decision_latency_seconds_count', { action: 'simple', outcome: 'cancelled' }],
      ['decision_latency_seconds_count', { action: 'personas', outcome: 'approved' }],
      ['decision_latency_seconds_count', { action: 'quorum2', outcome: 'approved' }],
      ['decision_latency_seconds_count', { action: 'edits', outcome: 'approved' }],
      ['decision_latency_seconds_count', { action: 'esc', outcome: 'expired' }],
    ]),
  ).toEqual({
    'approval_requests_total{"action":"simple"}': 3,
    'approval_requests_total{"action":"personas"}': 1,
    'approval_requests_total{"action":"quorum2"}': 1,
    'approval_requests_total{"action":"edits"}': 1,
    'approval_requests_total{"action":"esc"}': 1,
    'approvals_total{"action":"simple"}': 1,
    'approvals_total{"action":"personas"}': 1,
    'approvals_total{"action":"quorum2"}': 1,
    'approvals_total{"action":"edits"}': 1,
    'approvals_total{"action":"esc"}': 0,
    'denies_total{"action":"simple"}': 1,
    'cancelled_total{"action":"simple"}': 1,
    'expired_total{"action":"esc"}': 1,
    'expired_total{"action":"simple"}': 0,
    'escalations_total{"action":"esc"}': 1,
    'persona_ack_total{"action":"personas","persona":"DBA"}': 1,
    'persona_ack_total{"action":"personas","persona":"Security"}': 1,
    'param_overrides_total{"action":"edits","outcome":"applied"}': 1,
    'param_overrides_total{"action":"edits","outcome":"rejected"}': 1,
    'override_rejections_total{"action":"edits","reason":"diff_size_exceeded"}': 1,
    'security_events_total{"type":"bad_signature"}': 1,
    'security_events_total{"type":"unauthorized"}': 1,
    'policy_reloads_total{"source":"api"}': 1,
    'archived_requests_total{}': 7,
    'purged_requests_total{}': 0,
    'decision_latency_seconds_count{"action":"simple","outcome":"approved"}': 1,
    'decision_latency_seconds_count{"action":"simple","outcome":"denied"}': 1,
    'decision_latency_seconds_count{"action":"simple","outcome":"cancelled"}': 1,
    'decision_latency_seconds_count{"action":"personas","outcome":"approved"}': 1,
    'decision_latency_seconds_count{"action":"quorum2","outcome":"approved"}': 1,
    'decision_latency_seconds_count{"action":"edits","outcome":"approved"}': 1,
    'decision_latency_seconds_count{"action":"esc","outcome":"expired"}': 1,
  });
  // Creation → expiry is the 6 s timeout, measured on the workflow's clock (the timer may fire a little late).
  const expiredLatency = deltas(before, after, [
    ['decision_latency_seconds_sum', { action: 'esc', outcome: 'expired' }],
  ]);
  expect(Object.values(expiredLatency)[0]).toBeGreaterThanOrEqual(5.9);
  expect(Object.values(expiredLatency)[0]).toBeLessThan(60);
  // One post per request, plus the escalation's thread notice and its post to the escalation channel.
  const posts = h.fakeSlack.callsOf('chat.postMessage').filter((c) => c.status === 200).length - postsBefore;
  expect(posts).toBe(9);
  expect(deltas(before, after, [['slack_api_calls_total', { method: 'chat.postMessage', outcome: 'ok' }]])).toEqual({
    'slack_api_calls_total{"method":"chat.postMessage","outcome":"ok"}': posts,
  });
});

describe('HTTP request metrics', () => {
  type HttpSeries = 'http_requests_total' | 'http_request_duration_seconds_count';
  const http = (s: Scrape, name: HttpSeries) =>
    Object.fromEntries(Object.entries(s.series(name)).filter(([, v]) => v > 0));
  /** The http_* series that moved between two scrapes (the scrapes themselves are requests too: left out). */
  function moved(before: Scrape, after: Scrape, name: HttpSeries) {
    const was = http(before, name);
    return Object.fromEntries(
      Object.entries(http(after, name))
        .map(([k, v]) => [k, v - (was[k] ?? 0)] as const)
        .filter(([k, d]) => d !== 0 && !k.includes('route=/metrics')),
    );
  }

  test('every answer counts once by method, route pattern (never the URL) and status, with its duration', async () => {
    const req = await h.create('simple');
    await clickOn(h.url, 'approve', req.requestId, 'U_ALICE');
    await closed([req.requestId]);
    const admin = { 'x-admin-token': ADMIN_TOKEN };
    const stray = `/no/such/${randomUUID()}`;
    const before = await metricsOf(h.url);

    const answers = [
      await fetch(`${h.url}/healthz`),
      await fetch(`${h.url}/api/guard/status?requestId=${req.requestId}`),
      await fetch(`${h.url}/api/guard/status?requestId=${randomUUID()}`),
      await fetch(`${h.url}/api/admin/requests/${req.requestId}`, { headers: admin }),
      await fetch(`${h.url}/api/admin/requests/${randomUUID()}`, { headers: admin }),
      await fetch(`${h.url}/api/admin/requests/${req.requestId}`),
      await fetch(`${h.url}/api/guard/request`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      }),
      // A hijacked reply (Server-Sent Events): counted when the stream ends, after the terminal state.
      await fetch(`${h.url}/api/guard/wait-sse?token=${encodeURIComponent(req.token)}`),
      await fetch(`${h.url}${stray}`),
      await fetch(`${h.url}${stray}`, { method: 'DELETE' }),
    ];
    const bodies = await Promise.all(answers.map((r) => r.text()));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 404, 200, 404, 401, 400, 200, 404, 404]);
    expect(bodies[7]).toContain('event: state');
    const after = await pollUntil(
      'the last answer to be counted',
      async () => {
        const m = await metricsOf(h.url);
        return m.count('http_requests_total', { method: 'DELETE', route: 'unmatched', status: '404' }) ? m : undefined;
      },
      { timeoutMs: 5_000 },
    );

    expect(moved(before, after, 'http_requests_total')).toEqual({
      'method=GET,route=/healthz,status=200': 1,
      'method=GET,route=/api/guard/status,status=200': 1,
      'method=GET,route=/api/guard/status,status=404': 1,
      'method=GET,route=/api/admin/requests/:id,status=200': 1,
      'method=GET,route=/api/admin/requests/:id,status=404': 1,
      'method=GET,route=/api/admin/requests/:id,status=401': 1,
      'method=POST,route=/api/guard/request,status=400': 1,
      'method=GET,route=/api/guard/wait-sse,status=200': 1,
      'method=GET,route=unmatched,status=404': 1,
      'method=DELETE,route=unmatched,status=404': 1,
    });
    expect(moved(before, after, 'http_request_duration_seconds_count')).toEqual({
      'method=GET,route=/healthz': 1,
      'method=GET,route=/api/guard/status': 2,
      'method=GET,route=/api/admin/requests/:id': 3,
      'method=POST,route=/api/guard/request': 1,
      'method=GET,route=/api/guard/wait-sse': 1,
      'method=GET,route=unmatched': 1,
      'method=DELETE,route=unmatched': 1,
    });
    // Durations are seconds: the whole batch took well under a minute, and every answer took some time.
    const seconds = (m: Scrape) => m.count('http_request_duration_seconds_sum', { method: 'GET', route: '/healthz' });
    expect(seconds(after) - seconds(before)).toBeGreaterThan(0);
    expect(seconds(after) - seconds(before)).toBeLessThan(60);
    const routes = new Set(after.samples.filter((s) => s.name.startsWith('http_')).map((s) => s.labels.route));
    for (const route of routes) expect(route).toMatch(/^(\/[\w/:.-]*|unmatched)$/);
    expect([...routes].some((r) => r?.includes(req.requestId) || r?.includes('/no/such'))).toBe(false);
  });

  test('a replica that cannot reach Temporal counts its own 503s; the other replica does not see them', async () => {
    const down = await startApi({ ...h.config, PORT: 0, TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` });
    try {
      const before = await metricsOf(h.url);
      const res = await fetch(`${down.url}/api/guard/status?requestId=${randomUUID()}`);
      expect([res.status, await res.json()]).toEqual([503, expect.objectContaining({ error: 'temporal_unavailable' })]);
      expect((await fetch(`${down.url}/readyz`)).status).toBe(503);
      const mine = await pollUntil(
        'the 503s to be counted',
        async () => {
          const m = await metricsOf(down.url);
          return m.count('http_requests_total', { method: 'GET', route: '/readyz', status: '503' }) ? m : undefined;
        },
        { timeoutMs: 5_000 },
      );
      const answered = Object.entries(mine.series('http_requests_total')).filter(([k]) => !k.includes('/metrics'));
      expect(Object.fromEntries(answered)).toEqual({
        'method=GET,route=/api/guard/status,status=503': 1,
        'method=GET,route=/readyz,status=503': 1,
      });
      expect(mine.count('http_request_duration_seconds_count', { method: 'GET', route: '/api/guard/status' })).toBe(1);
      const theirs = await metricsOf(h.url);
      for (const m of [before, theirs])
        expect(Object.keys(m.series('http_requests_total')).filter((k) => /status=5/.test(k))).toEqual([]);
    } finally {
      await down.close();
    }
  });
});

describe('request gauges from Temporal visibility', () => {
  let api2: ApiServer;

  beforeAll(async () => {
    api2 = await startApi({ ...h.config, PORT: 0 });
  });

  afterAll(async () => {
    await api2?.close();
  });

  /** Both replicas' gauges, once both show `expected` (visibility is eventually consistent). */
  async function gaugesOnBoth(expected: (s: Scrape) => boolean): Promise<[Scrape, Scrape]> {
    return pollUntil(
      'both API replicas to report the expected gauges',
      async () => {
        const both = await Promise.all([metricsOf(h.url), metricsOf(api2.url)]);
        return both.every(expected) ? (both as [Scrape, Scrape]) : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
  }

  test('two API processes report the same open requests by action, status and pending persona', async () => {
    const startedAt = Date.now();
    const s1 = await createOn(h.url, 'simple');
    const s2 = await createOn(api2.url, 'simple');
    const s3 = await createOn(h.url, 'simple');
    const p1 = await createOn(api2.url, 'personas');
    const p2 = await createOn(h.url, 'personas');
    const q1 = await createOn(api2.url, 'quorum2');
    await clickOn(api2.url, 'approve', s1.requestId, 'U_ALICE');
    await clickOn(api2.url, 'persona_ack:DBA', p1.requestId, 'U_DBA');
    await clickOn(h.url, 'persona_ack:DBA', p2.requestId, 'U_DBA');
    await clickOn(h.url, 'persona_ack:Security', p2.requestId, 'U_ALICE');
    await clickOn(h.url, 'approve', q1.requestId, 'U_ALICE');

    const truth: Record<string, Record<string, number>> = {
      pending_requests: {
        'action=simple': 2,
        'action=personas': 2,
        'action=quorum2': 1,
        'action=edits': 0,
        'action=esc': 0,
      },
      open_requests_status: {
        'action=simple,status=awaiting_personas': 0,
        'action=simple,status=ready_for_approval': 2,
        'action=personas,status=awaiting_personas': 1,
        'action=personas,status=ready_for_approval': 1,
        'action=quorum2,status=awaiting_personas': 0,
        'action=quorum2,status=ready_for_approval': 1,
        'action=edits,status=awaiting_personas': 0,
        'action=edits,status=ready_for_approval': 0,
        'action=esc,status=awaiting_personas': 0,
        'action=esc,status=ready_for_approval': 0,
      },
      persona_pending_requests: { 'action=personas,persona=DBA': 0, 'action=personas,persona=Security': 1 },
    };
    const matches = (s: Scrape) => Object.entries(truth).every(([name, want]) => equalSeries(s.series(name), want));
    const [one, two] = await gaugesOnBoth(matches);

    for (const s of [one, two]) {
      const ages = s.series('oldest_open_request_age_seconds');
      expect(Object.keys(ages).sort()).toEqual(ACTIONS.map((a) => `action=${a}`).sort());
      const bound = (Date.now() - startedAt) / 1000 + 1;
      for (const action of ['simple', 'personas', 'quorum2']) {
        expect(ages[`action=${action}`]).toBeGreaterThan(0);
        expect(ages[`action=${action}`]).toBeLessThanOrEqual(bound);
      }
      expect(ages['action=edits']).toBe(0);
      // s1 is decided, so the oldest open simple request is s2, created before q1.
      expect(ages['action=simple']).toBeGreaterThanOrEqual(ages['action=quorum2']!);
    }

    for (const r of [s2, s3, p1, p2, q1]) await cancel(api2.url, r.token);
    await closed([s1, s2, s3, p1, p2, q1].map((r) => r.requestId));
    const allZero = (s: Scrape) =>
      ['pending_requests', 'open_requests_status', 'persona_pending_requests', 'oldest_open_request_age_seconds'].every(
        (name) => Object.values(s.series(name)).every((v) => v === 0),
      ) && s.get('pending_requests', { action: 'simple' }) === 0;
    await gaugesOnBoth(allZero);
  });

  test('an action that leaves the policy stops being reported once nothing of it is open', async () => {
    await writeFile(h.policyPath, policy({}));
    const reload = await h.post('/api/admin/reload-policy', {}, { 'x-admin-token': ADMIN_TOKEN });
    expect(reload.status).toBe(200);
    const s = await pollUntil(
      'the esc label sets to disappear',
      async () => {
        const m = await metricsOf(h.url);
        return m.get('pending_requests', { action: 'esc' }) === undefined ? m : undefined;
      },
      { timeoutMs: 10_000 },
    );
    expect(s.get('pending_requests', { action: 'simple' })).toBe(0);
    expect(s.get('open_requests_status', { action: 'esc', status: 'ready_for_approval' })).toBeUndefined();
  });
});

function equalSeries(actual: Record<string, number>, want: Record<string, number>): boolean {
  const keys = new Set([...Object.keys(actual), ...Object.keys(want)]);
  return [...keys].every((k) => actual[k] === want[k]);
}

describe('a worker-only process', () => {
  let fakeSlack: FakeSlack;
  let worker: Proc | null = null;
  let api: ApiServer;
  let dir: string;

  beforeAll(async () => {
    fakeSlack = await startFakeSlack();
    dir = await mkdtemp(join(tmpdir(), 'guard-worker-metrics-'));
  });

  afterAll(async () => {
    if (worker) {
      worker.child.kill('SIGTERM');
      await worker.exited;
    }
    await api?.close();
    await fakeSlack?.close();
  });

  test('serves its counters on WORKER_METRICS_PORT, the SDK metrics on TEMPORAL_METRICS_PORT, its audit to AUDIT_FILE', async () => {
    const [workerPort, sdkPort] = [await freePort(), await freePort()];
    const taskQueue = `it-worker-${randomUUID()}`;
    const auditFile = join(dir, 'audit.ndjson');
    const env = {
      TEMPORAL_ADDRESS: process.env.TEMPORAL_TEST_ADDRESS!,
      TEMPORAL_TASK_QUEUE: taskQueue,
      HOST: '127.0.0.1',
      WORKER_METRICS_PORT: String(workerPort),
      TEMPORAL_METRICS_PORT: String(sdkPort),
      AUDIT_FILE: auditFile,
      SLACK_BOT_TOKEN: 'xoxb-worker-secret-token',
      SLACK_API_URL: fakeSlack.url,
      RETENTION_ARCHIVE_DIR: join(dir, 'archive'),
    };
    worker = startProc('worker', process.execPath, ['--import', 'tsx', 'service/worker.ts'], { env: childEnv(env) });
    await worker.waitForLine(/polling task queue/, 120_000);
    api = await startApi(loadConfig({ ...env, ...apiEnv(h) }));

    const req = await createOn(api.url, 'simple');
    await clickOn(api.url, 'approve', req.requestId, 'U_ALICE');
    await closed([req.requestId]);

    const counters = await pollUntil(
      'the worker to export its counters',
      async () => {
        const m = await scrape(`http://127.0.0.1:${workerPort}/metrics`);
        return m.count('archived_requests_total') === 1 ? m : undefined;
      },
      { timeoutMs: 10_000 },
    );
    expect(counters.count('approvals_total', { action: 'simple' })).toBe(1);
    expect(counters.count('decision_latency_seconds_count', { action: 'simple', outcome: 'approved' })).toBe(1);
    expect(counters.count('slack_api_calls_total', { method: 'chat.postMessage', outcome: 'ok' })).toBe(1);
    // Counted by the API that created it, not by the worker.
    expect(counters.count('approval_requests_total', { action: 'simple' })).toBe(0);

    const sdk = await fetch(`http://127.0.0.1:${sdkPort}/metrics`).then((r) => r.text());
    expect(sdk).toMatch(/^temporal_workflow_completed\b.*\s1$/m);

    const lines = (await readFile(auditFile, 'utf8')).trimEnd().split('\n');
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.filter((e) => e.requestId === req.requestId).map((e) => e.event)).toEqual([
      'request_created',
      'approval_recorded',
      'request_approved',
      'request_archived',
    ]);
    expect(lines.join('\n')).not.toContain('xoxb-worker-secret-token');
  });
});

/** What an API process needs besides the worker's settings: the harness's policy and secrets. */
function apiEnv(harness: Harness): Record<string, string> {
  return {
    NODE_ENV: 'test',
    PORT: '0',
    POLICY_PATH: harness.policyPath,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    ADMIN_TOKEN,
    TOKEN_SECRET: 'test-token-secret',
  };
}

test('a worker taking over replays the history without counting or auditing its facts again', async () => {
  const req = await h.create('personas');
  await clickOn(h.url, 'persona_ack:DBA', req.requestId, 'U_DBA');
  const before = await metricsOf(h.url);
  await h.worker.shutdown();
  const lines: string[] = [];
  const audit = createAuditLog({
    stream: new Writable({
      write: (chunk, _e, cb) => {
        lines.push(...String(chunk).trimEnd().split('\n'));
        cb();
      },
    }),
  });
  // A fresh worker has no cached workflow: it rebuilds this one by replaying its history from the start.
  const successor = await startWorker({
    config: h.config,
    metrics: h.metrics,
    audit,
    workflowBundle: await workflowBundle(),
    log: () => {},
  });
  try {
    await clickOn(h.url, 'persona_ack:Security', req.requestId, 'U_ALICE');
    await clickOn(h.url, 'approve', req.requestId, 'U_BOB');
    await closed([req.requestId]);
  } finally {
    await successor.shutdown();
  }
  const after = await metricsOf(h.url);
  expect(
    deltas(before, after, [
      ['persona_ack_total', { action: 'personas', persona: 'DBA' }],
      ['persona_ack_total', { action: 'personas', persona: 'Security' }],
      ['approvals_total', { action: 'personas' }],
      ['decision_latency_seconds_count', { action: 'personas', outcome: 'approved' }],
    ]),
  ).toEqual({
    'persona_ack_total{"action":"personas","persona":"DBA"}': 0,
    'persona_ack_total{"action":"personas","persona":"Security"}': 1,
    'approvals_total{"action":"personas"}': 1,
    'decision_latency_seconds_count{"action":"personas","outcome":"approved"}': 1,
  });
  const events = lines.map((l) => JSON.parse(l) as { event: string; requestId?: string });
  expect(events.filter((e) => e.requestId === req.requestId).map((e) => e.event)).toEqual([
    'persona_acked',
    'approval_recorded',
    'request_approved',
    'request_archived',
  ]);
}, 60_000);
