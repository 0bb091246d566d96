/**
 * Faults (issue 8): Temporal unreachable, the worker killed under load, Slack failing, and clock skew on Slack
 * timestamps. In each case the API answers clearly, and afterwards no request is lost or decided twice — counted
 * through the Temporal client, not only through the API. (Restart durability itself is durability.test.ts's.)
 */
import { Client, Connection } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { startFakeSlack, type FakeSlack } from '../../dev/fake-slack.js';
import { blockActionPayload, sendInteraction } from '../helpers/slack.js';
import { perTest } from './fixtures.js';
import {
  ADMIN_TOKEN,
  requestBody,
  SIGNING_SECRET,
  startHarness,
  TEST_POLICY,
  type Created,
  type Harness,
} from './harness.js';
import { apiClient, childEnv, pollUntil, type ApiClient } from './procs.js';

const { onCleanup, workspace, devServer, workerProc, apiServer } = perTest('faults');

/** Requests on a task queue as Temporal's visibility counts them; polled until it reports `expected` (eventual). */
async function countRequests(address: string, taskQueue: string, expected: number, extra = ''): Promise<number> {
  const connection = await Connection.connect({ address });
  try {
    const client = new Client({ connection });
    const query = `WorkflowType = 'approvalWorkflow' AND TaskQueue = '${taskQueue}'${extra}`;
    let last = -1;
    await pollUntil(
      `${expected} requests in visibility`,
      async () => {
        last = (await client.workflow.count(query)).count;
        return last === expected ? true : undefined;
      },
      { timeoutMs: 20_000 },
    ).catch(() => undefined);
    return last;
  } finally {
    await connection.close();
  }
}

async function expectDecidedOnce(api: ApiClient, requestId: string, by: string): Promise<void> {
  const status = await pollUntil(
    `${requestId} approved`,
    async () => {
      const r = await api.status(requestId);
      return r.status === 200 && r.body.status === 'approved' ? r.body : undefined;
    },
    { timeoutMs: 30_000 },
  );
  expect(status).toMatchObject({ approvalsCount: 1, approvers: [by], decidedBy: by });
  const again = await api.click('approve', requestId, 'U_BOB');
  expect(again.body).toMatchObject({ ok: false, error: 'already_decided' });
}

// ---------------------------------------------------------------------------------------------------------------

describe('Temporal unreachable', () => {
  test('every route answers 503 temporal_unavailable, /readyz degrades and recovers by itself; retries create each request once', async () => {
    const { dir } = await workspace();
    const server = await devServer(dir);
    const h = await startHarness({ temporalAddress: server.address });
    onCleanup(() => h.close());
    const api = apiClient(h.url, SIGNING_SECRET);
    const queue = h.config.TEMPORAL_TASK_QUEUE;

    const before: Created[] = [];
    for (let i = 0; i < 3; i++) before.push(await h.create('simple'));
    expect(await countRequests(server.address, queue, 3)).toBe(3);

    await server.stop();
    expect(await h.get('/readyz')).toMatchObject({
      status: 503,
      body: { status: 'degraded', policy: 'loaded', temporal: 'error' },
    });
    // Liveness is not readiness: a probe must not restart an API that only waits for Temporal.
    expect((await h.get('/healthz')).status).toBe(200);

    const [one] = before as [Created];
    const idem = (i: number) => ({ 'idempotency-key': `outage-${i}` });
    const admin = { 'x-admin-token': ADMIN_TOKEN };
    const calls: Array<[string, () => Promise<{ status: number; body: { error?: string } }>]> = [
      ['create', () => h.post('/api/guard/request', requestBody('simple'), idem(0))],
      ['status', () => h.get(`/api/guard/status?requestId=${one.requestId}`)],
      ['wait', () => h.get(`/api/guard/wait?token=${encodeURIComponent(one.token)}&timeoutSec=1`)],
      ['wait (POST)', () => h.post('/api/guard/wait', { token: one.token })],
      ['wait-sse', () => h.get(`/api/guard/wait-sse?token=${encodeURIComponent(one.token)}`)],
      ['cancel', () => h.post('/api/guard/cancel', { token: one.token })],
      ['rerequest', () => h.post('/api/guard/rerequest', { originalRequestId: one.requestId, actor: 'U_REQ' })],
      ['admin list', () => adminGet(h, '/api/admin/requests')],
      ['admin detail', () => adminGet(h, `/api/admin/requests/${one.requestId}`)],
      [
        'admin decision',
        () =>
          h.post(
            `/api/admin/requests/${one.requestId}/decision`,
            { decision: 'approve', actor: 'admin', reason: 'slack is down', breakGlass: true },
            admin,
          ),
      ],
    ];
    // Agents retry their creates with the same Idempotency-Key while Temporal is away.
    for (let i = 1; i < 3; i++)
      calls.push([`create retry ${i}`, () => h.post('/api/guard/request', requestBody('simple'), idem(i))]);
    const answers = await Promise.all(
      calls.map(async ([what, call]) => {
        const res = await call();
        return { what, status: res.status, error: res.body.error };
      }),
    );
    expect(answers).toEqual(calls.map(([what]) => ({ what, status: 503, error: 'temporal_unavailable' })));
    // A click cannot reach the workflow: Slack still gets its answer, and nothing is decided.
    const click = await h.click('approve', one.requestId, 'U_ALICE');
    expect(click.status).toBe(200);

    await server.start();
    // Nobody restarts the API: it sees Temporal back on its own.
    const ready = await pollUntil(
      'readyz to recover',
      async () => {
        const r = await h.get('/readyz');
        return r.status === 200 ? r : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(ready.body).toEqual({ status: 'ok', policy: 'loaded', temporal: 'ok' });

    // The agent's retries now succeed, and retrying again finds the same requests instead of making new ones.
    const retried: Created[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await pollUntil(
        'the retried create',
        async () => {
          const r = await h.post('/api/guard/request', requestBody('simple'), idem(i));
          return r.status === 200 ? r : undefined;
        },
        { timeoutMs: 30_000 },
      );
      retried.push(res.body as Created);
      const again = await h.post('/api/guard/request', requestBody('simple'), idem(i));
      expect(again.body).toMatchObject({ requestId: (res.body as Created).requestId, idempotentReplay: true });
    }
    expect(await countRequests(server.address, queue, 6)).toBe(6);

    // The click sent during the outage decided nothing; every request is decided exactly once now.
    expect((await api.status(one.requestId)).body).toMatchObject({ status: 'ready_for_approval', approvalsCount: 0 });
    for (const req of [...before, ...retried]) {
      const res = await api.click('approve', req.requestId, 'U_ALICE');
      expect(res.body).toMatchObject({ ok: true });
      await expectDecidedOnce(api, req.requestId, 'U_ALICE');
    }
    expect(await countRequests(server.address, queue, 6, ` AND GuardStatus = 'approved'`)).toBe(6);
  }, 150_000);
});

async function adminGet(h: Harness, path: string) {
  const res = await fetch(`${h.url}${path}`, { headers: { 'x-admin-token': ADMIN_TOKEN } });
  return { status: res.status, body: (await res.json()) as { error?: string } };
}

// ---------------------------------------------------------------------------------------------------------------

describe('worker killed under load', () => {
  const LOAD = 50;
  const CLICK_BATCH = 10;

  /** Waits for the approval; if the click was lost with its timed-out ack, clicks again as the approver would. */
  async function approvedEventually(api: ApiClient, requestId: string): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const done = await pollUntil(
        `${requestId} approved`,
        async () => ((await api.status(requestId)).body.status === 'approved' ? true : undefined),
        { timeoutMs: 10_000 },
      ).catch(() => false);
      if (done) return;
      await api.click('approve', requestId, 'U_ALICE');
    }
  }

  test(`${LOAD} concurrent creates while the worker is SIGKILLed and replaced: all exist, each decided once`, async () => {
    const { dir, policyPath } = await workspace(TEST_POLICY);
    const fakeSlack: FakeSlack = await startFakeSlack();
    onCleanup(() => fakeSlack.close());
    const address = process.env.TEMPORAL_TEST_ADDRESS!;
    const shared = {
      TEMPORAL_ADDRESS: address,
      TEMPORAL_TASK_QUEUE: `faults-${randomUUID()}`,
      POLICY_PATH: policyPath,
      TOKEN_SECRET: 'faults-token-secret',
      SLACK_BOT_TOKEN: 'xoxb-test-token',
      SLACK_API_URL: fakeSlack.url,
      RETENTION_ARCHIVE_DIR: join(dir, 'archive'),
    };
    const { api } = await apiServer(shared, { RATE_LIMIT_CAPACITY: '100000' });
    const workerEnv = childEnv({ ...shared, AUDIT_FILE: join(dir, 'audit.ndjson') });

    const first = workerProc(workerEnv);
    await first.waitForLine(/polling task queue/, 90_000);

    // The load: 50 agents at once. The worker dies while it is starting their workflows and posting to Slack.
    let answered = 0;
    const creates = Array.from({ length: LOAD }, async () => {
      const res = await api.post('/api/guard/request', requestBody('simple'));
      answered++;
      return res;
    });
    await pollUntil('a first part of the load to be answered', async () => (answered >= 10 ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 10,
    });
    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const second = workerProc(workerEnv);

    const results = await Promise.all(creates);
    expect(results.map((r) => r.status)).toEqual(Array(LOAD).fill(200));
    const created = results.map((r) => r.body as Created);
    const ids = created.map((c) => c.requestId);
    const hashOf = new Map(created.map((c) => [c.requestId, c.payloadHash]));
    expect(new Set(ids).size).toBe(LOAD);
    expect(await countRequests(address, shared.TEMPORAL_TASK_QUEUE, LOAD)).toBe(LOAD);

    await second.waitForLine(/polling task queue/, 90_000);
    // Every request is there, and each is decided by exactly one approval.
    for (let i = 0; i < LOAD; i += CLICK_BATCH) {
      const batch = ids.slice(i, i + CLICK_BATCH);
      const clicks = await Promise.all(batch.map((id) => api.click('approve', id, 'U_ALICE', hashOf.get(id))));
      // An empty ack is Slack's 3 s budget running out on a busy machine; the click may still have landed.
      for (const click of clicks) expect(click.body === '' || click.body.ok === true).toBe(true);
    }
    for (const id of ids) await approvedEventually(api, id);
    for (const id of ids) await expectDecidedOnce(api, id, 'U_ALICE');
    expect(await countRequests(address, shared.TEMPORAL_TASK_QUEUE, LOAD, ` AND GuardStatus = 'approved'`)).toBe(LOAD);
  }, 180_000);
});

// ---------------------------------------------------------------------------------------------------------------

describe('Slack failing, clock skew', () => {
  let h: Harness;
  let api: ApiClient;

  beforeAll(async () => {
    h = await startHarness();
    api = apiClient(h.url, SIGNING_SECRET);
  }, 60_000);

  afterAll(async () => {
    await h?.close();
  });

  test('Slack answering 5xx to everything does not block decisions; the message catches up afterwards', async () => {
    h.fakeSlack.failFor('*', { status: 503 }, 5_000);
    const req = await h.create('simple');
    // The request's message could not be posted: Slack is down for it.
    await h.fakeSlack.waitFor(
      (c) => c.method === 'chat.postMessage' && c.status === 503 && JSON.stringify(c.args).includes(req.requestId),
      10_000,
    );
    const click = await h.click('approve', req.requestId, 'U_ALICE');
    expect(click.status).toBe(200);
    expect(await h.outcomeOf(click)).toMatchObject({ ok: true, status: 'approved' });
    const waited = await h.get(`/api/guard/wait?token=${encodeURIComponent(req.token)}&timeoutSec=5`);
    expect(waited.body).toMatchObject({ status: 'approved', decidedBy: 'U_ALICE' });
    // Once Slack is back, the retried activities post the request with its outcome.
    await h.fakeSlack.waitFor(
      (c) =>
        c.status === 200 &&
        /chat\.(postMessage|update)/.test(c.method) &&
        JSON.stringify(c.args).includes('Approved by'),
      40_000,
    );
    await expectDecidedOnce(api, req.requestId, 'U_ALICE');
  }, 60_000);

  test.each([
    ['299 s behind', -299],
    ['299 s ahead', 299],
  ])('a Slack timestamp %s is accepted', async (_what, skew) => {
    const req = await h.create('simple');
    const sent = { actionId: 'approve', requestId: req.requestId, userId: 'U_ALICE', channelId: 'C_APPROVALS' };
    const sentAt = Date.now();
    const res = await sendInteraction(h.url, SIGNING_SECRET, clickOn(req), {
      timestampSec: skewedTimestamp(skew, 'inside'),
    });
    expect(res.status).toBe(200);
    expect(await h.outcomeOf(res, { ...sent, sentAt })).toMatchObject({ ok: true, status: 'approved' });
  });

  test.each([
    ['301 s behind', -301],
    ['301 s ahead', 301],
  ])('a Slack timestamp %s is refused as stale, counted, and decides nothing', async (_what, skew) => {
    const req = await h.create('simple');
    const before = await staleCount(h);
    const res = await sendInteraction(h.url, SIGNING_SECRET, clickOn(req), {
      timestampSec: skewedTimestamp(skew, 'outside'),
    });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ error: 'stale_signature' });
    expect(await staleCount(h)).toBe(before + 1);
    expect((await api.status(req.requestId)).body).toMatchObject({ status: 'ready_for_approval', approvalsCount: 0 });
  });
});

/**
 * Now + `skewSec` in whole seconds (Slack's format), rounded so that the skew the API measures a moment later, with
 * a fraction of a second gone by, stays on the intended side of its 300 s bound.
 */
function skewedTimestamp(skewSec: number, side: 'inside' | 'outside'): number {
  const now = Date.now() / 1000;
  const towardNow = skewSec > 0 === (side === 'inside');
  return (towardNow ? Math.floor(now) : Math.ceil(now)) + skewSec;
}

/** An approval of the params the request was created with (its decision block carries their hash). */
function clickOn(req: { requestId: string; payloadHash: string }) {
  const blockId = `decide:${req.payloadHash}`;
  return blockActionPayload({
    actionId: 'approve',
    value: req.requestId,
    userId: 'U_ALICE',
    channelId: 'C_APPROVALS',
    blockId,
  });
}

async function staleCount(h: Harness): Promise<number> {
  const { values } = await h.metrics.securityEvents.get();
  return values.find((v) => v.labels.type === 'stale_signature')?.value ?? 0;
}
