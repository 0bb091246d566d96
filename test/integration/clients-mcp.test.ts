/**
 * The MCP server (clients/mcp) as an MCP client sees it: spawned over stdio, tools called through the SDK's Client,
 * against the running service (real HTTP, real Temporal, decisions through signed Slack interactions).
 */
import { hostname, userInfo } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult, Progress } from '@modelcontextprotocol/sdk/types.js';
import { verifyReceipt } from '../../clients/typescript/src/index.js';
import {
  AGENT_KEY,
  decide,
  decideWhenPosted,
  newParams,
  OUTCOME_CASES,
  receiptKeyPem,
  requestIdByMarker,
  startClientsHarness,
} from './clients-support.js';
import { eventually } from '../helpers/eventually.js';
import type { Harness } from './harness.js';
import { messageOf, textOf } from './slack-support.js';
import { workflowIdOf } from '../../gateway/ids.js';

let h: Harness;
let mcp: Client;
let pem: string;

beforeAll(async () => {
  h = await startClientsHarness();
  pem = await receiptKeyPem(h);
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['--import', 'tsx', 'clients/mcp/src/main.ts'],
    cwd: process.cwd(),
    env: {
      PATH: process.env.PATH ?? '',
      GUARD_URL: h.url,
      GUARD_AGENT_KEY: AGENT_KEY,
      GUARD_REPO: 'acme/agent-repo',
      GUARD_REQUESTER: 'coding-agent',
      GUARD_MCP_WAIT_SEC: '40',
      GUARD_MCP_MAX_WAIT_SEC: '40',
      GUARD_STATE_DIR: join(h.dir, 'mcp-state-main'),
    },
    stderr: 'inherit',
  });
  mcp = new Client({ name: 'clients-mcp-test', version: '1.0.0' });
  await mcp.connect(transport);
}, 60_000);

afterAll(async () => {
  await mcp?.close();
  await h?.close();
});

type ToolAnswer = { isError: boolean; text: string; data: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any

async function call(name: string, args: Record<string, unknown>, onprogress?: (p: Progress) => void) {
  const res = (await mcp.callTool(
    { name, arguments: args },
    undefined,
    onprogress ? { onprogress } : {},
  )) as CallToolResult;
  const text = res.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
  return { isError: res.isError === true, text, data: (res.structuredContent ?? {}) as ToolAnswer['data'] };
}

const ask = (action: string, params: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  call('request_approval', { action, params, justification: 'needed to ship the fix', ...extra });

test('lists its four tools, with the request fields of the shared schema, annotations and output schemas', async () => {
  const { tools } = await mcp.listTools();
  expect(tools.map((t) => t.name).sort()).toEqual([
    'cancel_approval',
    'get_approval_status',
    'list_actions',
    'request_approval',
  ]);
  const request = tools.find((t) => t.name === 'request_approval')!;
  expect(request.inputSchema.required).toEqual(expect.arrayContaining(['action', 'justification']));
  expect(request.inputSchema.properties).toMatchObject({
    action: { type: 'string', minLength: 1, maxLength: 200 },
    justification: { type: 'string', minLength: 3 },
  });
  expect(request.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false, idempotentHint: true });
  expect(request.outputSchema?.required).toEqual(
    expect.arrayContaining(['decided', 'approved', 'status', 'requestId', 'idempotency_key', 'message']),
  );
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  expect(byName.get_approval_status?.annotations?.readOnlyHint).toBe(true);
  expect(byName.list_actions?.annotations?.readOnlyHint).toBe(true);
  expect(byName.cancel_approval?.annotations?.destructiveHint).toBe(true);
  for (const tool of tools) expect(tool.outputSchema?.type).toBe('object');
});

describe('request_approval blocks until the decision', () => {
  test.each(OUTCOME_CASES.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const params = newParams();
    const deciding = decideWhenPosted(h, params, c.decision);
    const answer = await ask(c.action, params);
    const requestId = await deciding;
    expect(answer.isError).toBe(false);
    expect(answer.data).toMatchObject({
      decided: true,
      approved: c.status === 'approved',
      status: c.status,
      requestId,
      effectiveParams: c.effective(params),
      overridden: c.decision === 'edit',
    });
    expect(answer.data.message).toMatch(c.status === 'approved' ? /^Approved/ : /Do not run the action/);
    expect(JSON.parse(answer.text)).toEqual(answer.data);
    const expected = { requestId, payloadHash: answer.data.payloadHash };
    const claims = verifyReceipt(answer.data.receipt, pem, { ...expected, outcome: c.status });
    expect(claims).toMatchObject({ outcome: c.status, action: c.action });
    expect(verifyReceipt(answer.data.receipt, pem, expected) === null).toBe(c.status !== 'approved');
  });

  test('progress while waiting (one approval of two), then the decision; origin and requester as configured', async () => {
    const params = newParams();
    const progress: Progress[] = [];
    const answering = call('request_approval', { action: 'pair', params, justification: 'two eyes' }, (p) =>
      progress.push(p),
    );
    const requestId = await requestIdByMarker(h, String(params.marker));
    await h.clickOutcome('approve', requestId, 'U_ALICE');
    await eventually(() => progress[0], { timeoutMs: 20_000, what: 'a progress notification' });
    expect(progress[0]?.message).toBe(`request ${requestId}: ready_for_approval, 1 of 2 approvals`);
    await h.clickOutcome('approve', requestId, 'U_BOB');
    expect((await answering).data).toMatchObject({ requestId, status: 'approved' });
    const text = textOf(messageOf(h, requestId)!);
    expect(text).toContain('acme/agent-repo');
    expect(text).toContain('coding-agent');
  });
});

describe('past the time bound', () => {
  test('undecided: a resumable answer; the same idempotency key resumes the same request', async () => {
    const params = newParams();
    const first = await ask('deploy', params, { wait_sec: 1 });
    expect(first.data).toMatchObject({ decided: false, approved: false, status: 'ready_for_approval' });
    expect(first.data.message).toMatch(/Do not run the action/);
    const { requestId, idempotency_key } = first.data;

    const status = await call('get_approval_status', { request_id: requestId });
    expect(status.data).toMatchObject({ requestId, status: 'ready_for_approval', approvalsCount: 0 });

    const resumed = ask('deploy', params, { idempotency_key });
    expect(await requestIdByMarker(h, String(params.marker))).toBe(requestId);
    await decide(h, requestId, 'approve');
    expect((await resumed).data).toMatchObject({ decided: true, status: 'approved', requestId });
    const decided = await call('get_approval_status', { request_id: requestId });
    expect(decided.data).toMatchObject({ status: 'approved', approvers: ['U_ALICE'] });
    expect(verifyReceipt(decided.data.receipt, pem, { requestId })).not.toBeNull();
  });

  test('cancel_approval by request id withdraws an open request', async () => {
    const first = await ask('deploy', newParams(), { wait_sec: 0 });
    const { requestId } = first.data;
    const cancelled = await call('cancel_approval', { request_id: requestId, reason: 'superseded' });
    expect(cancelled.data).toMatchObject({ requestId, status: 'cancelled' });
    expect((await call('get_approval_status', { request_id: requestId })).data.status).toBe('cancelled');
    const unknown = await call('cancel_approval', { request_id: 'req_not_from_this_server' });
    expect(unknown.isError).toBe(true);
  });
});

test('refusals reach the model as tool errors that say, once, what to do', async () => {
  const denied = await ask('drop_database', {});
  expect(denied.isError).toBe(true);
  expect(denied.text).toMatch(/^The approval policy refuses this action: .*drop_database/);
  expect(denied.text).toContain('Call list_actions for the actions you may request.');
  expect(denied.text).not.toMatch(/policy_denied.*policy_denied/);
  const missing = await call('get_approval_status', { request_id: 'req_nope' });
  expect(missing).toMatchObject({
    isError: true,
    text: 'Could not read request req_nope: no such request (a wrong id, or purged since).',
  });
  const invalid = await ask('deploy', {}, { justification: 'no' });
  expect(invalid.isError).toBe(true);
});

describe('issue 17: what may be asked, and errors that say what to do', () => {
  test('list_actions: the actions, quorum, personas, timeout, edits and params schema', async () => {
    const listed = await call('list_actions', {});
    expect(listed.isError).toBe(false);
    expect(listed.data.unknownAction).toBe('deny');
    expect(listed.data.actions.map((a: { name: string }) => a.name).sort()).toEqual([
      'brief',
      'deploy',
      'pair',
      'release',
      'scale',
      'short',
    ]);
    expect(listed.data.actions.find((a: { name: string }) => a.name === 'release')).toMatchObject({
      minApprovals: 1,
      editsAllowed: false,
      paramsSchema: { required: ['version'] },
    });
  });

  test('params failing the schema: the param and the way out', async () => {
    const answer = await ask('release', { version: 'latest' });
    expect(answer.isError).toBe(true);
    expect(answer.text).toMatch(/^The request is invalid \(params\.version: must match pattern/);
    expect(answer.text).toContain("list_actions shows each action's params schema");
  });

  test('an unknown action: the actions that exist', async () => {
    const answer = await ask('drop_database', {});
    expect(answer.text).toContain('deploy, pair, short, scale, release, brief');
  });

  test('an idempotency_key of a request with other params: a conflict, and how to go on', async () => {
    const first = await ask('deploy', newParams(), { wait_sec: 0 });
    const key = first.data.idempotency_key;
    const conflict = await ask('deploy', newParams(), { idempotency_key: key, wait_sec: 0 });
    expect(conflict.isError).toBe(true);
    expect(conflict.text).toContain(
      `idempotency_key "${key}" belongs to a request with another action, params or origin`,
    );
    expect(conflict.text).toContain('Call again without idempotency_key to ask for this one');
  });
});

describe('never orphans a request (started as Claude Desktop starts it: cwd /, no GUARD_REPO)', () => {
  let bare: Client;
  beforeAll(async () => {
    bare = new Client({ name: 'claude-desktop-like', version: '1.0.0' });
    await bare.connect(
      new StdioClientTransport({
        command: process.execPath,
        // As a desktop client's config names it: the shim, by absolute path (it finds its bundle, or tsx, from its own place).
        args: [join(process.cwd(), 'clients/mcp/guard-mcp.mjs')],
        cwd: '/',
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          GUARD_URL: h.url,
          GUARD_AGENT_KEY: AGENT_KEY,
          GUARD_MCP_MAX_WAIT_SEC: '2',
          GUARD_STATE_DIR: join(h.dir, 'mcp-state'),
        },
        stderr: 'inherit',
      }),
    );
  }, 30_000);
  afterAll(async () => {
    await bare?.close();
  });

  const askBare = (params: Record<string, unknown>, extra: Record<string, unknown> = {}, timeout?: number) =>
    bare.callTool(
      { name: 'request_approval', arguments: { action: 'deploy', params, justification: 'ship it', ...extra } },
      undefined,
      timeout ? { timeout } : {},
    ) as Promise<CallToolResult>;

  test('started by the shim, the server names itself with its package version (read next to its sources)', async () => {
    const pkg = JSON.parse(readFileSync(join(process.cwd(), 'clients/mcp/package.json'), 'utf8')) as {
      version: string;
    };
    expect(bare.getServerVersion()).toMatchObject({ version: pkg.version });
  });

  test('a wait past the client limit: cut off, then resumed with the returned key; one request in Temporal', async () => {
    const since = new Date();
    const params = newParams();
    // The client gives up first (as an MCP client does at 60 s): the request must not be orphaned.
    await expect(askBare(params, { wait_sec: 90 }, 1000)).rejects.toThrow(/Request timed out/);
    const requestId = await requestIdByMarker(h, String(params.marker));

    // The same call finds the same request (the key is derived from it); wait_sec is capped, and says so.
    const again = (await askBare(params, { wait_sec: 90 })).structuredContent as Record<string, string>;
    expect(again).toMatchObject({ decided: false, approved: false, requestId, status: 'ready_for_approval' });
    expect(again.message).toContain('one call waits at most 2 s: MCP clients give up on a call after 60 s');
    expect(again.message).toContain(`Call request_approval again with idempotency_key "${again.idempotency_key}"`);
    expect(again.message).toContain('Do not run the action.');

    await decide(h, requestId, 'approve');
    const resumed = (await askBare(params, { idempotency_key: again.idempotency_key })).structuredContent;
    expect(resumed).toMatchObject({ decided: true, approved: true, requestId, effectiveParams: params });

    const query = `TaskQueue = "${h.config.TEMPORAL_TASK_QUEUE}" AND StartTime >= "${since.toISOString()}"`;
    const ids = async () => {
      const found: string[] = [];
      for await (const w of h.client.workflow.list({ query })) found.push(w.workflowId);
      return found;
    };
    await eventually(async () => ((await ids()).includes(workflowIdOf(requestId)) ? true : undefined), {
      timeoutMs: 20_000,
      what: `${requestId} in Temporal visibility`,
    });
    expect(await ids()).toEqual([workflowIdOf(requestId)]);
    // Told once: the same call without a key is a new question now.
    const fresh = (await askBare(params, { wait_sec: 0 })).structuredContent as Record<string, string>;
    expect(fresh.requestId).not.toBe(requestId);
  });

  test('the origin defaults to user@host when the working directory names nothing', async () => {
    const params = newParams();
    const answer = (await askBare(params, { wait_sec: 0 })).structuredContent as {
      decided: boolean;
      requestId: string;
    };
    expect(answer.decided).toBe(false);
    expect(await requestIdByMarker(h, String(params.marker))).toBe(answer.requestId);
    expect(textOf(messageOf(h, answer.requestId)!)).toContain(`${userInfo().username}@${hostname()}`);
  });
});
