import { randomUUID } from 'node:crypto';
import { eventually as waitUntil } from '../helpers/eventually.js';
import { writeFile } from 'node:fs/promises';
import { approvedBy, standardPolicy, startApi } from './fixtures.js';
import { ADMIN_TOKEN, requestBody, startHarness, type Harness, type JsonResponse } from './harness.js';
import { textOf, waitForMessage } from './slack-support.js';

/** The suite's policy; a test reloads it with a stricter quorum for `retry`. */
const policy = (retryQuorum: number) =>
  standardPolicy({
    simple: approvedBy(['U_ALICE', 'U_BOB'], 1),
    gated: approvedBy(['U_ALICE', 'U_BOB'], 2, { personasRequired: ['DBA'] }),
    retry: approvedBy(['U_ALICE', 'U_BOB'], retryQuorum, { allowReRequest: true }),
    retry_slow: approvedBy(['U_ALICE'], 1, { allowReRequest: true, reRequestCooldownSec: 3600 }),
    retry_cool: approvedBy(['U_ALICE'], 1, { allowReRequest: true, reRequestCooldownSec: 2 }),
    escalating: approvedBy(['U_ALICE', 'U_BOB', 'U_CAROL'], 1, {
      timeoutSec: 4,
      escalation: { escalateBeforeSec: 2, escalationChannel: 'C_ESCALATIONS', escalateMinApprovals: 2 },
    }),
  });
const POLICY = policy(1);
const HEARTBEAT_MS = 200;

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    policy: POLICY,
    env: { SSE_HEARTBEAT_MS: String(HEARTBEAT_MS), ADMIN_TOKENS: OPERATORS.map((o) => `${o}:${tokenOf(o)}`).join(',') },
  });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const admin = { 'x-admin-token': ADMIN_TOKEN };
const status = async (requestId: string) => (await h.get(`/api/guard/status?requestId=${requestId}`)).body;
const counter = async (name: string, labels: Record<string, string>) =>
  (await h.metrics.registry.getSingleMetric(name)?.get())?.values.find((v) =>
    Object.entries(labels).every(([k, val]) => v.labels[k] === val),
  )?.value ?? 0;
const auditOf = (event: string, requestId: string) =>
  h.audit.lines().filter((l) => l.event === event && l.requestId === requestId);
const adminGet = (path: string) => fetchJson('GET', path, undefined, admin);
/** Named operators (ADMIN_TOKENS): each acts with a token of their own, and under that name only. */
const OPERATORS = ['ops', 'ops-alice', 'ops-bob', 'ops-carol'];
function tokenOf(operator: string): string {
  return `token-of-${operator}`;
}
const adminPost = (path: string, body: unknown) => {
  const actor = (body as { actor?: unknown } | undefined)?.actor;
  const token = typeof actor === 'string' && OPERATORS.includes(actor) ? tokenOf(actor) : ADMIN_TOKEN;
  return fetchJson('POST', path, body, { 'x-admin-token': token });
};

async function fetchJson(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${h.url}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json(), headers: res.headers } as JsonResponse;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads until `done` holds (visibility, list, is eventually consistent), through the shared eventually(). */
function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  let last: T | undefined;
  return waitUntil(
    async () => {
      last = await read();
      return done(last) ? last : undefined;
    },
    { timeoutMs, intervalMs: 100, what: 'the condition' },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last value: ${JSON.stringify(last)}`);
  });
}

describe('POST /api/guard/cancel', () => {
  test('the requester cancels an open request: cancelled, counted, audited, Slack message updated', async () => {
    const req = await h.create('simple');
    const before = await counter('cancelled_total', { action: 'simple' });
    const res = await h.post('/api/guard/cancel', { token: req.token, reason: 'no longer needed' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      requestId: req.requestId,
      status: 'cancelled',
      decidedBy: 'U_REQ',
      reason: 'no longer needed',
      terminal: true,
    });
    expect(res.body.receipt).toEqual(expect.any(String));
    expect((await status(req.requestId)).status).toBe('cancelled');

    await eventually(
      () => counter('cancelled_total', { action: 'simple' }),
      (n) => n === before + 1,
    );
    expect(auditOf('request_cancelled', req.requestId)).toEqual([
      expect.objectContaining({ actor: 'U_REQ', reason: 'no longer needed' }),
    ]);
    const posted = await h.fakeSlack.waitFor(
      (c) => c.method === 'chat.postMessage' && JSON.stringify(c.args.blocks ?? '').includes(req.requestId),
    );
    const ts = (posted.response as { ts: string }).ts;
    const updated = await h.fakeSlack.waitFor(
      (c) => c.method === 'chat.update' && c.args.ts === ts && /cancelled/i.test(String(c.args.text)),
    );
    expect(String(updated.args.text)).toContain('cancelled by U_REQ');
  });

  test('a decided request cannot be cancelled: 409 already_decided', async () => {
    const req = await h.create('simple');
    await h.clickOutcome('deny', req.requestId, 'U_ALICE');
    const res = await h.post('/api/guard/cancel', { token: req.token });
    expect(res.status).toBe(409);
    expect(res.body.error).toBe('already_decided');
    expect((await status(req.requestId)).status).toBe('denied');
  });

  test.each([
    ['no token', {}, 400, 'missing_token'],
    ['forged token', { token: 'gt1.req_nope.forged' }, 404, 'not_found'],
    ['reason of the wrong type', { token: 'gt1.a.b', reason: 42 }, 400, 'invalid_payload'],
  ])('%s → refused', async (_name, body, code, error) => {
    const res = await h.post('/api/guard/cancel', body);
    expect(res.status).toBe(code);
    expect(res.body.error).toBe(error);
  });
});

describe('POST /api/guard/rerequest', () => {
  const rerequest = (originalRequestId: string, actor = 'U_REQ') =>
    h.post('/api/guard/rerequest', { originalRequestId, actor });
  const denied = async (action: string) => {
    const req = await h.create(action);
    expect(await h.clickOutcome('deny', req.requestId, 'U_ALICE')).toMatchObject({ ok: true, status: 'denied' });
    return req;
  };

  test('a denied request is re-requested with the same params in the same lineage', async () => {
    const original = await denied('retry');
    const res = await rerequest(original.requestId, 'U_RETRIER');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      requestId: `${original.requestId}_r1`,
      lineageId: original.requestId,
      originalRequestId: original.requestId,
      status: 'ready_for_approval',
    });
    expect(Date.parse(res.body.expiresAt)).toBeGreaterThan(Date.parse(original.expiresAt));
    const [before, after] = [await status(original.requestId), await status(res.body.requestId)];
    expect(after).toMatchObject({ status: 'ready_for_approval', action: 'retry', payloadHash: before.payloadHash });
    expect(auditOf('request_rerequested', res.body.requestId)).toEqual([
      expect.objectContaining({ actor: 'U_RETRIER', originalRequestId: original.requestId }),
    ]);

    // The new token works, and a re-request of the re-request stays in the original's lineage.
    const waited = await h.get(`/api/guard/wait?token=${encodeURIComponent(res.body.token)}&timeoutSec=0`);
    expect(waited.body.requestId).toBe(res.body.requestId);
    await h.clickOutcome('deny', res.body.requestId, 'U_BOB');
    const second = await rerequest(res.body.requestId);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ requestId: `${original.requestId}_r2`, lineageId: original.requestId });

    const listed = await eventually(
      () => adminGet('/api/admin/requests?action=retry&limit=500'),
      (r) => r.body.requests.filter((row: { lineageId: string }) => row.lineageId === original.requestId).length === 2,
    );
    const lineage = listed.body.requests.filter((row: { lineageId: string }) => row.lineageId === original.requestId);
    expect(lineage.map((row: { requestId: string }) => row.requestId).sort()).toEqual([
      `${original.requestId}_r1`,
      `${original.requestId}_r2`,
    ]);
  });

  test('the re-request is judged by the current policy, the original keeps its frozen plan', async () => {
    const original = await denied('retry');
    const stricter = policy(2);
    expect(stricter).not.toBe(POLICY);
    try {
      await writeFile(h.policyPath, stricter);
      expect((await h.post('/api/admin/reload-policy', {}, admin)).status).toBe(200);
      const res = await rerequest(original.requestId);
      expect(res.status).toBe(200);
      expect(res.body.policy.minApprovals).toBe(2);
      expect((await status(res.body.requestId)).minApprovals).toBe(2);
      expect((await status(original.requestId)).minApprovals).toBe(1);
    } finally {
      await writeFile(h.policyPath, POLICY);
      await h.post('/api/admin/reload-policy', {}, admin);
    }
  });

  test('cooldown: nothing within reRequestCooldownSec of the latest request in the lineage → 429 with Retry-After', async () => {
    const original = await denied('retry_slow');
    const res = await rerequest(original.requestId);
    expect(res.status).toBe(429);
    expect(res.body.error).toBe('cooldown');
    expect(res.body.retryAfterSec).toBeGreaterThan(3500);
    expect(res.body.retryAfterSec).toBeLessThanOrEqual(3600);
    expect(res.headers.get('retry-after')).toBe(String(res.body.retryAfterSec));
  });

  test('cooldown counts from the latest request: allowed once it has passed, then cooling again', async () => {
    const original = await denied('retry_cool');
    const early = await rerequest(original.requestId);
    expect(early.status).toBe(429);
    expect(early.body.retryAfterSec).toBeLessThanOrEqual(2);
    await sleep(early.body.retryAfterSec * 1000 + 100);
    const res = await rerequest(original.requestId);
    expect(res.status).toBe(200);
    const again = await rerequest(original.requestId);
    expect(again.status).toBe(429);
    expect(again.body.error).toBe('cooldown');
  });

  test('at most 5 re-requests per lineage per 24 h → 429 rate_limited, on every API replica', async () => {
    const original = await denied('retry');
    for (let i = 1; i <= 5; i++) {
      const res = await rerequest(original.requestId);
      expect(res.status).toBe(200);
      expect(res.body.requestId).toBe(`${original.requestId}_r${i}`);
    }
    const sixth = await rerequest(original.requestId);
    expect(sixth.status).toBe(429);
    expect(sixth.body.error).toBe('rate_limited');
    expect(sixth.body.retryAfterSec).toBeGreaterThan(86_000);
    expect(sixth.headers.get('retry-after')).toBe(String(sixth.body.retryAfterSec));

    const replica = await startApi(h.config);
    try {
      const res = await fetchAt(replica.url, '/api/guard/rerequest', {
        originalRequestId: original.requestId,
        actor: 'x',
      });
      expect(res.status).toBe(429);
      expect(res.body.error).toBe('rate_limited');
    } finally {
      await replica.close();
    }
  });

  test('two replicas racing on one lineage: exactly one re-request wins, the other is cooling down', async () => {
    const original = await denied('retry_cool');
    const replica = await startApi(h.config);
    await sleep(2100);
    try {
      const body = { originalRequestId: original.requestId, actor: 'U_REQ' };
      const results = await Promise.all([
        fetchAt(h.url, '/api/guard/rerequest', body),
        fetchAt(replica.url, '/api/guard/rerequest', body),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual([200, 429]);
      expect(results.find((r) => r.status === 429)?.body.error).toBe('cooldown');
    } finally {
      await replica.close();
    }
  });

  test.each([
    ['an action that does not allow re-requests', 'simple', true, 403, 'not_allowed'],
    ['a request still open', 'retry', false, 403, 'not_allowed'],
  ])('%s → refused', async (_name, action, decide, code, error) => {
    const req = decide ? await denied(action) : await h.create(action);
    const res = await rerequest(req.requestId);
    expect(res.status).toBe(code);
    expect(res.body.error).toBe(error);
  });

  test.each([
    ['unknown original', { originalRequestId: 'req_doesnotexist', actor: 'U_REQ' }, 404, 'not_found'],
    ['query injection in the id', { originalRequestId: "x' OR 1=1", actor: 'U_REQ' }, 400, 'invalid_payload'],
    ['missing actor', { originalRequestId: 'req_x' }, 400, 'invalid_payload'],
  ])('%s → refused', async (_name, body, code, error) => {
    const res = await h.post('/api/guard/rerequest', body);
    expect(res.status).toBe(code);
    expect(res.body.error).toBe(error);
  });
});

describe('GET /api/guard/wait-sse', () => {
  test('one state event at connect and per change (ack, each approval, outcome), then the stream closes', async () => {
    const req = await h.create('gated');
    const stream = await openSse(req.token);
    expect(stream.status).toBe(200);
    expect(stream.contentType).toMatch(/^text\/event-stream/);

    const connected = await stream.next();
    expect(connected).toMatchObject({ event: 'state', data: { status: 'awaiting_personas', approvalsCount: 0 } });
    await h.clickOutcome('persona_ack:DBA', req.requestId, 'U_DBA');
    expect(await stream.next()).toMatchObject({ data: { status: 'ready_for_approval', approvalsCount: 0 } });
    await h.clickOutcome('approve', req.requestId, 'U_ALICE');
    expect(await stream.next()).toMatchObject({ data: { status: 'ready_for_approval', approvers: ['U_ALICE'] } });
    await h.clickOutcome('approve', req.requestId, 'U_BOB');
    const outcome = await stream.next();
    expect(outcome).toMatchObject({ data: { status: 'approved', approvers: ['U_ALICE', 'U_BOB'], terminal: true } });
    expect(stream.events[3]?.data.receipt).toEqual(expect.any(String));
    expect(await stream.next()).toBe('end');

    expect(stream.events.map((e) => e.event)).toEqual(['state', 'state', 'state', 'state']);
    const versions = stream.events.map((e) => e.data.version as number);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(new Set(versions).size).toBe(4);
  });

  test('escalation and expiry each arrive as a state event; the notice goes to the thread and the channel', async () => {
    const req = await h.create('escalating');
    const stream = await openSse(req.token);
    expect(await stream.next()).toMatchObject({ data: { status: 'ready_for_approval', escalated: false } });
    const escalated = await stream.next(10_000);
    expect(escalated).toMatchObject({ data: { status: 'ready_for_approval', escalated: true, minApprovals: 2 } });
    expect(await stream.next(10_000)).toMatchObject({ data: { status: 'expired', escalated: true } });
    expect(await stream.next()).toBe('end');
    expect(stream.events).toHaveLength(3);

    const notices = h.fakeSlack
      .callsOf('chat.postMessage')
      .filter((c) => String(c.args.text).includes('Escalation') && String(c.args.text).includes(req.requestId));
    expect(notices.map((c) => (c.args.thread_ts ? 'thread' : c.args.channel)).sort()).toEqual([
      'C_ESCALATIONS',
      'thread',
    ]);
    expect(auditOf('request_escalated', req.requestId)).toEqual([expect.objectContaining({ minApprovals: 2 })]);
    expect(await counter('escalations_total', { action: 'escalating' })).toBeGreaterThanOrEqual(1);
  }, 30_000);

  test('a decided request: one state event with the receipt, then the stream closes', async () => {
    const req = await h.create('simple');
    await h.clickOutcome('approve', req.requestId, 'U_ALICE');
    const stream = await openSse(req.token);
    expect(await stream.next()).toMatchObject({ event: 'state', data: { status: 'approved' } });
    expect(await stream.next()).toBe('end');
    expect(stream.events[0]?.data.receipt).toEqual(expect.any(String));
  });

  test('heartbeat comments keep an idle stream open; a client disconnect unsubscribes it', async () => {
    const req = await h.create('simple');
    const stream = await openSse(req.token);
    await stream.next();
    await eventually(
      async () => stream.comments,
      (n) => n >= 2,
      HEARTBEAT_MS * 20,
    );
    expect(stream.events).toHaveLength(1);
    expect(h.api.gateway.listenerCount(req.requestId)).toBe(1);
    stream.abort();
    await eventually(
      async () => h.api.gateway.listenerCount(req.requestId),
      (n) => n === 0,
    );
  });

  test('shutting an API replica down ends its open streams instead of waiting for them', async () => {
    const req = await h.create('simple');
    const replica = await startApi(h.config);
    const stream = await openSse(req.token, replica.url);
    expect(await stream.next()).toMatchObject({ data: { status: 'ready_for_approval' } });
    await replica.close();
    expect(await stream.next()).toBe('end');
  });

  test.each([
    ['no token', '', 400, 'missing_token'],
    ['forged token', '?token=gt1.req_x.forged', 404, 'not_found'],
  ])('%s → JSON refusal', async (_name, query, code, error) => {
    const res = await h.get(`/api/guard/wait-sse${query}`);
    expect(res.status).toBe(code);
    expect(res.body).toEqual({ error });
  });
});

describe('admin request routes', () => {
  const uniqueRequester = () => `U_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const createFor = (action: string, requester: string) =>
    h.create(action, {
      meta: { ...requestBody(action).meta, requester: { id: requester, source: 'agent' } },
    });

  test('list filters by requester, status and action through Temporal visibility', async () => {
    const requester = uniqueRequester();
    const a = await createFor('simple', requester);
    const b = await createFor('gated', requester);
    await h.clickOutcome('deny', a.requestId, 'U_ALICE');

    const all = await eventually(
      () => adminGet(`/api/admin/requests?requester=${requester}`),
      (r) => r.body.count === 2,
    );
    expect(all.body.requests.map((r: { requestId: string }) => r.requestId).sort()).toEqual(
      [a.requestId, b.requestId].sort(),
    );
    const deniedOnly = await eventually(
      () => adminGet(`/api/admin/requests?requester=${requester}&status=denied`),
      (r) => r.body.count === 1,
    );
    expect(deniedOnly.body.requests[0]).toMatchObject({
      requestId: a.requestId,
      status: 'denied',
      action: 'simple',
      requester,
    });
    const gated = await adminGet(`/api/admin/requests?requester=${requester}&action=gated`);
    expect(gated.body.requests.map((r: { requestId: string }) => r.requestId)).toEqual([b.requestId]);
    expect(gated.body.requests[0]).toMatchObject({ status: 'awaiting_personas', expiresAt: b.expiresAt });
  });

  test.each([
    ['a quote in a filter', "requester=x'%20OR%20'1'='1"],
    ['a space in a filter', 'action=a%20b'],
    ['an unknown status', 'status=pending'],
    ['a limit out of range', 'limit=100000'],
  ])('list refuses %s → 400 invalid_payload', async (_name, query) => {
    const res = await adminGet(`/api/admin/requests?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_payload');
  });

  test('one request: its state, redaction-safe params and a readable history', async () => {
    const req = await h.create('simple');
    await h.clickOutcome('approve', req.requestId, 'U_ALICE');
    const res = await adminGet(`/api/admin/requests/${req.requestId}`);
    expect(res.status).toBe(200);
    expect(res.body.request).toMatchObject({
      requestId: req.requestId,
      status: 'approved',
      requesterId: 'U_REQ',
      approvers: ['U_ALICE'],
      params: { database: 'orders', steps: 3 },
      receipt: expect.any(String),
    });
    const lines = res.body.history as Array<{ eventId: number; time: string; type: string; summary: string }>;
    expect(lines[0]).toMatchObject({ eventId: 1, type: 'WorkflowExecutionStarted' });
    expect(lines[0]?.summary).toContain('simple requested by U_REQ');
    expect(
      lines.some((l) => l.type === 'WorkflowExecutionSignaled' && l.summary === 'signal approve userId=U_ALICE'),
    ).toBe(true);
    expect(
      lines.some((l) => l.type === 'WorkflowPropertiesModified' && /^state v\d+: approved by U_ALICE$/.test(l.summary)),
    ).toBe(true);
    // Slack calls run as local activities first: a marker naming the activity.
    expect(
      lines.some(
        (l) => l.type === 'MarkerRecorded' && /^postRequestMessage \(local, attempt 1\): done$/.test(l.summary),
      ),
    ).toBe(true);
    expect(lines.some((l) => l.type === 'WorkflowTaskCompleted')).toBe(false);
    for (const l of lines) expect(Date.parse(l.time)).not.toBeNaN();
  });

  test('break-glass decision when Slack is down: applied past personas and quorum, marked, refused once decided', async () => {
    const req = await h.create('gated');
    const decide = (decision: string, breakGlass: boolean) =>
      adminPost(`/api/admin/requests/${req.requestId}/decision`, {
        decision,
        actor: 'ops-alice',
        reason: 'outage',
        breakGlass,
      });
    const respectful = await decide('approve', false);
    expect(respectful).toMatchObject({ status: 409, body: { error: 'not_ready' } });
    expect(respectful.body.message).toContain('breakGlass');
    const res = await decide('approve', true);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'approved',
      decidedBy: 'ops-alice',
      reason: 'outage',
      decidedVia: 'admin',
      breakGlass: true,
    });
    const claims = JSON.parse(Buffer.from(String(res.body.receipt).split('.')[0]!, 'base64url').toString());
    expect(claims).toMatchObject({ via: 'admin', breakGlass: true, outcome: 'approved' });
    expect(auditOf('admin_decision', req.requestId)).toEqual([
      expect.objectContaining({ actor: 'ops-alice', breakGlass: false, result: 'not_ready' }),
      expect.objectContaining({
        actor: 'ops-alice',
        decision: 'approve',
        reason: 'outage',
        breakGlass: true,
        result: 'applied',
      }),
    ]);
    expect(await counter('admin_decisions_total', { action: 'gated', decision: 'approve', break_glass: 'true' })).toBe(
      1,
    );
    await eventually(
      async () => auditOf('request_approved', req.requestId),
      (l) => l.length === 1 && l[0]?.actor === 'ops-alice',
    );
    // Marked for the agent (status and wait) and for the people in the channel (the message's decision line).
    expect((await h.get(`/api/guard/status?requestId=${req.requestId}`)).body).toMatchObject({
      decidedVia: 'admin',
      breakGlass: true,
    });
    expect((await h.get(`/api/guard/wait?token=${req.token}`)).body).toMatchObject({ breakGlass: true });
    const message = await waitForMessage(h, req.requestId, (m) => textOf(m).includes('Approved'));
    expect(textOf(message)).toContain('🚨 *admin break-glass* (past the quorum and personas)');

    const again = await decide('deny', false);
    expect(again.status).toBe(409);
    expect(again.body.error).toBe('already_decided');
    expect(auditOf('admin_decision', req.requestId).map((l) => l.result)).toEqual([
      'not_ready',
      'applied',
      'already_decided',
    ]);
  });

  test('admin deny and admin cancel', async () => {
    const denied = await h.create('simple');
    const deny = await adminPost(`/api/admin/requests/${denied.requestId}/decision`, {
      decision: 'deny',
      actor: 'ops-bob',
      reason: 'not during the freeze',
    });
    expect(deny.body).toMatchObject({ status: 'denied', decidedBy: 'ops-bob' });

    const cancelled = await h.create('simple');
    const cancel = await adminPost(`/api/admin/requests/${cancelled.requestId}/cancel`, { actor: 'ops-carol' });
    expect(cancel.status).toBe(200);
    expect(cancel.body).toMatchObject({ status: 'cancelled', decidedBy: 'ops-carol' });
    expect(auditOf('admin_cancel', cancelled.requestId)).toEqual([
      expect.objectContaining({ actor: 'ops-carol', result: 'applied' }),
    ]);
    const again = await adminPost(`/api/admin/requests/${cancelled.requestId}/cancel`, { actor: 'ops-carol' });
    expect(again.status).toBe(409);
    expect(again.body.error).toBe('already_decided');
  });

  test.each([
    ['decision without reason', 'decision', { decision: 'approve', actor: 'ops' }],
    ['unknown decision', 'decision', { decision: 'maybe', actor: 'ops', reason: 'r' }],
    ['cancel without actor', 'cancel', {}],
  ])('%s → 400 invalid_payload', async (_name, route, body) => {
    const req = await h.create('simple');
    const res = await adminPost(`/api/admin/requests/${req.requestId}/${route}`, body);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_payload');
    expect((await status(req.requestId)).status).toBe('ready_for_approval');
  });

  test.each([
    ['GET', '/api/admin/requests/req_doesnotexist', undefined],
    ['POST', '/api/admin/requests/req_doesnotexist/decision', { decision: 'approve', actor: 'admin', reason: 'r' }],
    ['POST', '/api/admin/requests/req_doesnotexist/cancel', { actor: 'admin' }],
  ])('%s %s → 404 not_found', async (method, path, body) => {
    const res = await fetchJson(method, path, body, admin);
    expect(res.status).toBe(404);
    expect(res.body.error).toBe('not_found');
  });

  test.each([
    ['GET', '/api/admin/requests', undefined],
    ['GET', '/api/admin/requests/req_x', undefined],
    ['POST', '/api/admin/requests/req_x/decision', { decision: 'approve', actor: 'ops', reason: 'r' }],
    ['POST', '/api/admin/requests/req_x/cancel', { actor: 'ops' }],
  ])('%s %s without the admin token → 401, counted', async (method, path, body) => {
    const before = await counter('security_events_total', { type: 'unauthorized' });
    const missing = await fetchJson(method, path, body);
    const wrong = await fetchJson(method, path, body, { 'x-admin-token': 'wrong' });
    for (const res of [missing, wrong]) {
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: 'unauthorized' });
    }
    expect(await counter('security_events_total', { type: 'unauthorized' })).toBe(before + 2);
  });
});

async function fetchAt(base: string, path: string, body: unknown): Promise<JsonResponse> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json(), headers: res.headers } as JsonResponse;
}

interface SseEvent {
  event: string;
  data: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** A minimal EventSource over fetch that keeps every event and counts comment lines (heartbeats). */
async function openSse(token: string, base = h.url) {
  const abort = new AbortController();
  const res = await fetch(`${base}/api/guard/wait-sse?token=${encodeURIComponent(token)}`, { signal: abort.signal });
  if (!res.body) throw new Error('no body');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const events: SseEvent[] = [];
  let returned = 0;
  let ended = false;
  const stream = {
    status: res.status,
    contentType: res.headers.get('content-type') ?? '',
    events,
    comments: 0,
    abort: () => abort.abort(),
    /** The next event not yet returned, or 'end' once the server closed the stream. */
    async next(timeoutMs = 5000): Promise<SseEvent | 'end'> {
      await waitUntil(() => (returned < events.length || ended ? true : undefined), {
        timeoutMs,
        intervalMs: 20,
        what: 'the next SSE event',
      });
      return returned < events.length ? (events[returned++] as SseEvent) : 'end';
    },
  };
  // One reader for the stream's lifetime: heartbeats are counted even while no test step waits for an event.
  void (async () => {
    let buffer = '';
    try {
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        buffer += chunk.value;
        for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          if (block.startsWith(':')) stream.comments += 1;
          else events.push(parseBlock(block));
        }
      }
    } catch {
      // aborted by the test
    } finally {
      ended = true;
    }
  })();
  return stream;
}

function parseBlock(block: string): SseEvent {
  const fields = Object.fromEntries(
    block.split('\n').map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]),
  );
  return { event: fields.event ?? '', data: JSON.parse(fields.data ?? 'null') };
}
