/**
 * `guard hook claude-code` as Claude Code runs it: a child process fed the PreToolUse JSON of the hooks reference
 * (https://code.claude.com/docs/en/hooks: session_id, transcript_path, cwd, permission_mode, hook_event_name,
 * tool_name, tool_input, tool_use_id) on stdin, judged by its exit code and the JSON decision on stdout, against the
 * running service (real HTTP, real Temporal, decisions through signed Slack interactions).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AGENT_KEY,
  closedPort,
  decide,
  decideWhenPosted,
  requestIdByMarker,
  startClientsHarness,
} from './clients-support.js';
import type { Harness } from './harness.js';
import { messageOf, textOf } from './slack-support.js';

const TOOLS_POLICY = `
tools:
  default: allow
  rules:
    - tool: Bash
      command: '\\bgit\\s+push\\b.*\\bmain\\b'
      action: deploy
      params: { command: command }
    - tool: [Edit, Write]
      path: '**/.env'
      action: deploy
      params: { file_path: file_path, content: content }
    - { server: k8s, tool: scale, action: scale }
    - { tool: Bash, command: '\\brm\\s+-rf\\s+/', decision: deny }
    - { tool: Bash, command: '^sudo\\b', decision: ask }
`;

let h: Harness;
let policy: string;
const PROJECT = '/home/dev/shop';

beforeAll(async () => {
  h = await startClientsHarness();
  policy = join(h.dir, 'guard-policy.yaml');
  await writeFile(policy, TOOLS_POLICY);
}, 60_000);

afterAll(async () => {
  await h?.close();
});

/** The input Claude Code sends a PreToolUse command hook. */
function hookInput(toolName: string, toolInput: Record<string, unknown>) {
  return {
    session_id: 'abc123',
    transcript_path: '/home/dev/.claude/projects/shop/00893aaf-19fa-41d2-8238-13269b9b3ca0.jsonl',
    cwd: PROJECT,
    permission_mode: 'default',
    hook_event_name: 'PreToolUse',
    tool_name: toolName,
    tool_input: toolInput,
    tool_use_id: `toolu_${randomUUID().replaceAll('-', '').slice(0, 20)}`,
  };
}

const bash = (command: string) =>
  hookInput('Bash', { command, description: 'Push the release to main', timeout: 120000 });

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The hook's JSON decision, or null for no output. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  decision: Record<string, any> | null;
}

function hook(input: unknown, env: Record<string, string> = {}, stateDir = join(h.dir, 'state')): Promise<Run> {
  return new Promise<Run>((resolve, reject) => {
    const child = spawn(process.execPath, ['clients/cli/guard.mjs', 'hook', 'claude-code'], {
      cwd: process.cwd(),
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        GUARD_URL: h.url,
        GUARD_AGENT_KEY: AGENT_KEY,
        GUARD_POLICY: policy,
        GUARD_STATE_DIR: stateDir,
        CLAUDE_PROJECT_DIR: PROJECT,
        GUARD_HOOK_WAIT_SEC: '40',
        ...env,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const decision = stdout.trim() ? (JSON.parse(stdout) as Run['decision']) : null;
      resolve({ code, stdout, stderr, decision: decision?.hookSpecificOutput ?? null });
    });
    child.stdin.end(typeof input === 'string' ? input : JSON.stringify(input));
  });
}

test('a tool call the policy does not gate: no output, exit 0 (Claude Code’s own permissions apply)', async () => {
  expect(await hook(bash('npm test'))).toMatchObject({ code: 0, stdout: '' });
  expect(await hook(hookInput('Read', { file_path: `${PROJECT}/.env` }))).toMatchObject({ code: 0, stdout: '' });
});

test.each([
  ['deny', bash('rm -rf / --no-preserve-root'), 'Blocked by the Slack Guard policy (tools.rules[3])'],
  ['ask', bash('sudo systemctl restart web'), 'The Slack Guard policy (tools.rules[4]) asks you to confirm'],
])('the policy itself says %s', async (decision, input, reason) => {
  const run = await hook(input);
  expect(run.code).toBe(0);
  expect(run.decision).toMatchObject({ hookEventName: 'PreToolUse', permissionDecision: decision });
  expect(run.decision?.permissionDecisionReason).toContain(reason);
});

test('a gated command waits for the approval in Slack and is allowed, naming who approved', async () => {
  const marker = randomUUID();
  const deciding = decideWhenPosted(h, { marker }, 'approve');
  const run = await hook(bash(`git push origin main # ${marker}`));
  const requestId = await deciding;
  expect(run.code).toBe(0);
  expect(run.decision).toEqual({
    hookEventName: 'PreToolUse',
    permissionDecision: 'allow',
    permissionDecisionReason: `Approved in Slack by U_ALICE (request ${requestId}).`,
  });
  const text = textOf(messageOf(h, requestId)!);
  expect(text).toContain('Push the release to main');
  expect(text).toContain('shop');
});

test('an approver’s edit of an MCP tool’s arguments comes back as updatedInput', async () => {
  const marker = randomUUID();
  const input = hookInput('mcp__k8s__scale', { service: 'web', replicas: 3, marker });
  const deciding = decideWhenPosted(h, { marker }, 'edit');
  const run = await hook(input);
  await deciding;
  expect(run.decision).toMatchObject({
    permissionDecision: 'allow',
    updatedInput: { service: 'web', replicas: 7, marker },
  });
  expect(run.decision?.permissionDecisionReason).toContain('arguments edited by an approver');
});

test('a denial in Slack is a deny whose reason tells the model who decided', async () => {
  const marker = randomUUID();
  const deciding = decideWhenPosted(h, { marker }, 'deny');
  const run = await hook(hookInput('Write', { file_path: `${PROJECT}/.env`, content: `TOKEN=${marker}` }));
  const requestId = await deciding;
  expect(run.code).toBe(0);
  expect(run.decision?.permissionDecision).toBe('deny');
  expect(run.decision?.permissionDecisionReason).toContain(
    `Write(${PROJECT}/.env) was not run: the approval (request ${requestId}, action deploy) was denied in Slack by U_ALICE`,
  );
});

test('undecided within the wait: a deny saying "pending", resumed by the same call; one approval, one run', async () => {
  const marker = randomUUID();
  const input = bash(`git push origin main # ${marker}`);
  const short = { GUARD_HOOK_WAIT_SEC: '1' };
  const stateDir = join(h.dir, 'state-pending');
  const first = await hook(input, short, stateDir);
  const requestId = await requestIdByMarker(h, marker);
  expect(first.code).toBe(0);
  expect(first.decision?.permissionDecision).toBe('deny');
  expect(first.decision?.permissionDecisionReason).toContain(
    `waiting for human approval in Slack (request ${requestId}, ready_for_approval`,
  );
  expect(first.decision?.permissionDecisionReason).toContain('Make exactly the same call again');

  await decide(h, requestId, 'approve');
  const second = await hook({ ...input, tool_use_id: 'toolu_retry' }, short, stateDir);
  expect(second.decision).toMatchObject({
    permissionDecision: 'allow',
    permissionDecisionReason: `Approved in Slack by U_ALICE (request ${requestId}).`,
  });
  const third = await hook(input, short, stateDir);
  expect(third.decision?.permissionDecision).toBe('deny');
  expect(third.decision?.permissionDecisionReason).not.toContain(requestId);
  expect(third.decision?.permissionDecisionReason).toContain('waiting for human approval');
});

test('the service down: a gated call is denied (fail closed), an ungated one still passes', async () => {
  const down = { GUARD_URL: `http://127.0.0.1:${await closedPort()}` };
  const run = await hook(bash('git push origin main'), down);
  expect(run.code).toBe(0);
  expect(run.decision?.permissionDecision).toBe('deny');
  expect(run.decision?.permissionDecisionReason).toContain('the approval service cannot be reached');
  expect(await hook(bash('git status'), down)).toMatchObject({ code: 0, stdout: '' });
});

test.each([
  ['no policy file', bash('git status'), { GUARD_POLICY: '/nonexistent/guard-policy.yaml' }, 'no policy at'],
  ['stdin that is not a hook input', 'not json', {}, 'stdin is not the JSON of a Claude Code hook'],
])('%s: denied, exit 0 (a failing hook would let the tool run)', async (_name, input, env, reason) => {
  const run = await hook(input, env);
  expect(run.code).toBe(0);
  expect(run.decision?.permissionDecision).toBe('deny');
  expect(run.decision?.permissionDecisionReason).toContain(reason);
});
