/**
 * Socket Mode (issue 14 item 5): with SLACK_APP_TOKEN the API dials the fake Slack (apps.connections.open, then its
 * WebSocket) and interactions arrive as envelopes: the same Bolt handlers and refusals as over HTTP, acks within 3 s
 * carrying the modal's answer, replays refused by envelope id, and a connection Slack refreshes or the network drops
 * is opened again by itself.
 */
import { randomUUID } from 'node:crypto';
import { blockActionPayload, viewSubmissionPayload, type InputValues } from '../helpers/slack.js';
import { approvedBy, editable, policyYaml, REPLICAS } from './fixtures.js';
import { startHarness, type Harness } from './harness.js';
import { eventually } from '../helpers/eventually.js';
import { counter, textOf, waitForMessage } from './slack-support.js';

const POLICY = policyYaml({
  routing: { defaultChannel: 'C_APPROVALS' },
  actions: {
    simple: approvedBy(['U0ALICE', 'U0BOB'], 1),
    quorum2: approvedBy(['U0ALICE', 'U0BOB', 'U0CAROL'], 2),
    scale: approvedBy(['U0ALICE'], 1, editable(REPLICAS)),
  },
});

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ policy: POLICY, env: { SLACK_APP_TOKEN: 'xapp-1-A0FAKEAPP-1-socket' } });
  await h.api.socketMode?.ready;
  await h.fakeSlack.socket.waitForConnections(1);
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const wait = async (token: string) =>
  (await h.get(`/api/guard/wait?token=${encodeURIComponent(token)}&timeoutSec=10`)).body;
const status = async (requestId: string) => (await h.get(`/api/guard/status?requestId=${requestId}`)).body;

/** A connection opened after the `opened`-th, and it alone open. */
const reconnected = (opened: number) =>
  h.fakeSlack.socket.connectionsOpened > opened &&
  h.fakeSlack.socket.openConnections === 1 &&
  h.api.socketMode?.connected();

/** A button click as Slack delivers it over the socket (an approval names the params it saw, as the message's does). */
async function click(actionId: string, requestId: string, userId: string, opts: { triggerId?: string } = {}) {
  const blockId = actionId === 'approve' ? await decisionBlock(requestId) : undefined;
  const payload = blockActionPayload({
    actionId,
    value: requestId,
    userId,
    channelId: 'C_APPROVALS',
    ...opts,
    ...(blockId ? { blockId } : {}),
  });
  return h.fakeSlack.socket.sendInteractive(payload);
}

async function decisionBlock(requestId: string): Promise<string> {
  const { payloadHash } = (await h.get(`/api/guard/status?requestId=${requestId}`)).body as { payloadHash: string };
  return `decide:${payloadHash}`;
}

describe('interactions over Socket Mode', () => {
  test('a click through Socket Mode approves a request end to end', async () => {
    expect(h.api.socketMode?.connected()).toBe(true);
    const req = await h.create('simple');
    await waitForMessage(h, req.requestId);
    const ack = await click('approve', req.requestId, 'U0ALICE');
    expect(ack.ackMs).toBeLessThan(3000);
    expect(ack.payload).toMatchObject({ ok: true, status: 'received', requestId: req.requestId });
    expect(await wait(req.token)).toMatchObject({ status: 'approved', decidedBy: 'U0ALICE', approvers: ['U0ALICE'] });
    const m = await waitForMessage(h, req.requestId, (x) => textOf(x).includes('*Approved* by <@U0ALICE>'));
    expect(m.channel).toBe('C_APPROVALS');
    // Nothing went through the HTTP endpoint: no request there was signed or verified.
    expect(await counter(h, 'security_events_total')).toBe(0);
  });

  test('the same refusals: a non-approver is told privately and nothing changes', async () => {
    const req = await h.create('simple');
    const since = Date.now();
    const ack = await click('approve', req.requestId, 'U0MALLORY');
    expect(ack.ackMs).toBeLessThan(3000);
    const notice = await h.fakeSlack.waitFor(
      (c) => c.method === 'chat.postEphemeral' && c.args.user === 'U0MALLORY' && c.at >= since,
      10_000,
    );
    expect(String(notice.args.text)).toMatch(/not authorized/i);
    expect(await status(req.requestId)).toMatchObject({ status: 'ready_for_approval', approvalsCount: 0 });
  });

  test('an envelope delivered twice is acted on once: the replay is acked, counted and audited', async () => {
    const req = await h.create('quorum2');
    const envelopeId = `env-${randomUUID()}`;
    const blockId = await decisionBlock(req.requestId);
    const payload = blockActionPayload({ actionId: 'approve', value: req.requestId, userId: 'U0ALICE', blockId });
    const first = await h.fakeSlack.socket.sendInteractive(payload, { envelopeId });
    expect(first.payload).toMatchObject({ ok: true, status: 'received' });
    const replays = await counter(h, 'security_events_total', { type: 'replay' });
    const again = await h.fakeSlack.socket.sendInteractive(payload, { envelopeId });
    expect(again.payload).toEqual({});
    expect(await counter(h, 'security_events_total', { type: 'replay' })).toBe(replays + 1);
    expect(h.audit.lines()).toContainEqual(expect.objectContaining({ event: 'security_event', envelopeId }));
    await eventually(async () => ((await status(req.requestId)).approvalsCount === 1 ? true : undefined), {
      timeoutMs: 10_000,
      what: 'one approval',
    });
    expect(await status(req.requestId)).toMatchObject({ status: 'ready_for_approval', approvalsCount: 1 });
  });

  test('approve with edits: the button opens the modal, the submission is judged and acked with its answer', async () => {
    const req = await h.create('scale', { params: { replicas: 3 } });
    const triggerId = `${Date.now()}.${randomUUID()}`;
    await click('approve_edit', req.requestId, 'U0ALICE', { triggerId });
    const opened = await h.fakeSlack.waitFor((c) => c.method === 'views.open' && c.args.trigger_id === triggerId);
    expect(opened.status).toBe(200);

    const submit = (value: string) => {
      const values: InputValues = { ov_replicas: { value: { type: 'plain_text_input', value } } };
      return h.fakeSlack.socket.sendInteractive(
        viewSubmissionPayload({
          userId: 'U0ALICE',
          callbackId: 'override_submit',
          privateMetadata: { request_id: req.requestId },
          values,
        }),
      );
    };
    const refused = await submit('lots');
    expect(refused.ackMs).toBeLessThan(3000);
    expect(refused.payload).toMatchObject({ response_action: 'errors', errors: { ov_replicas: expect.any(String) } });
    const applied = await submit('7');
    expect(applied.payload).toEqual({});
    const final = await wait(req.token);
    expect(final).toMatchObject({ status: 'approved', decidedBy: 'U0ALICE', effectiveParams: { replicas: 7 } });
  });
});

describe('the connection', () => {
  test('Slack asks for a refresh: the client reconnects with a new ticket and clicks keep working', async () => {
    const opened = h.fakeSlack.socket.connectionsOpened;
    h.fakeSlack.socket.disconnect('refresh_requested');
    await eventually(() => (reconnected(opened) ? true : undefined), { timeoutMs: 20_000, what: 'a new connection' });
    const req = await h.create('simple');
    expect((await click('approve', req.requestId, 'U0BOB')).payload).toMatchObject({ ok: true });
    expect(await wait(req.token)).toMatchObject({ status: 'approved', decidedBy: 'U0BOB' });
  });

  test('a dropped connection (no close frame) is opened again by the client', async () => {
    const opened = h.fakeSlack.socket.connectionsOpened;
    h.fakeSlack.socket.drop();
    await eventually(() => (reconnected(opened) ? true : undefined), { timeoutMs: 20_000, what: 'a new connection' });
    expect(h.api.socketMode?.connected()).toBe(true);
    const req = await h.create('simple');
    expect((await click('approve', req.requestId, 'U0ALICE')).payload).toMatchObject({ ok: true });
    expect(await wait(req.token)).toMatchObject({ status: 'approved' });
    // Every connection came from its own apps.connections.open with the app-level token.
    const opens = h.fakeSlack.callsOf('apps.connections.open');
    expect(opens.length).toBe(h.fakeSlack.socket.connectionsOpened);
    expect(opens.every((c) => c.token === 'xapp-1-A0FAKEAPP-1-socket')).toBe(true);
  });
});
