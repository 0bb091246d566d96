/**
 * `npm run dev:walkthrough`: drives one request through the whole Slack flow against a running service (started
 * with `npm run dev:slack`), acting as the agent over HTTP and as Slack for the people: every click and modal
 * submission is a signed interaction, built and signed the way Slack does it. Each step checks what it expects and
 * the script exits non-zero at the first surprise, so it doubles as a smoke test.
 *
 * A click is answered as soon as Temporal has it; the script then learns the click's verdict as the people would
 * see it: the request's state (the workflow's `state` query, as `temporal workflow query` would ask it) shows the
 * click's effect, or the fake Slack received the workflow's private notice to the clicker (dev/click-verdict.ts).
 *
 * GUARD_URL (default http://127.0.0.1:8080), SLACK_SIGNING_SECRET (default: the one dev:slack uses),
 * FAKE_SLACK_URL (default http://127.0.0.1:3999, dev:slack's fake Slack), TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE
 * (defaults 127.0.0.1:7233, default: the server dev:slack embeds).
 */
import { workflowIdOf } from '../gateway/ids.js';
import { Client, Connection } from '@temporalio/client';
import { stateQuery } from '../workflows/messages.js';
import { clickVerdict, type ClickJudge } from './click-verdict.js';
import { DEV_SIGNING_SECRET } from './dev-slack.js';
import type { FakeSlackCall } from './fake-slack.js';
import { sendInteraction, viewSubmissionPayload } from './slack-interactions.js';
import { blockActionPayload } from './slack-signing.js';

const baseUrl = (process.env.GUARD_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
const secret = process.env.SLACK_SIGNING_SECRET ?? DEV_SIGNING_SECRET;
const fakeSlackUrl = (process.env.FAKE_SLACK_URL ?? 'http://127.0.0.1:3999').replace(/\/+$/, '');
const CHANNEL = 'C_APPROVALS';
let judge: ClickJudge | null = null;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let stepNo = 0;
function step(title: string): void {
  stepNo += 1;
  console.log(`\n${stepNo}. ${title}`);
}

function expectThat(ok: boolean, what: string, got: unknown): void {
  console.log(`   ${ok ? '✔' : '✘'} ${what}${ok ? '' : `\n     got: ${JSON.stringify(got)}`}`);
  if (!ok) throw new Error(`walkthrough stopped at step ${stepNo}: ${what}`);
}

async function http(method: string, path: string, body?: unknown): Promise<Json> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as Json;
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const status = (requestId: string) => http('GET', `/api/guard/status?requestId=${requestId}`);

async function click(actionId: string, requestId: string, userId: string, blockId?: string): Promise<Json> {
  const sent = { actionId, requestId, userId, channelId: CHANNEL, sentAt: Date.now() };
  const payload = blockActionPayload({
    actionId,
    value: requestId,
    userId,
    channelId: CHANNEL,
    ...(blockId ? { blockId } : {}),
  });
  const res = await sendInteraction(baseUrl, secret, payload);
  if (res.status !== 200) throw new Error(`click ${actionId} → ${res.status} ${res.body}`);
  console.log(`   ${userId} clicks ${actionId}: ${res.body || '(acknowledged)'}`);
  const ack = (res.json ?? {}) as Json;
  // approve_edit only opens the modal: there is no verdict to wait for.
  if (actionId === 'approve_edit' || !ack.clickId || !judge) return ack;
  const verdict = await clickVerdict(judge, sent, ack);
  console.log(`   the verdict: ${JSON.stringify(verdict)}`);
  return verdict;
}

/** The fake Slack's records, read over HTTP: dev:slack runs it in its own process. */
async function ephemerals(): Promise<FakeSlackCall[]> {
  const res = await fetch(`${fakeSlackUrl}/_fake/calls?method=chat.postEphemeral`);
  if (!res.ok) throw new Error(`fake Slack at ${fakeSlackUrl}: ${res.status} (set FAKE_SLACK_URL)`);
  return ((await res.json()) as { calls: FakeSlackCall[] }).calls;
}

async function submitEdits(requestId: string, userId: string, edits: Record<string, string>): Promise<Json> {
  const values = Object.fromEntries(
    Object.entries(edits).map(([k, v]) => [`ov_${k}`, { value: { type: 'plain_text_input' as const, value: v } }]),
  );
  const payload = viewSubmissionPayload({
    userId,
    callbackId: 'override_submit',
    privateMetadata: { request_id: requestId },
    values,
  });
  const res = await sendInteraction(baseUrl, secret, payload);
  if (res.status !== 200) throw new Error(`override_submit → ${res.status} ${res.body}`);
  console.log(`   ${userId} submits ${JSON.stringify(edits)}: ${res.body || '(modal closes)'}`);
  return (res.json ?? {}) as Json;
}

/** Lets the worker render the change, so the dev:slack console shows each state in order. */
const settle = () => new Promise((r) => setTimeout(r, 400));

async function main(): Promise<void> {
  const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
  const temporal = new Client({ connection, namespace: process.env.TEMPORAL_NAMESPACE ?? 'default' });
  judge = { readState: (id) => temporal.workflow.getHandle(workflowIdOf(id)).query(stateQuery), ephemerals };
  try {
    await walk();
  } finally {
    await connection.close();
  }
}

async function walk(): Promise<void> {
  const { requestId, token, firstHash } = await toFirstApproval();
  const editedHash = await editAsBob(requestId, firstHash);
  await finish(requestId, token, firstHash, editedHash);
  console.log('\nDone: the dev:slack console shows every message, update, modal and ephemeral answer.');
}

/** Steps 1–4: the request, a refused early click, the persona, the first approval. */
async function toFirstApproval(): Promise<{ requestId: string; token: string; firstHash: string }> {
  step('An agent asks to run a migration (POST /api/guard/request)');
  const created = await http('POST', '/api/guard/request', {
    action: 'run_migration',
    params: { database: 'orders', target_version: 'v42', batch_size: 500, db_password: 's3cr3t' },
    meta: {
      origin: { repo: 'acme/shop', branch: 'main', pr: 1234 },
      requester: { id: 'U_AGENT', source: 'agent', display: 'release-bot' },
      justification: 'Ship the orders schema change with release 42',
    },
  });
  const { requestId, token } = created as { requestId: string; token: string };
  expectThat(created.status === 'awaiting_personas', 'it waits for the DBA persona', created);
  console.log(`   request ${requestId}; the message is posted to ${CHANNEL} (db_password shown as «redacted»)`);
  await settle();

  step('Alice tries to approve before the DBA has acknowledged');
  const early = await click('approve', requestId, 'U_ALICE', `decide:${String((await status(requestId)).payloadHash)}`);
  expectThat(early.error === 'not_ready', 'refused with not_ready, and told so in an ephemeral message', early);

  step('The DBA acknowledges');
  const acked = await click('persona_ack:DBA', requestId, 'U_DBA');
  expectThat(acked.status === 'ready_for_approval', 'the request is ready; Approve / Deny / Edit appear', acked);
  await settle();

  step('Alice approves (quorum is 2)');
  const first = await status(requestId);
  const approved = await click('approve', requestId, 'U_ALICE', `decide:${first.payloadHash}`);
  expectThat(approved.ok === true && approved.status === 'ready_for_approval', 'the message shows 1 of 2', approved);
  await settle();
  return { requestId, token, firstHash: first.payloadHash as string };
}

/** Steps 5–7: the edit modal, a refused edit, the edit that voids Alice's approval. */
async function editAsBob(requestId: string, firstHash: string): Promise<string> {
  step('Bob clicks "Approve with edits": the modal opens (views.open, see the dev:slack console)');
  await click('approve_edit', requestId, 'U_BOB');
  await settle();

  step('Bob submits a batch size the schema refuses');
  const refused = await submitEdits(requestId, 'U_BOB', { batch_size: 'lots' });
  expectThat(
    refused.response_action === 'errors' && typeof refused.errors?.ov_batch_size === 'string',
    'the modal shows the error under batch_size',
    refused,
  );

  step('Bob submits batch_size 250');
  const applied = await submitEdits(requestId, 'U_BOB', { batch_size: '250' });
  expectThat(Object.keys(applied).length === 0, 'the modal closes', applied);
  const edited = await status(requestId);
  expectThat(
    edited.approvalsCount === 1 && edited.approvers[0] === 'U_BOB' && edited.payloadHash !== firstHash,
    "the edit counts as Bob's approval and voids Alice's (given to the old values)",
    edited,
  );
  await settle();
  return edited.payloadHash as string;
}

/** Steps 8–9: a stale click refused, the deciding approval, the agent's answer. */
async function finish(requestId: string, token: string, firstHash: string, editedHash: string): Promise<void> {
  step("Alice's old button is stale; she approves the edited request");
  const stale = await click('approve', requestId, 'U_ALICE', `decide:${firstHash}`);
  expectThat(stale.error === 'stale_payload', 'a click on the old values is refused', stale);
  const final = await click('approve', requestId, 'U_ALICE', `decide:${editedHash}`);
  expectThat(final.status === 'approved', 'approved; the message names who decided and has no buttons', final);

  step('The agent collects the decision (GET /api/guard/wait)');
  const decision = await http('GET', `/api/guard/wait?token=${encodeURIComponent(token)}`);
  console.log(`   ${JSON.stringify({ status: decision.status, effectiveParams: decision.effectiveParams })}`);
  expectThat(
    decision.status === 'approved' && decision.effectiveParams?.batch_size === 250,
    'the agent runs with the edited params (batch_size is the number 250)',
    decision,
  );
}

main().catch((err: unknown) => {
  console.error(`\n${(err as Error).message}`);
  process.exit(1);
});
