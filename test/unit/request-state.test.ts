import type { Plan } from '../../domain/plan.js';
import { payloadHash } from '../../domain/payload-hash.js';
import {
  checkOverride,
  initialState,
  reduce,
  REFUSAL_REASONS,
  type Command,
  type DomainEvent,
  type RefusalReason,
  type RequestState,
} from '../../domain/request-state.js';
import { makePlan, makeRequest } from '../fixtures/plans.js';

const CREATED = '2030-01-01T00:00:00.000Z';
const EXPIRES = '2030-01-01T01:00:00.000Z';
const NOW = '2030-01-01T00:10:00.000Z';
const PARAMS = { database: 'orders', steps: 3 };

const SECURITY = { name: 'Security', members: ['U_SEC'] };
/** No members listed in the policy: any allowed approver may acknowledge. */
const DBA = { name: 'DBA', members: [] };
const EDITABLE = { allowed: true, keys: ['steps', 'database'], schema: null, maxKeys: 10, maxChars: 2000 };
const ESCALATION = { escalateBeforeSec: 600, channel: 'C_ESC', minApprovals: 2 };

function start(planOverrides: Partial<Plan> = {}): { plan: Plan; state: RequestState } {
  const plan = makePlan(planOverrides);
  const request = makeRequest({ params: { ...PARAMS } });
  return { plan, state: initialState({ requestId: 'req_1', request, plan, createdAt: CREATED, expiresAt: EXPIRES }) };
}

/** Applies accepted commands in order, failing the test if one is refused; checks the version rule on each. */
function run(state: RequestState, plan: Plan, commands: Command[]): { state: RequestState; events: DomainEvent[] } {
  let current = state;
  let events: DomainEvent[] = [];
  for (const command of commands) {
    const t = reduce(current, plan, command, NOW);
    if (!t.ok) throw new Error(`setup command ${JSON.stringify(command)} refused: ${t.reason}`);
    expect(t.state.version).toBe(current.version + 1);
    current = t.state;
    events = t.events;
  }
  return { state: current, events };
}

const ack = (persona: string, userId: string): Command => ({ type: 'persona_ack', persona, userId });
const approve = (userId: string, seenPayloadHash?: string): Command => ({ type: 'approve', userId, seenPayloadHash });
const edit = (userId: string, changes: Record<string, unknown>): Command => ({ type: 'override', userId, changes });

describe('initial state', () => {
  test.each<[string, Partial<Plan>, RequestState['status']]>([
    ['with personas required it awaits them', { personas: [SECURITY] }, 'awaiting_personas'],
    ['without personas it is ready at once', {}, 'ready_for_approval'],
  ])('%s', (_name, overrides, status) => {
    const { state } = start(overrides);
    expect(state).toMatchObject({
      status,
      version: 1,
      requesterId: 'U_REQ',
      approvals: [],
      minApprovals: 1,
      escalated: false,
      decidedAt: null,
      payloadHash: payloadHash(PARAMS),
      effectiveParams: PARAMS,
    });
  });

  test('persona state lists every required persona as not acknowledged', () => {
    const { state } = start({ personas: [SECURITY, DBA] });
    expect(state.personaState).toEqual({
      Security: { acked: false, by: null, at: null },
      DBA: { acked: false, by: null, at: null },
    });
  });
});

interface RefusalCase {
  name: string;
  plan?: Partial<Plan>;
  setup?: Command[];
  command: Command;
  reason: RefusalReason;
}

const refusals: RefusalCase[] = [
  { name: 'approve by someone not in the approvers', command: approve('U_MALLORY'), reason: 'not_authorized' },
  {
    name: 'deny by someone not in the approvers',
    command: { type: 'deny', userId: 'U_MALLORY' },
    reason: 'not_authorized',
  },
  {
    name: 'edit by someone not in the approvers',
    plan: { overrides: EDITABLE },
    command: edit('U_MALLORY', { steps: 4 }),
    reason: 'not_authorized',
  },
  {
    name: 'persona ack by an approver who is not a listed member',
    plan: { personas: [SECURITY] },
    command: ack('Security', 'U_ALICE'),
    reason: 'not_authorized',
  },
  {
    name: 'persona ack without listed members by a non-approver',
    plan: { personas: [DBA] },
    command: ack('DBA', 'U_MALLORY'),
    reason: 'not_authorized',
  },
  {
    name: 'a second approval by the same user',
    plan: { minApprovals: 2 },
    setup: [approve('U_ALICE')],
    command: approve('U_ALICE'),
    reason: 'duplicate',
  },
  {
    name: 'the requester approving their own request',
    plan: { approvers: ['U_ALICE', 'U_REQ'] },
    command: approve('U_REQ'),
    reason: 'self_approval',
  },
  {
    name: 'the requester editing (and so approving) their own request',
    plan: { approvers: ['U_ALICE', 'U_REQ'], overrides: EDITABLE },
    command: edit('U_REQ', { steps: 4 }),
    reason: 'self_approval',
  },
  {
    name: 'approve while personas are pending',
    plan: { personas: [SECURITY, DBA] },
    setup: [ack('Security', 'U_SEC')],
    command: approve('U_ALICE'),
    reason: 'not_ready',
  },
  {
    name: 'approve with edits while personas are pending',
    plan: { personas: [SECURITY], overrides: EDITABLE },
    command: edit('U_ALICE', { steps: 4 }),
    reason: 'not_ready',
  },
  { name: 'approve after approval', setup: [approve('U_ALICE')], command: approve('U_BOB'), reason: 'already_decided' },
  {
    name: 'deny after denial',
    setup: [{ type: 'deny', userId: 'U_ALICE' }],
    command: { type: 'deny', userId: 'U_BOB' },
    reason: 'already_decided',
  },
  {
    name: 'cancel after expiry',
    setup: [{ type: 'expire' }],
    command: { type: 'cancel', actor: 'U_REQ' },
    reason: 'already_decided',
  },
  {
    name: 'expire after cancel',
    setup: [{ type: 'cancel', actor: 'U_REQ' }],
    command: { type: 'expire' },
    reason: 'already_decided',
  },
  {
    name: 'an admin approval without break-glass while personas are pending',
    plan: { personas: [SECURITY] },
    command: { type: 'admin_decision', decision: 'approve', actor: 'admin:ops' },
    reason: 'not_ready',
  },
  {
    name: 'a second admin approval by the same operator',
    plan: { minApprovals: 2 },
    setup: [{ type: 'admin_decision', decision: 'approve', actor: 'admin:ops' }],
    command: { type: 'admin_decision', decision: 'approve', actor: 'admin:ops' },
    reason: 'duplicate',
  },
  {
    name: 'admin decision after approval',
    setup: [approve('U_ALICE')],
    command: { type: 'admin_decision', decision: 'deny', actor: 'U_ADMIN' },
    reason: 'already_decided',
  },
  {
    name: 'escalate after a decision',
    plan: { escalation: ESCALATION },
    setup: [{ type: 'deny', userId: 'U_ALICE' }],
    command: { type: 'escalate' },
    reason: 'already_decided',
  },
  {
    name: 'persona ack after cancel',
    plan: { personas: [SECURITY] },
    setup: [{ type: 'cancel', actor: 'U_REQ' }],
    command: ack('Security', 'U_SEC'),
    reason: 'already_decided',
  },
  {
    name: 'ack of a persona this request does not require',
    plan: { personas: [SECURITY] },
    command: ack('Legal', 'U_SEC'),
    reason: 'unknown_persona',
  },
  {
    name: 'ack of a persona already acknowledged (by anyone)',
    plan: { personas: [SECURITY, DBA] },
    setup: [ack('DBA', 'U_ALICE')],
    command: ack('DBA', 'U_BOB'),
    reason: 'already_acked',
  },
  {
    name: 'edits when the action allows none',
    command: edit('U_ALICE', { steps: 4 }),
    reason: 'overrides_not_allowed',
  },
  {
    name: 'edit of a key not in overrideKeys',
    plan: { overrides: { ...EDITABLE, keys: ['steps'] } },
    command: edit('U_ALICE', { database: 'billing' }),
    reason: 'invalid_key',
  },
  {
    name: 'edit that changes nothing',
    plan: { overrides: EDITABLE },
    command: edit('U_ALICE', { steps: 3 }),
    reason: 'no_change',
  },
  {
    name: 'edit changing more keys than OVERRIDE_MAX_KEYS',
    plan: { overrides: { ...EDITABLE, maxKeys: 1 } },
    command: edit('U_ALICE', { steps: 4, database: 'billing' }),
    reason: 'limit_exceeded',
  },
  {
    name: 'edit whose new values exceed OVERRIDE_MAX_CHARS',
    plan: { overrides: { ...EDITABLE, maxChars: 5 } },
    command: edit('U_ALICE', { database: 'inventory' }),
    reason: 'diff_size_exceeded',
  },
  {
    name: 'approval of a payload hash that is no longer current',
    command: approve('U_ALICE', 'sha256:what-i-saw-before-the-edit'),
    reason: 'stale_payload',
  },
  { name: 'escalate when the action has no escalation', command: { type: 'escalate' }, reason: 'not_applicable' },
  {
    name: 'a second escalation',
    plan: { escalation: ESCALATION },
    setup: [{ type: 'escalate' }],
    command: { type: 'escalate' },
    reason: 'not_applicable',
  },
];

describe('refusals change nothing', () => {
  test.each(refusals)('$reason: $name', ({ plan: overrides, setup = [], command, reason }) => {
    const { plan, state: initial } = start(overrides);
    const { state } = run(initial, plan, setup);
    const before = structuredClone(state);
    const t = reduce(state, plan, command, NOW);
    expect(t).toEqual({ ok: false, reason, message: expect.any(String) });
    expect(state).toEqual(before);
  });

  test('the table covers every refusal reason (schema_validation is the caller-provided check, below)', () => {
    const covered = new Set<RefusalReason>([...refusals.map((r) => r.reason), 'schema_validation']);
    expect([...covered].sort()).toEqual([...REFUSAL_REASONS].sort());
  });
});

describe('checkOverride governance, in SPEC order', () => {
  const { plan, state } = start({ overrides: { ...EDITABLE, maxKeys: 1, maxChars: 5 } });
  const failing = () => ({ steps: 'must be <= 10' });

  test.each<[string, Record<string, unknown>, RefusalReason | null, boolean]>([
    ['too many keys wins over size and schema', { steps: 400000, database: 'inventory' }, 'limit_exceeded', false],
    ['too many characters wins over the schema', { database: 'inventory' }, 'diff_size_exceeded', false],
    ['the schema is consulted last', { steps: 11 }, 'schema_validation', true],
  ])('%s', (_name, changes, reason, schemaCalled) => {
    let called = false;
    const check = checkOverride(state, plan, changes, () => {
      called = true;
      return failing();
    });
    expect(check.ok).toBe(false);
    expect(check.reason).toBe(reason);
    expect(called).toBe(schemaCalled);
  });

  test('schema_validation carries the field errors and the validator sees the merged params', () => {
    let seen: Record<string, unknown> | undefined;
    const check = checkOverride(state, plan, { steps: 11 }, (params) => {
      seen = params;
      return failing();
    });
    expect(check).toMatchObject({ ok: false, reason: 'schema_validation', fieldErrors: failing() });
    expect(seen).toEqual({ database: 'orders', steps: 11 });
  });

  test('a passing schema yields the diff of changed keys only', () => {
    const editable = start({ overrides: EDITABLE });
    const check = checkOverride(editable.state, editable.plan, { steps: 5, database: 'orders' }, () => null);
    expect(check).toEqual({ ok: true, diff: { steps: { from: 3, to: 5 } } });
  });

  test('invalid keys come with a field error per key', () => {
    const narrow = start({ overrides: { ...EDITABLE, keys: ['steps'] } });
    const check = checkOverride(narrow.state, narrow.plan, { database: 'x', region: 'y' });
    expect(check.fieldErrors).toEqual({ database: expect.any(String), region: expect.any(String) });
  });
});

interface TransitionCase {
  name: string;
  plan?: Partial<Plan>;
  commands: Command[];
  expected: Partial<RequestState>;
  /** Events of the last command. */
  events: DomainEvent[];
}

const editedParams = { database: 'orders', steps: 5 };

const transitions: TransitionCase[] = [
  {
    name: 'one persona acked of two: still awaiting',
    plan: { personas: [SECURITY, DBA] },
    commands: [ack('Security', 'U_SEC')],
    expected: {
      status: 'awaiting_personas',
      personaState: {
        Security: { acked: true, by: 'U_SEC', at: NOW },
        DBA: { acked: false, by: null, at: null },
      },
    },
    events: [{ type: 'persona_acked', persona: 'Security', actor: 'U_SEC' }],
  },
  {
    name: 'all personas acked (member for Security, any approver for DBA): ready',
    plan: { personas: [SECURITY, DBA] },
    commands: [ack('Security', 'U_SEC'), ack('DBA', 'U_BOB')],
    expected: { status: 'ready_for_approval' },
    events: [{ type: 'persona_acked', persona: 'DBA', actor: 'U_BOB' }],
  },
  {
    name: 'quorum 1: one approval decides',
    commands: [approve('U_ALICE')],
    expected: {
      status: 'approved',
      decidedBy: 'U_ALICE',
      decidedAt: NOW,
      approvals: [{ userId: 'U_ALICE', at: NOW, payloadHash: payloadHash(PARAMS) }],
    },
    events: [
      { type: 'approval_recorded', actor: 'U_ALICE', approvals: 1, minApprovals: 1 },
      { type: 'request_approved', actor: 'U_ALICE' },
    ],
  },
  {
    name: 'quorum 2: the first approval is recorded only',
    plan: { minApprovals: 2 },
    commands: [approve('U_ALICE')],
    expected: { status: 'ready_for_approval', decidedBy: null, decidedAt: null },
    events: [{ type: 'approval_recorded', actor: 'U_ALICE', approvals: 1, minApprovals: 2 }],
  },
  {
    name: 'quorum 2: the second distinct approval decides',
    plan: { minApprovals: 2 },
    commands: [approve('U_ALICE'), approve('U_BOB')],
    expected: { status: 'approved', decidedBy: 'U_BOB' },
    events: [
      { type: 'approval_recorded', actor: 'U_BOB', approvals: 2, minApprovals: 2 },
      { type: 'request_approved', actor: 'U_BOB' },
    ],
  },
  {
    name: 'approval naming the current payload hash is accepted',
    commands: [approve('U_ALICE', payloadHash(PARAMS))],
    expected: { status: 'approved' },
    events: [
      { type: 'approval_recorded', actor: 'U_ALICE', approvals: 1, minApprovals: 1 },
      { type: 'request_approved', actor: 'U_ALICE' },
    ],
  },
  {
    name: 'deny with a reason',
    commands: [{ type: 'deny', userId: 'U_BOB', reason: 'not during the freeze' }],
    expected: { status: 'denied', decidedBy: 'U_BOB', reason: 'not during the freeze', decidedAt: NOW },
    events: [{ type: 'request_denied', actor: 'U_BOB', reason: 'not during the freeze' }],
  },
  {
    name: 'deny without a reason, even while personas are pending',
    plan: { personas: [SECURITY] },
    commands: [{ type: 'deny', userId: 'U_BOB' }],
    expected: { status: 'denied', reason: null },
    events: [{ type: 'request_denied', actor: 'U_BOB', reason: null }],
  },
  {
    name: 'cancel by the requester',
    commands: [{ type: 'cancel', actor: 'U_REQ', reason: 'wrong branch' }],
    expected: { status: 'cancelled', decidedBy: 'U_REQ', reason: 'wrong branch' },
    events: [{ type: 'request_cancelled', actor: 'U_REQ', reason: 'wrong branch' }],
  },
  {
    name: 'admin break-glass approves past pending personas and the quorum',
    plan: { personas: [SECURITY], minApprovals: 2 },
    commands: [{ type: 'admin_decision', decision: 'approve', actor: 'admin:ops', breakGlass: true }],
    expected: { status: 'approved', decidedBy: 'admin:ops', approvals: [], decidedVia: 'admin', breakGlass: true },
    events: [{ type: 'request_approved', actor: 'admin:ops' }],
  },
  {
    name: "without break-glass an admin approval is one approval of the quorum, the operator's own",
    plan: { minApprovals: 2 },
    commands: [{ type: 'admin_decision', decision: 'approve', actor: 'admin:ops' }],
    expected: { status: 'ready_for_approval', approvals: [expect.objectContaining({ userId: 'admin:ops' })] },
    events: [{ type: 'approval_recorded', actor: 'admin:ops', approvals: 1, minApprovals: 2 }],
  },
  {
    name: 'without break-glass an admin approval that meets the quorum decides, marked admin',
    commands: [{ type: 'admin_decision', decision: 'approve', actor: 'admin:ops' }],
    expected: { status: 'approved', decidedBy: 'admin:ops', decidedVia: 'admin', breakGlass: false },
    events: [
      { type: 'approval_recorded', actor: 'admin:ops', approvals: 1, minApprovals: 1 },
      { type: 'request_approved', actor: 'admin:ops' },
    ],
  },
  {
    name: 'admin denies with a reason',
    commands: [{ type: 'admin_decision', decision: 'deny', actor: 'admin:ops', reason: 'Slack is down' }],
    expected: { status: 'denied', decidedBy: 'admin:ops', reason: 'Slack is down' },
    events: [{ type: 'request_denied', actor: 'admin:ops', reason: 'Slack is down' }],
  },
  {
    name: 'escalation raises the quorum to escalateMinApprovals',
    plan: { escalation: ESCALATION },
    commands: [{ type: 'escalate' }],
    expected: { escalated: true, escalatedAt: NOW, minApprovals: 2, status: 'ready_for_approval' },
    events: [{ type: 'request_escalated', minApprovals: 2 }],
  },
  {
    name: 'after escalation one approval no longer decides',
    plan: { escalation: ESCALATION },
    commands: [{ type: 'escalate' }, approve('U_ALICE')],
    expected: { status: 'ready_for_approval', minApprovals: 2 },
    events: [{ type: 'approval_recorded', actor: 'U_ALICE', approvals: 1, minApprovals: 2 }],
  },
  {
    name: 'escalation without escalateMinApprovals keeps the quorum',
    plan: { minApprovals: 2, escalation: { ...ESCALATION, minApprovals: null } },
    commands: [{ type: 'escalate' }],
    expected: { escalated: true, minApprovals: 2 },
    events: [{ type: 'request_escalated', minApprovals: 2 }],
  },
  {
    name: 'expiry',
    plan: { personas: [SECURITY] },
    commands: [{ type: 'expire' }],
    expected: { status: 'expired', decidedBy: 'system', decidedAt: NOW, reason: null },
    events: [{ type: 'request_expired' }],
  },
  {
    name: 'an edit voids earlier approvals and counts as the editor’s approval',
    plan: { minApprovals: 2, overrides: EDITABLE },
    commands: [approve('U_ALICE'), edit('U_BOB', { steps: 5 })],
    expected: {
      status: 'ready_for_approval',
      effectiveParams: editedParams,
      payloadHash: payloadHash(editedParams),
      approvals: [{ userId: 'U_BOB', at: NOW, payloadHash: payloadHash(editedParams) }],
      voidedApprovals: [{ userId: 'U_ALICE', at: NOW, payloadHash: payloadHash(PARAMS) }],
      overrides: [
        { by: 'U_BOB', at: NOW, diff: { steps: { from: 3, to: 5 } }, payloadHash: payloadHash(editedParams) },
      ],
    },
    events: [
      { type: 'override_applied', actor: 'U_BOB', diff: { steps: { from: 3, to: 5 } } },
      { type: 'approval_recorded', actor: 'U_BOB', approvals: 1, minApprovals: 2 },
    ],
  },
  {
    name: 'after an edit the voided approver may approve the new payload again',
    plan: { minApprovals: 2, overrides: EDITABLE },
    commands: [approve('U_ALICE'), edit('U_BOB', { steps: 5 }), approve('U_ALICE', payloadHash(editedParams))],
    expected: { status: 'approved', decidedBy: 'U_ALICE', effectiveParams: editedParams },
    events: [
      { type: 'approval_recorded', actor: 'U_ALICE', approvals: 2, minApprovals: 2 },
      { type: 'request_approved', actor: 'U_ALICE' },
    ],
  },
  {
    name: 'with quorum 1 the edit itself decides',
    plan: { overrides: EDITABLE },
    commands: [edit('U_ALICE', { steps: 5 })],
    expected: { status: 'approved', decidedBy: 'U_ALICE', effectiveParams: editedParams },
    events: [
      { type: 'override_applied', actor: 'U_ALICE', diff: { steps: { from: 3, to: 5 } } },
      { type: 'approval_recorded', actor: 'U_ALICE', approvals: 1, minApprovals: 1 },
      { type: 'request_approved', actor: 'U_ALICE' },
    ],
  },
  {
    name: 'an edit adding a key records it as changed from null',
    plan: { minApprovals: 2, overrides: { ...EDITABLE, keys: ['dryRun'] } },
    commands: [edit('U_ALICE', { dryRun: true })],
    expected: { effectiveParams: { ...PARAMS, dryRun: true } },
    events: [
      { type: 'override_applied', actor: 'U_ALICE', diff: { dryRun: { from: null, to: true } } },
      { type: 'approval_recorded', actor: 'U_ALICE', approvals: 1, minApprovals: 2 },
    ],
  },
  {
    name: 'allowSelfApproval lets the requester approve',
    plan: { approvers: ['U_ALICE', 'U_REQ'], allowSelfApproval: true },
    commands: [approve('U_REQ')],
    expected: { status: 'approved', decidedBy: 'U_REQ' },
    events: [
      { type: 'approval_recorded', actor: 'U_REQ', approvals: 1, minApprovals: 1 },
      { type: 'request_approved', actor: 'U_REQ' },
    ],
  },
  {
    name: 'a listed persona member need not be an approver',
    plan: { personas: [SECURITY] },
    commands: [ack('Security', 'U_SEC')],
    expected: { status: 'ready_for_approval' },
    events: [{ type: 'persona_acked', persona: 'Security', actor: 'U_SEC' }],
  },
];

describe('transitions', () => {
  test.each(transitions)('$name', ({ plan: overrides, commands, expected, events }) => {
    const { plan, state: initial } = start(overrides);
    const { state, events: last } = run(initial, plan, commands);
    expect(state).toMatchObject(expected);
    expect(last).toEqual(events);
    expect(state.version).toBe(initial.version + commands.length);
  });

  test('reduce never mutates the state it is given', () => {
    const { plan, state } = start({ minApprovals: 2, overrides: EDITABLE, personas: [DBA] });
    const before = structuredClone(state);
    run(state, plan, [ack('DBA', 'U_ALICE'), approve('U_ALICE'), edit('U_BOB', { steps: 5 })]);
    expect(state).toEqual(before);
  });

  test('an approval recorded and deciding in one command bumps the version once', () => {
    const { plan, state } = start();
    const t = reduce(state, plan, approve('U_ALICE'), NOW);
    expect(t.ok && t.state.version).toBe(2);
  });
});

describe('notification (whether a human was told)', () => {
  const notify = (notification: Extract<Command, { type: 'notify' }>['notification']): Command => ({
    type: 'notify',
    notification,
  });

  test.each([
    { slack: 'posted', permalink: 'https://x/p1' },
    { slack: 'posted', fallback: 'dm' },
    { slack: 'skipped' },
  ] as const)('starts pending; a post that settled as %j is recorded without waking anyone (same version)', (n) => {
    const { plan, state } = start();
    expect(state.notification).toEqual({ slack: 'pending' });
    const t = reduce(state, plan, notify(n), NOW);
    expect(t).toEqual({ ok: true, state: { ...state, notification: n }, events: [] });
  });

  test('a failed post is news: a new version and a notification_failed fact', () => {
    const { plan, state } = start();
    const { state: failed, events } = run(state, plan, [notify({ slack: 'failed', error: 'channel_not_found' })]);
    expect(failed).toMatchObject({ notification: { slack: 'failed', error: 'channel_not_found' }, version: 2 });
    expect(events).toEqual([{ type: 'notification_failed', error: 'channel_not_found' }]);
  });

  test('is told in any status, a terminal one included, without touching the decision', () => {
    const { plan, state } = start();
    const { state: denied } = run(state, plan, [{ type: 'deny', userId: 'U_ALICE' }]);
    const { state: told } = run(denied, plan, [notify({ slack: 'failed', error: 'invalid_auth' })]);
    const failed = { slack: 'failed', error: 'invalid_auth' };
    expect(told).toEqual({ ...denied, notification: failed, version: denied.version + 1 });
  });

  test('the same notification again changes nothing', () => {
    const { plan, state } = start();
    const t = reduce(state, plan, notify({ slack: 'pending' }), NOW);
    expect(t).toMatchObject({ ok: false, reason: 'not_applicable' });
  });
});
