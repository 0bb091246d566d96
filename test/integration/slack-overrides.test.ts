/**
 * Approve with edits through Slack: the button opens the modal of SPEC section 4 (views.open on the fake Slack),
 * the signed view_submission runs the governance of SPEC section 2 in order, and the agent gets the edited params.
 */
import { randomUUID } from 'node:crypto';
import { blockActionPayload, sendInteraction, viewSubmissionPayload, type InputValues } from '../helpers/slack.js';
import { approvedBy, editable, policyYaml, REPLICAS } from './fixtures.js';
import { SIGNING_SECRET, startHarness, type Harness } from './harness.js';
import { actionIds, buttonsOf, counter, eventually, textOf, waitForMessage } from './slack-support.js';

const POLICY = policyYaml({
  routing: { defaultChannel: 'C_APPROVALS' },
  defaults: { superApprovers: ['U0ADMIN'] },
  actions: {
    scale: approvedBy(
      ['U0ALICE', 'U0BOB', 'U_REQ'],
      1,
      editable({
        ...REPLICAS,
        region: { type: 'string', enum: ['eu-west-1', 'us-east-1'] },
        note: { type: 'string' },
        label: { type: 'string' },
      }),
    ),
    scale2: approvedBy(['U0ALICE', 'U0BOB', 'U0CAROL'], 2, editable(REPLICAS)),
    hidden: approvedBy(['U0ALICE'], 1, {
      redactParams: { mode: 'denylist', keys: ['password'] },
      allowParamOverrides: true,
      overrideKeys: ['password', 'replicas'],
    }),
    fixed: approvedBy(['U0ALICE'], 1),
  },
});

const PARAMS = { service: 'web', replicas: 3, region: 'eu-west-1', note: 'x' };

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ policy: POLICY, env: { OVERRIDE_MAX_KEYS: '2', OVERRIDE_MAX_CHARS: '24' } });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const create = (action: string, params: Record<string, unknown> = PARAMS) => h.create(action, { params });
const wait = async (token: string) =>
  (await h.get(`/api/guard/wait?token=${encodeURIComponent(token)}&timeoutSec=10`)).body;
const status = async (requestId: string) => (await h.get(`/api/guard/status?requestId=${requestId}`)).body;

function clickEdit(requestId: string, userId: string, triggerId = `${Date.now()}.${randomUUID()}`) {
  const payload = blockActionPayload({
    actionId: 'approve_edit',
    value: requestId,
    userId,
    channelId: 'C_APPROVALS',
    triggerId,
  });
  return { triggerId, sent: sendInteraction(h.url, SIGNING_SECRET, payload) };
}

function submit(requestId: string, userId: string, edits: Record<string, string | null>) {
  const values: InputValues = Object.fromEntries(
    Object.entries(edits).map(([key, value]) => [`ov_${key}`, { value: { type: 'plain_text_input', value } }]),
  );
  return sendInteraction(
    h.url,
    SIGNING_SECRET,
    viewSubmissionPayload({
      userId,
      callbackId: 'override_submit',
      privateMetadata: { request_id: requestId },
      values,
    }),
  );
}

type ModalAnswer = { response_action?: string; errors?: Record<string, string> };
const modalAnswer = (r: { body: string }): ModalAnswer => (r.body ? (JSON.parse(r.body) as ModalAnswer) : {});

async function rejections(action: string, reason: string) {
  return {
    reason: await counter(h, 'override_rejections_total', { action, reason }),
    rejected: await counter(h, 'param_overrides_total', { action, outcome: 'rejected' }),
  };
}

describe('approve_edit opens the modal', () => {
  test('views.open with the trigger, callback override_submit, request id metadata, one input per key', async () => {
    const req = await create('scale');
    const { triggerId, sent } = clickEdit(req.requestId, 'U0ALICE');
    const ack = await sent;
    expect(ack.status).toBe(200);
    const call = await h.fakeSlack.waitFor((c) => c.method === 'views.open' && c.args.trigger_id === triggerId);
    expect(call.status).toBe(200);
    const view = call.args.view as Record<string, unknown> & { blocks: Array<Record<string, unknown>> };
    expect(view).toMatchObject({ type: 'modal', callback_id: 'override_submit' });
    expect(JSON.parse(String(view.private_metadata))).toEqual({ request_id: req.requestId });
    const inputs = view.blocks.filter((b) => b.type === 'input');
    expect(inputs.map((b) => b.block_id)).toEqual(['ov_replicas', 'ov_region', 'ov_note', 'ov_label']);
    const elements = inputs.map((b) => b.element as Record<string, unknown>);
    expect(elements.every((e) => e.action_id === 'value' && e.type === 'plain_text_input')).toBe(true);
    // Current values prefilled; a key the request does not have yet starts empty.
    expect(elements.map((e) => e.initial_value)).toEqual(['3', 'eu-west-1', 'x', undefined]);
  });

  test('a redacted key is not prefilled: the modal must not show what the message hides', async () => {
    const req = await create('hidden', { password: 'hunter2', replicas: 2 });
    const { triggerId, sent } = clickEdit(req.requestId, 'U0ALICE');
    await sent;
    const call = await h.fakeSlack.waitFor((c) => c.method === 'views.open' && c.args.trigger_id === triggerId);
    expect(JSON.stringify(call.args)).not.toContain('hunter2');
    const inputs = (call.args.view as { blocks: Array<Record<string, unknown>> }).blocks.filter(
      (b) => b.type === 'input',
    );
    expect((inputs[0]?.element as Record<string, unknown>).initial_value).toBeUndefined();
    expect((inputs[1]?.element as Record<string, unknown>).initial_value).toBe('2');
  });

  test.each([
    ['a non-approver', 'scale', 'U0MALLORY', /not authorized/i],
    ['an action without edits (forged button)', 'fixed', 'U0ALICE', /does not allow edits/i],
  ])('refused for %s: no modal, an ephemeral message instead', async (_name, action, user, text) => {
    const req = await create(action);
    const since = Date.now();
    const { triggerId, sent } = clickEdit(req.requestId, user);
    expect((await sent).status).toBe(200);
    const eph = await h.fakeSlack.waitFor(
      (c) => c.method === 'chat.postEphemeral' && c.args.user === user && c.at >= since,
    );
    expect(String(eph.args.text)).toMatch(text);
    expect(h.fakeSlack.callsOf('views.open').some((c) => c.args.trigger_id === triggerId)).toBe(false);
  });
});

describe('override_submit', () => {
  test('applied: closes the modal, approves as the editor, the agent gets the edited params as numbers', async () => {
    const req = await create('scale');
    const before = await status(req.requestId);
    const applied = await counter(h, 'param_overrides_total', { action: 'scale', outcome: 'applied' });
    const res = await submit(req.requestId, 'U0BOB', { replicas: '5', region: 'eu-west-1', note: null });
    expect(res.status).toBe(200);
    expect(res.body).toBe('');
    const final = await wait(req.token);
    expect(final).toMatchObject({ status: 'approved', decidedBy: 'U0BOB', approvers: ['U0BOB'] });
    expect(final.effectiveParams).toEqual({ service: 'web', replicas: 5, region: 'eu-west-1', note: 'x' });
    expect(typeof final.effectiveParams.replicas).toBe('number');
    expect(final.payloadHash).not.toBe(before.payloadHash);
    await eventually(
      async () => (await counter(h, 'param_overrides_total', { action: 'scale', outcome: 'applied' })) === applied + 1,
    );
    const audit = h.audit.lines().find((l) => l.event === 'override_applied' && l.requestId === req.requestId);
    expect(audit).toMatchObject({ actor: 'U0BOB', diff: { replicas: { from: 3, to: 5 } } });
    const m = await waitForMessage(h, req.requestId, (x) => textOf(x).includes('*Approved* by <@U0BOB>'));
    expect(textOf(m)).toContain('Edited by <@U0BOB>: `replicas` 3 → 5');
    expect(textOf(m)).toContain('"replicas": 5');
    expect(actionIds(m)).toEqual([]);
  });

  test('numeric strings become numbers, except where the schema says the key is a string', async () => {
    const req = await create('scale');
    expect((await submit(req.requestId, 'U0ALICE', { replicas: '12', label: '0042' })).body).toBe('');
    const final = await wait(req.token);
    expect(final.effectiveParams).toMatchObject({ replicas: 12, label: '0042' });
  });

  test('an edit voids approvals given to the old values; a click on the old message is refused as stale', async () => {
    const req = await create('scale2', { replicas: 3 });
    const first = await waitForMessage(h, req.requestId);
    const oldBlock = buttonsOf(first)[0]?.blockId ?? '';
    await h.click('approve', req.requestId, 'U0ALICE', { blockId: oldBlock });
    await waitForMessage(h, req.requestId, (m) => textOf(m).includes('Approvals: 1 of 2'));

    expect((await submit(req.requestId, 'U0BOB', { replicas: '4' })).body).toBe('');
    const edited = await status(req.requestId);
    expect(edited).toMatchObject({ status: 'ready_for_approval', approvers: ['U0BOB'], approvalsCount: 1 });
    const m = await waitForMessage(h, req.requestId, (x) => textOf(x).includes('Edited by <@U0BOB>'));
    expect(textOf(m)).toContain('Approvals: 1 of 2');
    expect(textOf(m)).toContain('no longer count: <@U0ALICE>');
    expect(buttonsOf(m)[0]?.blockId).toBe(`decide:${edited.payloadHash}`);

    const stale = await h.click('approve', req.requestId, 'U0ALICE', { blockId: oldBlock });
    expect(await h.outcomeOf(stale)).toMatchObject({ ok: false, error: 'stale_payload' });
    const fresh = await h.click('approve', req.requestId, 'U0ALICE', { blockId: `decide:${edited.payloadHash}` });
    expect(await h.outcomeOf(fresh)).toMatchObject({ ok: true, status: 'approved' });
    const final = await wait(req.token);
    expect(final).toMatchObject({ status: 'approved', approvers: ['U0BOB', 'U0ALICE'] });
    expect(final.effectiveParams).toEqual({ replicas: 4 });
  });

  const cases: Array<[string, Record<string, string>, string, Record<string, RegExp>]> = [
    [
      'more changed keys than OVERRIDE_MAX_KEYS',
      { replicas: '4', region: 'us-east-1', note: 'y' },
      'limit_exceeded',
      { ov_replicas: /at most 2 keys/i, ov_region: /at most 2 keys/i, ov_note: /at most 2 keys/i },
    ],
    [
      'limits before size: too many keys and too long',
      { replicas: '4', region: 'us-east-1', note: 'y'.repeat(40) },
      'limit_exceeded',
      { ov_note: /at most 2 keys/i },
    ],
    ['new values longer than OVERRIDE_MAX_CHARS', { note: 'z'.repeat(30) }, 'diff_size_exceeded', { ov_note: /30/ }],
    [
      'size before schema: too long and invalid',
      { replicas: '999', label: 'l'.repeat(30) },
      'diff_size_exceeded',
      { ov_replicas: /characters/ },
    ],
    ['failing the JSON Schema', { replicas: '99' }, 'schema_validation', { ov_replicas: /50/ }],
    ['a value outside the enum', { region: 'mars-1' }, 'schema_validation', { ov_region: /allowed values/ }],
    ['a non-number where an integer is needed', { replicas: 'many' }, 'schema_validation', { ov_replicas: /integer/ }],
    ['nothing changed', { replicas: '3' }, 'no_change', { ov_replicas: /nothing was changed/i }],
  ];

  test.each(cases)('refused for %s', async (_name, edits, reason, expected) => {
    const req = await create('scale');
    const { payloadHash } = await status(req.requestId);
    const before = await rejections('scale', reason);
    const res = await submit(req.requestId, 'U0ALICE', edits);
    expect(res.status).toBe(200);
    const answer = modalAnswer(res);
    expect(answer.response_action).toBe('errors');
    for (const [block, text] of Object.entries(expected)) expect(answer.errors?.[block]).toMatch(text);
    expect(Object.keys(answer.errors ?? {}).every((b) => /^ov_(replicas|region|note|label)$/.test(b))).toBe(true);
    // Nothing changed on the request.
    expect(await status(req.requestId)).toMatchObject({
      status: 'ready_for_approval',
      approvalsCount: 0,
      payloadHash,
      overrides: [],
    });
    const after = await rejections('scale', reason);
    expect(after.reason).toBe(before.reason + 1);
    expect(after.rejected).toBe(before.rejected + 1);
    const audit = h.audit.lines().filter((l) => l.event === 'override_rejected' && l.requestId === req.requestId);
    expect(audit).toEqual([expect.objectContaining({ reason, actor: 'U0ALICE', action: 'scale' })]);
  });

  test.each([
    ['a non-approver', 'U0MALLORY', 'not_authorized', /not authorized/i],
    ['the requester of their own request', 'U_REQ', 'self_approval', /your own request/i],
  ])('refused in the modal for %s', async (_name, user, reason, text) => {
    const req = await create('scale');
    const res = await submit(req.requestId, user, { replicas: '4' });
    const answer = modalAnswer(res);
    expect(answer).toMatchObject({ response_action: 'errors' });
    expect(answer.errors?.ov_replicas).toMatch(text);
    expect(h.audit.lines().find((l) => l.event === 'override_rejected' && l.requestId === req.requestId)).toMatchObject(
      { reason },
    );
  });

  test('refused once the request is decided', async () => {
    const req = await create('scale');
    await h.click('deny', req.requestId, 'U0BOB');
    const answer = modalAnswer(await submit(req.requestId, 'U0ALICE', { replicas: '4' }));
    expect(answer.errors?.ov_replicas).toMatch(/already been decided/i);
    expect((await wait(req.token)).status).toBe('denied');
  });

  test('unknown request in the metadata: an error in the modal, never a silent close', async () => {
    const answer = modalAnswer(await submit('req_doesnotexist', 'U0ALICE', { replicas: '4' }));
    expect(answer).toMatchObject({ response_action: 'errors', errors: { ov_replicas: expect.any(String) } });
  });
});
