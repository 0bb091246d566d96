import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClaimStore, runGate, type GateCall, type GateOptions } from '../../clients/gate/src/index.js';
import {
  GuardError,
  UnavailableError,
  WaitTimeoutError,
  type CreatedRequest,
  type GuardClient,
  type StateResponse,
} from '../../clients/typescript/src/index.js';
import { payloadHash } from '../../domain/payload-hash.js';
import { decideToolCall, type ToolCall } from '../../domain/tool-gate.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'guard-gate-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ClaimStore: one decision is acted on once', () => {
  test('generations advance as they are claimed; exactly one of concurrent claims wins', async () => {
    const store = new ClaimStore(join(dir, 'state'));
    expect(await store.current('k')).toBe(0);
    const wins = await Promise.all(Array.from({ length: 8 }, () => store.claim('k', 0, 'test')));
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect(await store.current('k')).toBe(1);
    expect(await store.current('other')).toBe(0);
    expect(await readdir(join(dir, 'state'))).toEqual(['k.0.claimed']);
  });
});

/** The service as the gate uses it: requests by idempotency key, decided by the test. */
class FakeService {
  readonly requests = new Map<string, { id: string; params: Record<string, unknown>; state: StateResponse }>();
  conflictKeys = new Set<string>();
  down = false;
  decide: (id: string, params: Record<string, unknown>) => Partial<StateResponse> | null = () => null;

  readonly client = {
    createRequest: async (input: { params: Record<string, unknown> }, opts: { idempotencyKey: string }) => {
      if (this.down) throw new UnavailableError('cannot reach the service', 'unreachable', 0);
      if (this.conflictKeys.has(opts.idempotencyKey)) {
        throw new GuardError('409 idempotency_conflict', 'idempotency_conflict', 409);
      }
      let found = this.requests.get(opts.idempotencyKey);
      if (!found) {
        const id = `req_${this.requests.size + 1}`;
        found = { id, params: input.params, state: state(id, 'ready_for_approval', input.params) };
        this.requests.set(opts.idempotencyKey, found);
      }
      const decision = this.decide(found.id, found.params);
      if (decision) found.state = { ...found.state, terminal: true, ...decision };
      return { requestId: found.id, token: found.id, status: found.state.status, expiresAt: 'soon' } as CreatedRequest;
    },
    currentState: async (token: string) => [...this.requests.values()].find((r) => r.id === token)!.state,
    // As the real one: the decision, or WaitTimeoutError with the last state once the bound passes.
    waitForDecision: async (token: string) => {
      const found = [...this.requests.values()].find((r) => r.id === token)!.state;
      if (!found.terminal) throw new WaitTimeoutError(found);
      return found;
    },
  };
}

function state(requestId: string, status: StateResponse['status'], params: Record<string, unknown>): StateResponse {
  return {
    requestId,
    action: 'deploy',
    status,
    terminal: status !== 'ready_for_approval',
    approvers: [],
    approvalsCount: 0,
    minApprovals: 1,
    personaState: {},
    escalated: false,
    expiresAt: 'soon',
    decidedAt: null,
    decidedBy: null,
    reason: null,
    payloadHash: payloadHash(params),
    version: 1,
    decidedVia: null,
    breakGlass: false,
    notification: { slack: 'posted' },
  };
}

/** An approval with a receipt signed for `params`, expiring at `exp` (seconds). */
function approval(requestId: string, params: Record<string, unknown>, exp: number): Partial<StateResponse> {
  const claims = {
    v: 1,
    kid: 'k',
    requestId,
    action: 'deploy',
    outcome: 'approved',
    payloadHash: payloadHash(params),
    approvers: ['U_ALICE'],
    decidedBy: 'U_ALICE',
    decidedAt: new Date().toISOString(),
    exp,
    via: 'slack',
    breakGlass: false,
  };
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const receipt = `${body}.${sign(null, Buffer.from(body), privateKey).toString('base64url')}`;
  return { status: 'approved', approvers: ['U_ALICE'], decidedBy: 'U_ALICE', effectiveParams: params, receipt };
}

const call: ToolCall = { server: 'fixture', tool: 'deploy', arguments: { service: 'web' } };
const decision = decideToolCall({ default: { action: 'deploy' }, unreachable: 'deny', rules: [] }, call);
if (decision.kind !== 'action') throw new Error('expected a gated call');
const gateCall: GateCall = { call, decision, label: 'fixture/deploy', justification: 'a test call', waitMs: 1000 };

function options(service: FakeService): GateOptions {
  return {
    client: service.client as unknown as GuardClient,
    receiptKey: async () => publicKey,
    claims: new ClaimStore(join(dir, 'state')),
    origin: { repo: 'acme/shop' },
    requester: 'test',
  };
}

const soon = () => Math.floor(Date.now() / 1000) + 3600;

describe('runGate', () => {
  test('an approval runs once: the same call afterwards is a new request', async () => {
    const service = new FakeService();
    service.decide = (id, params) => (id === 'req_1' ? approval(id, params, soon()) : null);
    const gate = options(service);
    expect(await runGate(gate, gateCall)).toMatchObject({ kind: 'approved', arguments: { service: 'web' } });
    expect(await runGate(gate, gateCall)).toMatchObject({ kind: 'pending', requestId: 'req_2' });
  });

  test('how the decision was made is told: in Slack, or by an operator past the quorum (break-glass)', async () => {
    const service = new FakeService();
    service.decide = (id, params) => approval(id, params, soon());
    expect(await runGate(options(service), gateCall)).toMatchObject({
      message: 'Approved in Slack by U_ALICE (request req_1).',
    });
    service.decide = (id, params) => ({
      ...approval(id, params, soon()),
      approvers: ['ops-alice'],
      decidedVia: 'admin',
      breakGlass: true,
    });
    expect(await runGate(options(service), gateCall)).toMatchObject({
      message: 'Approved by operator ops-alice (break-glass) (request req_2).',
    });
  });

  test('an approval whose receipt expired unused asks again instead of running', async () => {
    const service = new FakeService();
    const past = Math.floor(Date.now() / 1000) - 1;
    service.decide = (id, params) => approval(id, params, id === 'req_1' ? past : soon());
    const outcome = await runGate(options(service), gateCall);
    expect(outcome).toMatchObject({ kind: 'approved' });
    expect(outcome.kind === 'approved' && outcome.state.requestId).toBe('req_2');
  });

  test('a key whose request was made for other params (409) moves on to a new request', async () => {
    const service = new FakeService();
    const gate = options(service);
    const first = await runGate(gate, gateCall);
    expect(first).toMatchObject({ kind: 'pending', requestId: 'req_1' });
    service.conflictKeys = new Set(service.requests.keys());
    expect(await runGate(gate, gateCall)).toMatchObject({ kind: 'pending', requestId: 'req_2' });
  });

  test('a receipt for other params than the ones about to run is refused', async () => {
    const service = new FakeService();
    service.decide = (id) => ({ ...approval(id, { service: 'api' }, soon()), effectiveParams: { service: 'web' } });
    const outcome = await runGate(options(service), gateCall);
    expect(outcome).toMatchObject({ kind: 'error' });
    expect(outcome.kind === 'error' && outcome.message).toContain('its receipt does not verify for these arguments');
  });

  test('the service down: unreachable, with the rule’s fallback', async () => {
    const service = new FakeService();
    service.down = true;
    expect(await runGate(options(service), gateCall)).toMatchObject({ kind: 'unreachable', fallback: 'deny' });
    const open = { ...gateCall, decision: { ...decision, unreachable: 'allow' as const } };
    expect(await runGate(options(service), open)).toMatchObject({ kind: 'unreachable', fallback: 'allow' });
  });

  test('no GUARD_URL: unreachable, never a crash', async () => {
    const outcome = await runGate({ ...options(new FakeService()), client: null }, gateCall);
    expect(outcome).toMatchObject({ kind: 'unreachable', fallback: 'deny' });
    expect(outcome.message).toContain('GUARD_URL is not set');
  });
});
