/**
 * Replays never count (issue 15 item 3), end to end: the workflow applies each Slack delivery at most once by its
 * identity, so a delivery replayed after the API restarted (its in-memory replay cache gone, no Redis) changes
 * nothing; and an approval must name the params it was shown.
 */
import { Writable } from 'node:stream';
import { formBody, blockActionPayload, signSlackRequest } from '../helpers/slack.js';
import { eventually } from '../helpers/eventually.js';
import { startApiServer } from '../../service/api-server.js';
import { createAuditLog } from '../../observability/audit.js';
import { createMetrics } from '../../observability/metrics.js';
import { fetchJson, SIGNING_SECRET, startHarness, type Harness } from './harness.js';
import { workflowIdOf } from '../../gateway/ids.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const statusOf = async (base: string, requestId: string) =>
  (await fetchJson(base, 'GET', `/api/guard/status?requestId=${requestId}`)).body as {
    status: string;
    approvers: string[];
    payloadHash: string;
  };

test('a delivery replayed to a restarted API (memory replay cache) has no effect', async () => {
  const req = await h.create('quorum2');
  const raw = formBody(
    blockActionPayload({
      actionId: 'approve',
      value: req.requestId,
      userId: 'U_ALICE',
      channelId: 'C_APPROVALS',
      blockId: `decide:${req.payloadHash}`,
    }),
  );
  const headers = { ...signSlackRequest(SIGNING_SECRET, raw) };
  const deliver = (base: string) => fetchJson(base, 'POST', '/api/slack/interactions', raw, headers);
  expect((await deliver(h.url)).body).toMatchObject({ ok: true, status: 'received' });
  await eventually(async () => ((await statusOf(h.url, req.requestId)).approvers.length === 1 ? true : undefined), {
    timeoutMs: 10_000,
    what: "Alice's approval",
  });

  // Another API process, as after a restart: it has never seen the signature.
  const restarted = await startApiServer({
    config: h.config,
    metrics: createMetrics(),
    audit: createAuditLog({ stream: new Writable({ write: (_c, _e, cb) => cb() }) }),
  });
  try {
    const replay = await deliver(restarted.url);
    expect(replay).toMatchObject({ status: 200, body: { ok: true, status: 'received' } });
    // Bob's approval after the replay: had the replay counted, Alice's would have been refused as a duplicate and
    // told to her; it is applied once, and Bob's decides.
    const bob = await h.clickOutcome('approve', req.requestId, 'U_BOB');
    expect(bob).toMatchObject({ ok: true, status: 'approved' });
    expect((await statusOf(h.url, req.requestId)).approvers).toEqual(['U_ALICE', 'U_BOB']);
    // The workflow ends only once every refusal notice went out: had the replay been applied (a duplicate), Alice
    // would have been told.
    await h.client.workflow.getHandle(workflowIdOf(req.requestId)).result();
    const toldAlice = h.fakeSlack.callsOf('chat.postEphemeral').filter((c) => c.args.user === 'U_ALICE');
    expect(toldAlice).toEqual([]);
  } finally {
    await restarted.close();
  }
});

test('an approval without the payload hash it was shown is refused and counts for nothing', async () => {
  const req = await h.create('simple');
  const res = await h.click('approve', req.requestId, 'U_ALICE', { blockId: 'decision' });
  expect(res.json).toMatchObject({ ok: false, error: 'stale_payload' });
  expect((await statusOf(h.url, req.requestId)).status).toBe('ready_for_approval');
});
