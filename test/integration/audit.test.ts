import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { REDACTED } from '../../domain/redaction.js';
import { blockActionPayload, sendInteraction, viewSubmissionPayload } from '../helpers/slack.js';
import { approvedBy, standardPolicy } from './fixtures.js';
import {
  ADMIN_TOKEN,
  currentDecisionBlock,
  SIGNING_SECRET,
  startHarness,
  type Created,
  type Harness,
} from './harness.js';
import { workflowIdOf } from '../../gateway/ids.js';

const POLICY = standardPolicy({
  simple: approvedBy(['U_ALICE', 'U_BOB'], 1),
  personas: approvedBy(['U_ALICE', 'U_BOB'], 1, { personasRequired: ['DBA'] }),
  secretive: approvedBy(['U_ALICE', 'U_BOB'], 1, {
    redactParams: { mode: 'denylist', keys: ['password'] },
    allowParamOverrides: true,
    overrideKeys: ['password', 'steps'],
  }),
  esc: approvedBy(['U_ALICE'], 1, { timeoutSec: 4, escalation: { escalateBeforeSec: 2 } }),
});

const PASSWORD = 'hunter2-original-password';
const NEW_PASSWORD = 'n3w-pass-secret';
const TOO_LONG = 'x'.repeat(40);
const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ policy: POLICY, env: { OVERRIDE_MAX_CHARS: '20' } });
}, 120_000);

afterAll(async () => {
  await h?.close();
});

/** A click as Slack delivers it; an approval carries the hash of the params shown, as the message's button does. */
const click = async (actionId: string, requestId: string, userId: string) => {
  const blockId = actionId === 'approve' ? await currentDecisionBlock(h.url, requestId) : undefined;
  const payload = blockActionPayload({
    actionId,
    value: requestId,
    userId,
    channelId: 'C1',
    ...(blockId ? { blockId } : {}),
  });
  return sendInteraction(h.url, SIGNING_SECRET, payload);
};

const submitEdit = (requestId: string, values: Record<string, string>) =>
  sendInteraction(
    h.url,
    SIGNING_SECRET,
    viewSubmissionPayload({
      userId: 'U_ALICE',
      callbackId: 'override_submit',
      privateMetadata: { request_id: requestId },
      values: Object.fromEntries(
        Object.entries(values).map(([k, v]) => [`ov_${k}`, { value: { type: 'plain_text_input', value: v } }]),
      ),
    }),
  );

describe('the audit trail of a scenario touching every fact of SPEC section 6', () => {
  const created: Record<string, Created> = {};
  let lines: Array<Record<string, unknown>>;

  beforeAll(async () => {
    created.personas = await h.create('personas');
    await click('persona_ack:DBA', created.personas.requestId, 'U_DBA');
    await click('approve', created.personas.requestId, 'U_ALICE');
    created.denied = await h.create('simple');
    await click('deny', created.denied.requestId, 'U_BOB');
    created.cancelled = await h.create('simple');
    expect((await h.post('/api/guard/cancel', { token: created.cancelled.token })).status).toBe(200);
    created.secretive = await h.create('secretive', { params: { password: PASSWORD, steps: 3 } });
    const rejected = await submitEdit(created.secretive.requestId, { password: TOO_LONG, steps: '3' });
    expect(rejected.body).toContain('errors');
    const applied = await submitEdit(created.secretive.requestId, { password: NEW_PASSWORD, steps: '5' });
    expect(applied.status).toBe(200);
    expect(applied.body).not.toContain('errors');
    created.esc = await h.create('esc');
    const forged = await sendInteraction(
      h.url,
      SIGNING_SECRET,
      blockActionPayload({ actionId: 'approve', value: created.denied.requestId, userId: 'U_ALICE' }),
      { signature: `v0=${'0'.repeat(64)}` },
    );
    expect(forged.status).toBe(400);
    expect((await h.post('/api/admin/reload-policy', {}, { 'x-admin-token': 'wrong-admin-token' })).status).toBe(401);
    expect((await h.post('/api/admin/reload-policy', {}, { 'x-admin-token': ADMIN_TOKEN })).status).toBe(200);
    await Promise.all(
      Object.values(created).map((r) => h.client.workflow.getHandle(workflowIdOf(r.requestId)).result()),
    );
    lines = h.audit.lines();
  }, 60_000);

  const eventsOf = (key: string) => lines.filter((l) => l.requestId === created[key]!.requestId);
  const one = (key: string, event: string) => {
    const found = eventsOf(key).filter((l) => l.event === event);
    expect(found).toHaveLength(1);
    return found[0]!;
  };

  test('each request tells its story once, in order, with who and when', () => {
    const story = (key: string) => eventsOf(key).map((l) => l.event);
    expect(story('personas')).toEqual([
      'request_created',
      'persona_acked',
      'approval_recorded',
      'request_approved',
      'request_archived',
    ]);
    expect(story('denied')).toEqual(['request_created', 'request_denied', 'request_archived']);
    expect(story('cancelled')).toEqual(['request_created', 'request_cancelled', 'request_archived']);
    expect(story('secretive')).toEqual([
      'request_created',
      'override_rejected',
      'override_applied',
      'approval_recorded',
      'request_approved',
      'request_archived',
    ]);
    expect(story('esc')).toEqual(['request_created', 'request_escalated', 'request_expired', 'request_archived']);

    expect(one('personas', 'request_created')).toMatchObject({ actor: 'U_REQ' });
    expect(one('personas', 'persona_acked')).toMatchObject({ actor: 'U_DBA', persona: 'DBA' });
    expect(one('personas', 'request_approved')).toMatchObject({ actor: 'U_ALICE' });
    expect(one('denied', 'request_denied')).toMatchObject({ actor: 'U_BOB' });
    expect(one('cancelled', 'request_cancelled')).toMatchObject({ actor: 'U_REQ' });
    expect(one('esc', 'request_escalated')).toMatchObject({ actor: 'system' });
    expect(one('esc', 'request_expired')).toMatchObject({ actor: 'system' });
    expect(one('secretive', 'override_rejected')).toMatchObject({ actor: 'U_ALICE', reason: 'diff_size_exceeded' });
  });

  test('every line has the request, its action, an actor, the time and a trace id field', () => {
    for (const key of Object.keys(created)) {
      const action = key === 'denied' || key === 'cancelled' ? 'simple' : key;
      for (const line of eventsOf(key)) {
        expect(line).toMatchObject({ action, actor: expect.any(String), time: expect.stringMatching(TIME) });
        // null here (tracing is off in this harness); tracing.test.ts checks the ids when it is on.
        expect(line).toHaveProperty('traceId');
      }
    }
  });

  test('override_applied carries the diff with redacted params hidden', () => {
    expect(one('secretive', 'override_applied')).toMatchObject({
      actor: 'U_ALICE',
      diff: { password: { from: REDACTED, to: REDACTED }, steps: { from: 3, to: 5 } },
    });
  });

  test('policy_reloaded carries the file hash; security_event the refusal', async () => {
    const hash = createHash('sha256')
      .update(await readFile(h.policyPath))
      .digest('hex');
    const reloads = lines.filter((l) => l.event === 'policy_reloaded' && l.source === 'api');
    expect(reloads).toHaveLength(1);
    expect(reloads[0]).toMatchObject({ hash, actor: 'admin', time: expect.stringMatching(TIME) });
    expect(reloads[0]).toHaveProperty('traceId');
    const security = lines.filter((l) => l.event === 'security_event');
    expect(security.map((l) => [l.type, l.route])).toEqual([
      ['bad_signature', '/api/slack/interactions'],
      ['unauthorized', '/api/admin/reload-policy'],
    ]);
    for (const l of security) {
      expect(l).toMatchObject({ actor: expect.any(String), time: expect.stringMatching(TIME) });
      expect(l).toHaveProperty('traceId');
    }
  });

  test('no secret, request token or redacted value appears anywhere in the trail', () => {
    const text = JSON.stringify(lines);
    const secrets = [
      'wrong-admin-token',
      SIGNING_SECRET,
      ADMIN_TOKEN,
      h.config.SLACK_BOT_TOKEN!,
      h.config.TOKEN_SECRET!,
      ...Object.values(created).map((r) => r.token),
    ];
    for (const s of [...secrets, PASSWORD, NEW_PASSWORD, TOO_LONG]) expect(text).not.toContain(s);
  });
});
