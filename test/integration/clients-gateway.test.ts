/**
 * The MCP gateway (`guard-mcp proxy`) as an MCP client sees it: spawned over stdio in front of a real upstream MCP
 * server (test/fixtures/mcp-upstream.ts), driven by the SDK's Client, against the running service (real HTTP, real
 * Temporal, decisions through signed Slack interactions). What the upstream really received is read from its own log.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  ToolListChangedNotificationSchema,
  type CallToolResult,
  type Progress,
} from '@modelcontextprotocol/sdk/types.js';
import { GATE_META_KEY } from '../../clients/mcp/src/gateway.js';
import { checkReceipt } from '../../clients/typescript/src/index.js';
import { createUpstreamServer } from '../fixtures/mcp-upstream.js';
import {
  AGENT_KEY,
  closedPort,
  decide,
  decideWhenPosted,
  newParams,
  requestIdByMarker,
  startClientsHarness,
} from './clients-support.js';
import { eventually } from '../helpers/eventually.js';
import type { Harness } from './harness.js';
import { messageOf, textOf } from './slack-support.js';

const TOOLS_POLICY = `
tools:
  default: allow
  rules:
    - { server: fixture, tool: deploy, args: { service: brief }, action: brief }
    - { server: fixture, tool: deploy, action: deploy }
    - { server: fixture, tool: pair_deploy, action: pair }
    - server: fixture
      tool: scale_service
      action: scale
      params: { service: service, replicas: spec.replicas, marker: marker }
    - { server: fixture, tool: 'drop_*', decision: deny }
`;

interface Gateway {
  mcp: Client;
  /** Every tools/call the upstream received, in order. */
  received(): Promise<Array<{ tool: string; args: Record<string, unknown> }>>;
  close(): Promise<void>;
}

let h: Harness;
let policyPath: string;
let gateway: Gateway;
const started: Gateway[] = [];

const STDIO_UPSTREAM = ['--', process.execPath, '--import', 'tsx', 'test/fixtures/mcp-upstream.ts'];

async function startGateway(
  name: string,
  env: Record<string, string> = {},
  upstream: string[] = STDIO_UPSTREAM,
): Promise<Gateway> {
  const log = join(h.dir, `upstream-${name}.jsonl`);
  await writeFile(log, '', { flag: 'a' });
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['--import', 'tsx', 'clients/mcp/src/main.ts', 'proxy', '--policy', policyPath, ...upstream],
    cwd: process.cwd(),
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      GUARD_URL: h.url,
      GUARD_AGENT_KEY: AGENT_KEY,
      GUARD_REPO: 'acme/gateway',
      GUARD_REQUESTER: 'gateway-agent',
      GUARD_STATE_DIR: join(h.dir, `state-${name}`),
      UPSTREAM_LOG: log,
      ...env,
    },
    // Its notes ("gating fixture ...") only with GUARD_TEST_LOGS=1; the pipe is drained either way.
    stderr: 'pipe',
  });
  transport.stderr?.on('data', (chunk: Buffer) => {
    if (process.env.GUARD_TEST_LOGS) process.stderr.write(chunk);
  });
  const mcp = new Client({ name: `clients-gateway-${name}`, version: '1.0.0' });
  await mcp.connect(transport);
  const gw: Gateway = {
    mcp,
    received: async () =>
      (await readFile(log, 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { tool: string; args: Record<string, unknown> }),
    close: () => mcp.close(),
  };
  started.push(gw);
  return gw;
}

beforeAll(async () => {
  h = await startClientsHarness();
  policyPath = join(h.dir, 'gateway-tools.yaml');
  await writeFile(policyPath, TOOLS_POLICY);
  gateway = await startGateway('main', { GUARD_MCP_WAIT_SEC: '40' });
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(started.map((g) => g.close()));
  await h?.close();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Answer = { isError: boolean; text: string; meta: Record<string, any> };

async function call(gw: Gateway, name: string, args: Record<string, unknown>, onprogress?: (p: Progress) => void) {
  const res = (await gw.mcp.callTool(
    { name, arguments: args },
    undefined,
    onprogress ? { onprogress } : {},
  )) as CallToolResult;
  const text = res.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
  return { isError: res.isError === true, text, meta: (res._meta?.[GATE_META_KEY] ?? {}) as Answer['meta'] };
}

/** The arguments the upstream's answer says it ran with (its zod schema orders the keys its own way). */
function ranWith(tool: string, text: string): unknown {
  const prefix = `${tool} ran with `;
  if (!text.startsWith(prefix)) throw new Error(`not an answer of ${tool}: ${text}`);
  return JSON.parse(text.slice(prefix.length));
}

const calledWith = async (gw: Gateway, marker: unknown) =>
  (await gw.received()).filter((c) => c.args.marker === marker);

test('offers the upstream’s tools, resources and prompts unchanged', async () => {
  const direct = new Client({ name: 'direct', version: '1.0.0' });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([createUpstreamServer(undefined).connect(a), direct.connect(b)]);
  expect(await gateway.mcp.listTools()).toEqual(await direct.listTools());
  expect(await gateway.mcp.listResources()).toEqual(await direct.listResources());
  expect(await gateway.mcp.listResourceTemplates()).toEqual(await direct.listResourceTemplates());
  expect(await gateway.mcp.readResource({ uri: 'runbook://web' })).toEqual({
    contents: [{ uri: 'runbook://web', text: 'Runbook of web: restart it.' }],
  });
  expect(await gateway.mcp.getPrompt({ name: 'incident', arguments: { service: 'web' } })).toEqual(
    await direct.getPrompt({ name: 'incident', arguments: { service: 'web' } }),
  );
  await direct.close();
});

test('an unmapped tool passes straight through', async () => {
  const answer = await call(gateway, 'echo', { text: 'hello' });
  expect(answer).toMatchObject({ isError: false, text: 'echo ran with {"text":"hello"}' });
  expect((await gateway.received()).at(-1)).toEqual({ tool: 'echo', args: { text: 'hello' } });
});

test('a mapped tool waits for the approval in Slack, then runs upstream with its arguments', async () => {
  const params = newParams();
  const deciding = decideWhenPosted(h, params, 'approve');
  const answer = await call(gateway, 'deploy', params);
  const requestId = await deciding;
  expect(answer).toMatchObject({ isError: false, meta: {} });
  expect(ranWith('deploy', answer.text)).toEqual(params);
  expect(await calledWith(gateway, params.marker)).toEqual([{ tool: 'deploy', args: params }]);
  const text = textOf(messageOf(h, requestId)!);
  expect(text).toContain('acme/gateway');
  expect(text).toContain('fixture/deploy');
});

test('progress notifications while waiting (one approval of two), then the call runs', async () => {
  const params = newParams();
  const progress: Progress[] = [];
  const answering = call(gateway, 'pair_deploy', params, (p) => progress.push(p));
  const requestId = await requestIdByMarker(h, String(params.marker));
  await h.clickOutcome('approve', requestId, 'U_ALICE');
  await eventually(() => progress[0], { timeoutMs: 20_000, what: 'a progress notification' });
  expect(progress[0]?.message).toBe(`waiting for approval in Slack: request ${requestId}, 1 of 2`);
  expect(await calledWith(gateway, params.marker)).toEqual([]);
  await h.clickOutcome('approve', requestId, 'U_BOB');
  expect(await answering).toMatchObject({ isError: false });
  expect(await calledWith(gateway, params.marker)).toEqual([{ tool: 'pair_deploy', args: params }]);
});

test('an approver’s edit changes the arguments the upstream receives', async () => {
  const marker = String(newParams().marker);
  const args = { service: 'web', marker, spec: { replicas: 3, paused: false } };
  const deciding = decideWhenPosted(h, { marker }, 'edit');
  const answer = await call(gateway, 'scale_service', args);
  await deciding;
  expect(answer.isError).toBe(false);
  expect(await calledWith(gateway, marker)).toEqual([
    { tool: 'scale_service', args: { service: 'web', marker, spec: { replicas: 7, paused: false } } },
  ]);
});

test('a denial is a tool error saying who decided, and the upstream is never called', async () => {
  const params = newParams();
  const deciding = decideWhenPosted(h, params, 'deny');
  const answer = await call(gateway, 'deploy', params);
  const requestId = await deciding;
  expect(answer.isError).toBe(true);
  expect(answer.text).toContain(`fixture/deploy was not run: the approval (request ${requestId}, action deploy)`);
  expect(answer.text).toContain('was denied in Slack by U_ALICE');
  expect(answer.text).toContain('Do not retry the same call');
  expect(answer.meta).toMatchObject({ outcome: 'denied', requestId, decidedBy: 'U_ALICE' });
  expect(await calledWith(gateway, params.marker)).toEqual([]);
});

test('a tool the policy denies is refused without asking anyone', async () => {
  const answer = await call(gateway, 'drop_database', { database: 'orders' });
  expect(answer.isError).toBe(true);
  expect(answer.text).toContain('does not allow this tool here (tools.rules[4]: deny)');
  expect((await gateway.received()).some((c) => c.tool === 'drop_database')).toBe(false);
});

test('tool list changes of the upstream reach the client', async () => {
  const changed: string[] = [];
  gateway.mcp.setNotificationHandler(ToolListChangedNotificationSchema, (n) => void changed.push(n.method));
  await call(gateway, 'add_tool', { name: 'late_tool' });
  await eventually(() => changed[0], { timeoutMs: 20_000, what: 'notifications/tools/list_changed' });
  expect((await gateway.mcp.listTools()).tools.map((t) => t.name)).toContain('late_tool');
});

describe('past the wait bound', () => {
  let short: Gateway;
  beforeAll(async () => {
    short = await startGateway('short', { GUARD_MCP_WAIT_SEC: '1' });
  }, 30_000);

  test('"pending, call again"; the same call resumes the same request; one approval runs one call', async () => {
    const params = newParams();
    const first = await call(short, 'deploy', params);
    const requestId = await requestIdByMarker(h, String(params.marker));
    expect(first).toMatchObject({ isError: true, meta: { outcome: 'pending', requestId } });
    expect(first.text).toContain(`waiting for human approval in Slack (request ${requestId}, ready_for_approval`);
    expect(first.text).toContain('Make exactly the same call again');

    await decide(h, requestId, 'approve');
    const second = await call(short, 'deploy', params);
    expect(second.isError).toBe(false);
    expect(ranWith('deploy', second.text)).toEqual(params);
    expect(await calledWith(short, params.marker)).toHaveLength(1);

    // The approval was used: the same call again is a new request, not a second run on the old approval.
    const third = await call(short, 'deploy', params);
    expect(third).toMatchObject({ isError: true, meta: { outcome: 'pending' } });
    expect(third.meta.requestId).not.toBe(requestId);
    expect(await calledWith(short, params.marker)).toHaveLength(1);
  });

  test('an approval nobody used before its receipt expired is not used: the call asks again', async () => {
    const params: Record<string, unknown> = { ...newParams(), service: 'brief' };
    const first = await call(short, 'deploy', params);
    const requestId = await requestIdByMarker(h, String(params.marker));
    expect(first.meta).toMatchObject({ outcome: 'pending', requestId });
    await decide(h, requestId, 'approve');
    const { receipt } = (await h.get(`/api/guard/status?requestId=${requestId}`)).body as { receipt: string };
    const pem = (await h.get('/api/guard/receipt-key')).body.pem as string;
    // The action's receipts live 1 s: wait for that, not for a fixed time.
    await eventually(() => (checkReceipt(receipt, pem).ok ? undefined : true), {
      timeoutMs: 10_000,
      what: 'the receipt to expire',
    });
    const again = await call(short, 'deploy', params);
    expect(again).toMatchObject({ isError: true, meta: { outcome: 'pending' } });
    expect(again.meta.requestId).not.toBe(requestId);
    expect(await calledWith(short, params.marker)).toEqual([]);
  });
});

test('a receipt that does not verify (another key pinned) is not forwarded', async () => {
  const foreign = join(h.dir, 'foreign.pem');
  await writeFile(foreign, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
  const pinned = await startGateway('pinned', { GUARD_RECEIPT_KEY_FILE: foreign });
  const params = newParams();
  const deciding = decideWhenPosted(h, params, 'approve');
  const answer = await call(pinned, 'deploy', params);
  const requestId = await deciding;
  expect(answer.isError).toBe(true);
  expect(answer.text).toContain(
    `request ${requestId} was approved, but its receipt does not verify for these arguments (the signature does not verify with this key)`,
  );
  expect(await calledWith(pinned, params.marker)).toEqual([]);
  await pinned.close();
});

test('the service down: gated tools are refused (fail closed), unmapped ones still pass', async () => {
  const closed = await closedPort();
  const down = await startGateway('down', { GUARD_URL: `http://127.0.0.1:${closed}` });
  const params = newParams();
  const answer = await call(down, 'deploy', params);
  expect(answer).toMatchObject({ isError: true, meta: { outcome: 'unreachable' } });
  expect(answer.text).toContain(
    'fixture/deploy needs human approval (action deploy), but the approval service cannot be reached',
  );
  expect(answer.text).toContain('so it was not run');
  expect(await down.received()).toEqual([]);
  expect(await call(down, 'echo', { text: 'still here' })).toMatchObject({ isError: false });
  await down.close();
});

test('an upstream over Streamable HTTP is gated the same way', async () => {
  const log = join(h.dir, 'upstream-http.jsonl');
  await writeFile(log, '');
  const upstream = createUpstreamServer(log);
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID() });
  await upstream.connect(transport);
  const http = createHttpServer((req, res) => void transport.handleRequest(req, res));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as { port: number };
  try {
    const remote = await startGateway('http', { GUARD_MCP_WAIT_SEC: '40' }, [
      '--name',
      'fixture',
      '--url',
      `http://127.0.0.1:${port}/mcp`,
    ]);
    expect(await call(remote, 'echo', { text: 'over http' })).toMatchObject({ isError: false });
    const params = newParams();
    const deciding = decideWhenPosted(h, params, 'approve');
    const answer = await call(remote, 'deploy', params);
    await deciding;
    expect(ranWith('deploy', answer.text)).toEqual(params);
    expect(await calledWith(remote, params.marker)).toEqual([{ tool: 'deploy', args: params }]);
    await remote.close();
  } finally {
    await upstream.close();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  }
});
