/**
 * What the four agent integrations (REST, TypeScript client, MCP server, CLI) are tested against: one policy, an
 * agent key, and approvers acting in the fake Slack as people do. Each request carries a unique marker in its params,
 * so a test finds the request's Slack message (and so its id) without help from the client under test.
 */
import { randomUUID } from 'node:crypto';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import type { CreateRequestInput } from '../../domain/api-schemas.js';
import { eventually } from '../helpers/eventually.js';
import { sendInteraction, viewSubmissionPayload } from '../helpers/slack.js';
import { approvedBy, editable, policyYaml, REPLICAS, ROUTING } from './fixtures.js';
import { SIGNING_SECRET, startHarness, type Harness } from './harness.js';
import { buttonsOf } from './slack-support.js';

export const AGENT_KEY = 'agent-key-for-client-tests';
const AGENT_ENV = { AGENT_API_KEYS: `ci-bot:${AGENT_KEY}` };

const CLIENTS_POLICY = policyYaml({
  routing: ROUTING,
  defaults: { unknownAction: 'deny' },
  actions: {
    deploy: approvedBy(['U_ALICE', 'U_BOB'], 1),
    pair: approvedBy(['U_ALICE', 'U_BOB'], 2),
    short: approvedBy(['U_ALICE'], 1, { timeoutSec: 2 }),
    scale: approvedBy(['U_ALICE', 'U_BOB'], 1, editable(REPLICAS)),
    // The params an agent sends are checked at create (issue 17).
    release: approvedBy(['U_ALICE'], 1, {
      description: 'Tag a release',
      paramsSchema: {
        type: 'object',
        required: ['version'],
        properties: { version: { type: 'string', pattern: '^v\\d+\\.\\d+\\.\\d+$' }, marker: { type: 'string' } },
      },
    }),
    // Its receipts expire a second after the decision.
    brief: approvedBy(['U_ALICE'], 1, { receiptTtlSec: 1 }),
  },
});

/** The service as every integration is tested against it: CLIENTS_POLICY, with AGENT_KEY accepted. */
export function startClientsHarness(): Promise<Harness> {
  return startHarness({ policy: CLIENTS_POLICY, env: AGENT_ENV });
}

export type Decision = 'approve' | 'deny' | 'edit' | 'none';

export interface OutcomeCase {
  name: string;
  action: string;
  decision: Decision;
  status: 'approved' | 'denied' | 'expired';
  /** The effective params expected back, given the request's params. */
  effective: (params: Record<string, unknown>) => Record<string, unknown>;
}

/** Approve, deny, let expire (the `short` action lives 2 s), and approve with an edit made in the Slack modal. */
export const OUTCOME_CASES: OutcomeCase[] = [
  { name: 'approve', action: 'deploy', decision: 'approve', status: 'approved', effective: (p) => p },
  { name: 'deny', action: 'deploy', decision: 'deny', status: 'denied', effective: (p) => p },
  { name: 'expire', action: 'short', decision: 'none', status: 'expired', effective: (p) => p },
  { name: 'edit', action: 'scale', decision: 'edit', status: 'approved', effective: (p) => ({ ...p, replicas: 7 }) },
];

export function newParams(): Record<string, unknown> {
  return { service: 'web', replicas: 3, marker: randomUUID() };
}

export function requestInput(action: string, params: Record<string, unknown>): CreateRequestInput {
  return {
    action,
    params,
    meta: {
      origin: { repo: 'acme/shop', branch: 'main' },
      requester: { id: 'ci-bot', source: 'agent' },
      justification: 'release 1.2.3',
    },
  };
}

/** The id of the request whose Slack message shows `marker`, once it is posted. */
export function requestIdByMarker(h: Harness, marker: string, timeoutMs = 30_000): Promise<string> {
  return eventually(
    () => {
      const message = [...h.fakeSlack.messages.values()].find(
        (m) => !m.thread_ts && JSON.stringify(m.blocks).includes(marker),
      );
      return message ? buttonsOf(message)[0]?.value : undefined;
    },
    { timeoutMs, what: `a Slack message showing ${marker}` },
  );
}

/** Acts on the request as an approver in Slack: a button click, or the edit modal's submission. */
export async function decide(h: Harness, requestId: string, decision: Decision): Promise<void> {
  if (decision === 'none') return;
  if (decision === 'edit') {
    const values = { ov_replicas: { value: { type: 'plain_text_input' as const, value: '7' } } };
    const payload = viewSubmissionPayload({
      userId: 'U_BOB',
      callbackId: 'override_submit',
      privateMetadata: { request_id: requestId },
      values,
    });
    const res = await sendInteraction(h.url, SIGNING_SECRET, payload);
    if (res.status !== 200 || res.body !== '') throw new Error(`edit refused: ${res.status} ${res.body}`);
    return;
  }
  const res = await h.click(decision, requestId, 'U_ALICE');
  const answer = await h.outcomeOf(res);
  if (!answer.ok) throw new Error(`${decision} refused: ${JSON.stringify(answer)}`);
}

/** Finds the request by its marker once the client under test has created it, then decides it. */
export async function decideWhenPosted(h: Harness, params: Record<string, unknown>, decision: Decision) {
  const requestId = await requestIdByMarker(h, String(params.marker));
  await decide(h, requestId, decision);
  return requestId;
}

export async function receiptKeyPem(h: Harness): Promise<string> {
  return (await h.get('/api/guard/receipt-key')).body.pem as string;
}

export interface ProxiedCall {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  at: number;
}

/**
 * What the proxy does to one matching call instead of passing it through: forward it and then cut the connection
 * before the answer (the service acted, the client never heard), forward it and cut a stream after its first chunk,
 * or answer by itself.
 */
export type FaultAction =
  'drop-answer' | 'cut-stream' | { status: number; headers?: Record<string, string>; body: unknown };

export interface FaultProxy {
  url: string;
  calls: ProxiedCall[];
  /** The next call matching `path` (and `method`) gets `action`; later ones pass through. */
  inject(method: string, path: string, action: FaultAction): void;
  close(): Promise<void>;
}

/** A loopback HTTP proxy in front of the service, for the network failures a client must ride out. */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const calls: ProxiedCall[] = [];
  const faults: Array<{ method: string; path: string; action: FaultAction }> = [];
  const server = createServer((req, res) => {
    const call = {
      method: req.method ?? 'GET',
      path: (req.url ?? '/').split('?')[0]!,
      headers: req.headers,
      at: Date.now(),
    };
    calls.push(call);
    const i = faults.findIndex((f) => f.method === call.method && f.path === call.path);
    const action = i >= 0 ? faults.splice(i, 1)[0]!.action : null;
    if (action && typeof action === 'object') {
      res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers });
      res.end(JSON.stringify(action.body));
      return;
    }
    const upstream = request(
      new URL(req.url ?? '/', target),
      { method: req.method, headers: req.headers },
      (answer) => {
        if (action === 'drop-answer') {
          answer.resume();
          answer.on('end', () => res.socket?.destroy());
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (action === 'cut-stream') {
          answer.once('data', (chunk) => {
            res.write(chunk, () => res.socket?.destroy());
            answer.destroy();
          });
          return;
        }
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.socket?.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    inject: (method, path, action) => faults.push({ method, path, action }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port nothing listens on (bound, then released): a service that is down. */
export async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
