/**
 * `guard hook claude-code`: a Claude Code `PreToolUse` hook. Claude Code runs it before every tool call with the
 * call as JSON on stdin; the policy's `tools` section decides, and a gated call waits for a human in Slack. The
 * answer is the hook's JSON decision on stdout with exit 0 (https://code.claude.com/docs/en/hooks, "PreToolUse
 * decision control"): `allow` (approved in Slack; `updatedInput` carries an approver's edits), `deny` (the reason is
 * shown to the model), `ask` (Claude Code asks the person at the keyboard), or no output for a call the policy does
 * not gate (Claude Code's own permission rules apply as usual).
 *
 * Fails closed: a hook that exits with another code than 0 or 2, or outlives its `timeout`, is a non-blocking error
 * and the tool runs. So every failure here becomes a `deny` answer, and the wait ends before the hook's timeout.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { ToolsSection } from '../../../domain/policy-schema.js';
import { decideToolCall, type GateVerdict, type ToolCall } from '../../../domain/tool-gate.js';
import {
  ClaimStore,
  defaultRepo,
  GateConfigError,
  loadToolsSection,
  receiptKeyProvider,
  runGate,
} from '../../gate/src/index.js';
import { GuardClient } from '../../typescript/src/index.js';

export const HOOK_USAGE = `Usage: guard hook claude-code [--policy FILE]

  A Claude Code PreToolUse hook: reads the hook's JSON on stdin, decides the tool call by the policy's tools
  section, waits for the approval in Slack when the call is gated, and prints the hook's JSON decision.
  Policy: --policy FILE, else GUARD_POLICY, else $CLAUDE_PROJECT_DIR/.claude/guard-policy.yaml.
  Environment: GUARD_URL, GUARD_AGENT_KEY, GUARD_REPO (default: the project directory's name), GUARD_REQUESTER
  (default claude-code), GUARD_HOOK_WAIT_SEC (default 50: under the hook's default 60 s timeout; give the hook a
  "timeout" above it), GUARD_RECEIPT_KEY_FILE, GUARD_STATE_DIR.`;

/** What Claude Code sends a PreToolUse hook (only the fields used here are required). */
const hookInputSchema = z.looseObject({
  hook_event_name: z.string(),
  tool_name: z.string().min(1),
  tool_input: z.record(z.string(), z.unknown()).default({}),
  tool_use_id: z.string().optional(),
  session_id: z.string().optional(),
  cwd: z.string().optional(),
});
type HookInput = z.infer<typeof hookInputSchema>;

const envSchema = z.object({
  GUARD_URL: z.url().optional(),
  GUARD_AGENT_KEY: z.string().min(1).optional(),
  GUARD_POLICY: z.string().min(1).optional(),
  GUARD_REQUESTER: z.string().min(1).default('claude-code'),
  GUARD_HOOK_WAIT_SEC: z.coerce.number().int().min(0).max(3600).default(50),
  GUARD_RECEIPT_KEY_FILE: z.string().min(1).optional(),
  CLAUDE_PROJECT_DIR: z.string().min(1).optional(),
});

export interface HookAnswer {
  hookSpecificOutput: {
    hookEventName: 'PreToolUse';
    permissionDecision: GateVerdict;
    permissionDecisionReason: string;
    updatedInput?: Record<string, unknown>;
  };
}

/** The decision for one hook call; null: not gated, no opinion. Never throws (a crash would let the tool run). */
export async function decideHook(stdin: string, policyFlag: string | undefined): Promise<HookAnswer | null> {
  try {
    return await decide(stdin, policyFlag);
  } catch (err) {
    const why = err instanceof GateConfigError ? err.message : `unexpected error: ${(err as Error).message}`;
    return answer('deny', `Slack Guard could not check this tool call, so it is blocked (fail closed): ${why}`);
  }
}

async function decide(stdin: string, policyFlag: string | undefined): Promise<HookAnswer | null> {
  const env = envSchema.parse(Object.fromEntries(Object.entries(process.env).filter((e) => Boolean(e[1]))));
  const input = parseInput(stdin);
  if (input.hook_event_name !== 'PreToolUse') return null;
  const projectDir = env.CLAUDE_PROJECT_DIR ?? input.cwd ?? process.cwd();
  const tools = await loadTools(policyFlag ?? env.GUARD_POLICY ?? join(projectDir, '.claude', 'guard-policy.yaml'));
  const call = toolCall(input);
  const decision = decideToolCall(tools, call);
  const label = labelOf(input);
  if (decision.kind !== 'action') {
    const rule = decision.rule === 'default' ? 'tools.default' : `tools.rules[${decision.rule}]`;
    if (decision.kind === 'allow') return null;
    if (decision.kind === 'ask') return answer('ask', `The Slack Guard policy (${rule}) asks you to confirm ${label}.`);
    return answer('deny', `Blocked by the Slack Guard policy (${rule}): ${label}.`);
  }

  const client = env.GUARD_URL ? new GuardClient({ baseUrl: env.GUARD_URL, agentKey: env.GUARD_AGENT_KEY }) : null;
  const outcome = await runGate(
    {
      client,
      receiptKey: receiptKeyProvider(client, env.GUARD_RECEIPT_KEY_FILE),
      claims: ClaimStore.fromEnv(),
      origin: { repo: defaultRepo(process.env, projectDir) },
      requester: env.GUARD_REQUESTER,
    },
    {
      call,
      decision,
      label,
      justification: justificationOf(input, label),
      waitMs: env.GUARD_HOOK_WAIT_SEC * 1000,
    },
  );
  if (outcome.kind === 'approved') {
    return answer('allow', outcome.message, outcome.edited ? outcome.arguments : undefined);
  }
  if (outcome.kind === 'unreachable') {
    if (outcome.fallback === 'allow') return null;
    return answer(outcome.fallback, outcome.message);
  }
  return answer('deny', outcome.message);
}

function parseInput(stdin: string): HookInput {
  let json: unknown;
  try {
    json = JSON.parse(stdin);
  } catch {
    throw new GateConfigError('stdin is not the JSON of a Claude Code hook');
  }
  const parsed = hookInputSchema.safeParse(json);
  if (!parsed.success)
    throw new GateConfigError(`stdin is not a PreToolUse hook input: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

async function loadTools(path: string): Promise<ToolsSection> {
  try {
    return await loadToolsSection(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || /cannot read/.test((err as Error).message)) {
      throw new GateConfigError(`no policy at ${path} (set GUARD_POLICY or --policy)`);
    }
    throw err;
  }
}

/** `mcp__<server>__<tool>` is an MCP server's tool; anything else is one of Claude Code's own. */
function toolCall(input: HookInput): ToolCall {
  const mcp = /^mcp__(.+?)__(.+)$/.exec(input.tool_name);
  return {
    ...(mcp ? { server: mcp[1], tool: mcp[2]! } : { tool: input.tool_name }),
    arguments: input.tool_input,
    cwd: input.cwd,
  };
}

const LABEL_MAX = 200;

/** `Bash(git push origin main)`, `Write(/repo/.env)`, `github/create_issue`: the call as people read it. */
function labelOf(input: HookInput): string {
  const mcp = /^mcp__(.+?)__(.+)$/.exec(input.tool_name);
  if (mcp) return `${mcp[1]}/${mcp[2]}`;
  const subject = ['command', 'file_path', 'notebook_path', 'url', 'pattern']
    .map((k) => input.tool_input[k])
    .find((v): v is string => typeof v === 'string');
  if (subject === undefined) return input.tool_name;
  const cut = subject.length > LABEL_MAX ? `${subject.slice(0, LABEL_MAX)}…` : subject;
  return `${input.tool_name}(${cut})`;
}

/** The model's own description of a Bash command says why better than anything else here. */
function justificationOf(input: HookInput, label: string): string {
  const description = input.tool_input.description;
  const said = typeof description === 'string' && description.trim().length >= 3 ? `: ${description.trim()}` : '';
  return `Claude Code wants to run ${label}${said}`;
}

function answer(decision: GateVerdict, reason: string, updatedInput?: Record<string, unknown>): HookAnswer {
  return {
    hookSpecificOutput: {
      hookEventName: 'PreToolUse',
      permissionDecision: decision,
      permissionDecisionReason: reason,
      ...(updatedInput ? { updatedInput } : {}),
    },
  };
}

/**
 * `guard hook claude-code`: answers on stdout and exits 0. Past the wait bound plus a margin (a hung connection), it
 * denies on its own, before Claude Code's timeout would let the tool run.
 */
export async function runHook(args: string[]): Promise<number> {
  const [host, ...rest] = args;
  if (host === '--help' || host === '-h' || rest.includes('--help')) {
    process.stdout.write(`${HOOK_USAGE}\n`);
    return 0;
  }
  if (host !== 'claude-code') {
    process.stderr.write(`guard: hook for '${host ?? ''}' unknown (only claude-code)\n\n${HOOK_USAGE}\n`);
    return 1;
  }
  const policyAt = rest.indexOf('--policy');
  const policyFlag = policyAt >= 0 ? rest[policyAt + 1] : undefined;
  const waitSec = Number(process.env.GUARD_HOOK_WAIT_SEC) || 50;
  const watchdog = setTimeout(
    () => {
      emit(answer('deny', `Slack Guard did not get an answer within ${waitSec + 5} s, so the call is blocked.`));
      process.exit(0);
    },
    (waitSec + 5) * 1000,
  );
  watchdog.unref();
  let stdin: string;
  try {
    stdin = readFileSync(0, 'utf8');
  } catch (err) {
    stdin = `not readable: ${(err as Error).message}`;
  }
  const result = await decideHook(stdin, policyFlag);
  clearTimeout(watchdog);
  if (result) emit(result);
  return 0;
}

function emit(result: HookAnswer): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
