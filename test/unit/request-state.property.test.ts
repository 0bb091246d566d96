/**
 * The reducer under random plans and random command sequences (fast-check): whatever arrives, in whatever order,
 * the request's invariants hold after every command.
 */
import fc from 'fast-check';
import type { Plan } from '../../domain/plan.js';
import { payloadHash } from '../../domain/payload-hash.js';
import {
  initialState,
  isTerminal,
  reduce,
  type Command,
  type DomainEvent,
  type RequestState,
} from '../../domain/request-state.js';
import { makePlan, makeRequest } from '../fixtures/plans.js';

/** The operator of the admin routes in the generated runs. */
const OPERATOR = 'admin:ops';

const USERS = ['U_ALICE', 'U_BOB', 'U_CAROL', 'U_DAN', 'U_REQ', 'U_MALLORY'];
const PERSONAS = ['Security', 'DBA', 'Legal'];
const PARAMS = { database: 'orders', steps: 3 };
const NOW = '2030-01-01T00:10:00.000Z';
const TERMINAL_EVENTS = ['request_approved', 'request_denied', 'request_expired', 'request_cancelled'];

const user = fc.constantFrom(...USERS);

const planArb: fc.Arbitrary<Plan> = fc
  .record({
    approvers: fc.subarray(USERS, { minLength: 1 }),
    minApprovals: fc.integer({ min: 1, max: 3 }),
    personas: fc.uniqueArray(
      fc.record({ name: fc.constantFrom(...PERSONAS), members: fc.subarray(USERS, { maxLength: 2 }) }),
      { selector: (p) => p.name, maxLength: 2 },
    ),
    allowSelfApproval: fc.boolean(),
    overridesAllowed: fc.boolean(),
    escalation: fc.option(fc.record({ minApprovals: fc.option(fc.integer({ min: 1, max: 4 }), { nil: null }) }), {
      nil: null,
    }),
  })
  .map((p) =>
    makePlan({
      approvers: p.approvers,
      minApprovals: p.minApprovals,
      personas: p.personas,
      allowSelfApproval: p.allowSelfApproval,
      overrides: { allowed: p.overridesAllowed, keys: ['steps'], schema: null, maxKeys: 1, maxChars: 20 },
      escalation: p.escalation
        ? { escalateBeforeSec: 60, channel: null, minApprovals: p.escalation.minApprovals }
        : null,
    }),
  );

/** A payload hash an approver may have seen: none, the one at that point (resolved when applied), or a stale one. */
type Seen = 'none' | 'current' | 'stale';

type Step =
  | { type: 'persona_ack'; persona: string; userId: string }
  | { type: 'approve'; userId: string; seen: Seen }
  | { type: 'deny'; userId: string }
  | { type: 'override'; userId: string; changes: Record<string, unknown> }
  | { type: 'cancel'; actor: string }
  | { type: 'admin_decision'; decision: 'approve' | 'deny'; actor: string; breakGlass: boolean }
  | { type: 'escalate' }
  | { type: 'expire' }
  | { type: 'notify'; failed: boolean };

/**
 * Commands for a plan: mostly by its approvers and for its personas (so requests get decided by approvals often),
 * with strangers, unknown personas, stale views, bad edits and the ends (deny, cancel, admin, expiry) mixed in.
 */
function stepsFor(plan: Plan): fc.Arbitrary<Step> {
  const who = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...plan.approvers) }, { weight: 1, arbitrary: user });
  const persona = fc.constantFrom(...plan.personas.map((p) => p.name), 'Unknown');
  const acker = fc.oneof(who, fc.constantFrom(...plan.personas.flatMap((p) => p.members), 'U_MALLORY'));
  const changes = fc.oneof(
    fc.record({ steps: fc.integer({ min: 1, max: 6 }) }),
    fc.record({ database: fc.constant('users') }),
    fc.record({ steps: fc.string({ minLength: 21, maxLength: 25 }) }),
  );
  const end = fc.oneof(
    fc.record({ type: fc.constant('deny' as const), userId: who }),
    fc.record({ type: fc.constant('cancel' as const), actor: user }),
    fc.record({
      type: fc.constant('admin_decision' as const),
      decision: fc.constantFrom<'approve' | 'deny'>('approve', 'deny'),
      actor: fc.constant(OPERATOR),
      breakGlass: fc.boolean(),
    }),
    fc.constant({ type: 'expire' as const }),
  );
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ type: fc.constant('persona_ack' as const), persona, userId: acker }) },
    {
      weight: 10,
      arbitrary: fc.record({
        type: fc.constant('approve' as const),
        userId: who,
        seen: fc.constantFrom<Seen>('none', 'current', 'stale'),
      }),
    },
    { weight: 2, arbitrary: fc.record({ type: fc.constant('override' as const), userId: who, changes }) },
    { weight: 1, arbitrary: fc.constant({ type: 'escalate' as const }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('notify' as const), failed: fc.boolean() }) },
    { weight: 1, arbitrary: end },
  );
}

function toCommand(step: Step, state: RequestState): Command {
  switch (step.type) {
    case 'approve': {
      const seenPayloadHash =
        step.seen === 'none' ? undefined : step.seen === 'current' ? state.payloadHash : payloadHash({ stale: true });
      return { type: 'approve', userId: step.userId, seenPayloadHash };
    }
    case 'notify':
      return {
        type: 'notify',
        notification: step.failed ? { slack: 'failed', error: 'channel_not_found' } : { slack: 'posted' },
      };
    default:
      return step;
  }
}

interface Run {
  plan: Plan;
  steps: Step[];
}

const runArb: fc.Arbitrary<Run> = planArb.chain((plan) =>
  fc.record({ plan: fc.constant(plan), steps: fc.array(stepsFor(plan), { maxLength: 40 }) }),
);

/** Applies every step, calling `check(before, command, transition, after)` after each. */
function play(
  { plan, steps }: Run,
  check: (
    before: RequestState,
    command: Command,
    after: RequestState,
    accepted: boolean,
    events: DomainEvent[],
  ) => void,
): RequestState {
  const request = makeRequest({ params: { ...PARAMS } });
  let state = initialState({
    requestId: 'req_p',
    request,
    plan,
    createdAt: '2030-01-01T00:00:00.000Z',
    expiresAt: '2030-01-01T01:00:00.000Z',
  });
  for (const step of steps) {
    const command = toCommand(step, state);
    const snapshot = JSON.stringify(state);
    const t = reduce(state, plan, command, NOW);
    // Whatever the verdict, the state given is not touched.
    if (JSON.stringify(state) !== snapshot) throw new Error(`reduce mutated the state on ${command.type}`);
    const after = t.ok ? t.state : state;
    check(state, command, after, t.ok, t.ok ? t.events : []);
    state = after;
  }
  return state;
}

const RUNS = { numRuns: 300 };

test('at most one decision: once terminal, the status and the decision never change and nothing is counted', () => {
  fc.assert(
    fc.property(runArb, (run) => {
      let decisions = 0;
      play(run, (before, command, after, accepted, events) => {
        decisions += events.filter((e) => TERMINAL_EVENTS.includes(e.type)).length;
        if (!isTerminal(before.status)) return;
        const { status, decidedAt, decidedBy, reason, approvals, effectiveParams } = before;
        expect(after).toMatchObject({ status, decidedAt, decidedBy, reason, approvals, effectiveParams });
        if (command.type !== 'notify') expect(accepted).toBe(false);
      });
      expect(decisions).toBeLessThanOrEqual(1);
    }),
    RUNS,
  );
});

test('approved by approvals only with distinct approvals of the current payload hash ≥ the current quorum', () => {
  let decidedByApprovals = 0;
  fc.assert(
    fc.property(runArb, (run) => {
      play(run, (before, command, after) => {
        const breakGlass = command.type === 'admin_decision' && command.breakGlass;
        if (before.status === 'approved' || after.status !== 'approved' || breakGlass) return;
        decidedByApprovals += 1;
        const current = after.approvals.filter((a) => a.payloadHash === after.payloadHash);
        expect(new Set(current.map((a) => a.userId)).size).toBeGreaterThanOrEqual(after.minApprovals);
      });
    }),
    RUNS,
  );
  // The generator reaches the case this is about, often (not only by admins).
  expect(decidedByApprovals).toBeGreaterThan(RUNS.numRuns / 20);
});

test('each approver counts once, is allowed, and approves only what they saw (an edit voids older approvals)', () => {
  fc.assert(
    fc.property(runArb, (run) => {
      const { plan } = run;
      play(run, (before, command, after, accepted) => {
        const ids = after.approvals.map((a) => a.userId);
        expect(new Set(ids).size).toBe(ids.length);
        for (const a of after.approvals) {
          // An operator's approval without break-glass counts as the operator's own (api/routes/admin-requests.ts).
          expect([...plan.approvers, OPERATOR]).toContain(a.userId);
          if (!plan.allowSelfApproval) expect(a.userId).not.toBe(after.requesterId);
          expect(a.payloadHash).toBe(after.payloadHash);
        }
        if (accepted && command.type === 'approve' && command.seenPayloadHash !== undefined) {
          expect(command.seenPayloadHash).toBe(before.payloadHash);
        }
        if (accepted && command.type === 'override') {
          expect(after.voidedApprovals).toEqual([...before.voidedApprovals, ...before.approvals]);
          expect(after.approvals.map((a) => a.userId)).toEqual([command.userId]);
        }
        // No approval before every persona has acknowledged.
        if (after.approvals.length > 0) expect(Object.values(after.personaState).every((p) => p.acked)).toBe(true);
      });
    }),
    RUNS,
  );
});

test('persona acks only by allowed members, once, never undone', () => {
  fc.assert(
    fc.property(runArb, (run) => {
      const { plan } = run;
      play(run, (before, _command, after) => {
        for (const def of plan.personas) {
          const was = before.personaState[def.name];
          const now = after.personaState[def.name];
          if (was?.acked) expect(now).toEqual(was);
          if (now?.acked) expect(def.members.length > 0 ? def.members : plan.approvers).toContain(now.by);
        }
        expect(Object.keys(after.personaState).sort()).toEqual(plan.personas.map((p) => p.name).sort());
      });
    }),
    RUNS,
  );
});

test('the version grows by one on every accepted command (a settled post excepted) and never on a refusal', () => {
  fc.assert(
    fc.property(runArb, (run) => {
      play(run, (before, command, after, accepted) => {
        const silent = command.type === 'notify' && command.notification.slack !== 'failed';
        expect(after.version).toBe(before.version + (accepted && !silent ? 1 : 0));
      });
    }),
    RUNS,
  );
});
