import type { ToolRule, ToolsSection } from './policy-schema.js';

/**
 * The tool gate (issue 19): which tool calls of an agent need a human, as the policy's `tools` section says, and how a
 * call's arguments become a request's params and back. Pure, so the policy check, the MCP gateway and the Claude Code
 * hook share one reading of a rule (docs/agents.md is the reference).
 */

export type GateVerdict = 'allow' | 'deny' | 'ask';
/** What a gated tool does when the service cannot be reached: refuse (the default), pass, or ask the person. */
export type Unreachable = GateVerdict;

/** Param name → where its value comes from: an argument path (`options.force`), or `$tool`, `$server`, `$cwd`. */
export type ParamsMapping = Record<string, string>;

export const PARAM_SOURCES = ['$tool', '$server', '$cwd'] as const;

/** One tool call as the gate sees it. */
export interface ToolCall {
  /** The MCP server the tool belongs to; undefined for a host's built-in tool (Claude Code's Bash, Edit...). */
  server?: string | undefined;
  tool: string;
  arguments: Record<string, unknown>;
  /** The agent's working directory: relative `path` patterns are matched against paths under it. */
  cwd?: string | undefined;
}

/** Which rule decided: its index in `tools.rules`, or `default`. */
export type RuleRef = number | 'default';

export type GateDecision =
  | { kind: GateVerdict; rule: RuleRef }
  | {
      kind: 'action';
      rule: RuleRef;
      action: string;
      /** The request's params, from the arguments through the rule's mapping. */
      params: Record<string, unknown>;
      mapping: ParamsMapping | null;
      justification: string | null;
      unreachable: Unreachable;
    };

/** The first rule that matches the call decides; none → `tools.default`. */
export function decideToolCall(gate: ToolsSection, call: ToolCall): GateDecision {
  const index = gate.rules.findIndex((rule) => ruleMatches(rule, call));
  const rule: ToolRule | ToolsSection['default'] = index >= 0 ? gate.rules[index]! : gate.default;
  const ref: RuleRef = index >= 0 ? index : 'default';
  if (typeof rule === 'string') return { kind: rule, rule: ref };
  if (rule.action === undefined) return { kind: 'decision' in rule ? (rule.decision ?? 'deny') : 'deny', rule: ref };
  const mapping = rule.params ?? null;
  return {
    kind: 'action',
    rule: ref,
    action: rule.action,
    params: mapParams(mapping, call),
    mapping,
    justification: rule.justification ?? null,
    unreachable: rule.unreachable ?? gate.unreachable,
  };
}

export function ruleMatches(rule: ToolRule, call: ToolCall): boolean {
  if (rule.server !== undefined && (call.server === undefined || !anyGlob(rule.server, call.server))) return false;
  if (!anyGlob(rule.tool, call.tool)) return false;
  if (rule.command !== undefined) {
    const command = call.arguments.command;
    if (typeof command !== 'string' || !compileRegex(rule.command).test(command)) return false;
  }
  if (rule.path !== undefined && !pathMatches(rule.path, call)) return false;
  for (const [argPath, pattern] of Object.entries(rule.args ?? {})) {
    const value = getPath(call.arguments, argPath);
    if (value === undefined || !compileGlob(pattern).test(asText(value))) return false;
  }
  return true;
}

/** The argument a file tool acts on: Claude Code's Edit/Write (`file_path`), NotebookEdit, or an MCP tool's `path`. */
const PATH_ARGUMENTS = ['file_path', 'notebook_path', 'path'];

function pathMatches(patterns: string | string[], call: ToolCall): boolean {
  const path = PATH_ARGUMENTS.map((k) => call.arguments[k]).find((v): v is string => typeof v === 'string');
  if (path === undefined) return false;
  const candidates = [path];
  const base = call.cwd?.replace(/\/+$/, '');
  if (base && path.startsWith(`${base}/`)) candidates.push(path.slice(base.length + 1));
  return candidates.some((p) => anyGlob(patterns, p));
}

/** The params of the request for a call: every argument when the rule maps none, else the mapped ones. */
export function mapParams(mapping: ParamsMapping | null, call: ToolCall): Record<string, unknown> {
  if (!mapping) return structuredClone(call.arguments);
  const params: Record<string, unknown> = {};
  for (const [param, source] of Object.entries(mapping)) {
    const value = sourceValue(source, call);
    if (value !== undefined) params[param] = structuredClone(value);
  }
  return params;
}

function sourceValue(source: string, call: ToolCall): unknown {
  if (source === '$tool') return call.tool;
  if (source === '$server') return call.server;
  if (source === '$cwd') return call.cwd;
  return getPath(call.arguments, source);
}

/**
 * The arguments to run with once approved: the call's own, with each mapped param's effective value (an approver's
 * edit applied) written back where it came from. `$tool`/`$server`/`$cwd` are facts of the call, not arguments: an
 * edit of one cannot be applied, and the caller's check (the params of the result must hash to the receipt's) fails.
 */
export function applyEffectiveParams(
  mapping: ParamsMapping | null,
  call: ToolCall,
  effective: Record<string, unknown>,
): Record<string, unknown> {
  if (!mapping) return inOrderOf(call.arguments, structuredClone(effective));
  let args = structuredClone(call.arguments);
  for (const [param, source] of Object.entries(mapping)) {
    if (source.startsWith('$') || !Object.hasOwn(effective, param)) continue;
    args = setPath(args, source, structuredClone(effective[param]));
  }
  return args;
}

/** `next` with the keys `before` had in their order first: the upstream sees the call as the agent wrote it. */
function inOrderOf(before: Record<string, unknown>, next: Record<string, unknown>): Record<string, unknown> {
  const kept = Object.keys(before).filter((k) => Object.hasOwn(next, k));
  const added = Object.keys(next).filter((k) => !Object.hasOwn(before, k));
  return Object.fromEntries([...kept, ...added].map((k) => [k, next[k]]));
}

function segments(path: string): string[] {
  return path.split('.');
}

export function getPath(value: Record<string, unknown>, path: string): unknown {
  let current: unknown = value;
  for (const seg of segments(path)) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, seg)) return undefined;
    current = (current as Record<string, unknown>)[seg];
  }
  return current;
}

function setPath(value: Record<string, unknown>, path: string, next: unknown): Record<string, unknown> {
  const [head, ...rest] = segments(path) as [string, ...string[]];
  if (rest.length === 0) return { ...value, [head]: next };
  const child = value[head];
  const inner = child !== null && typeof child === 'object' && !Array.isArray(child) ? child : {};
  return { ...value, [head]: setPath(inner as Record<string, unknown>, rest.join('.'), next) };
}

function asText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function anyGlob(patterns: string | string[], value: string): boolean {
  return (Array.isArray(patterns) ? patterns : [patterns]).some((p) => compileGlob(p).test(value));
}

const globs = new Map<string, RegExp>();
const regexes = new Map<string, RegExp>();

/**
 * A glob as a whole-string RegExp: `*` any run of characters but `/`, `**` any run including `/` (`**\/` also none),
 * `?` one character but `/`, `{a,b}` alternatives, `[abc]` a class; a backslash escapes the next character.
 * Throws GlobError for an unbalanced `{` or `[`.
 */
export function compileGlob(pattern: string): RegExp {
  let compiled = globs.get(pattern);
  if (!compiled) {
    compiled = new RegExp(`^${globSource(pattern)}$`, 'u');
    globs.set(pattern, compiled);
  }
  return compiled;
}

export class GlobError extends Error {}

function globSource(pattern: string): string {
  let out = '';
  let depth = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const next = pattern[++i];
      if (next === undefined) throw new GlobError('ends with a lone backslash');
      out += escapeRegex(next);
    } else if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          out += '(?:.*/)?';
        } else out += '.*';
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else if (c === '{') {
      depth++;
      out += '(?:';
    } else if (c === '}' && depth > 0) {
      depth--;
      out += ')';
    } else if (c === ',' && depth > 0) out += '|';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) throw new GlobError(`unclosed '[' at position ${i + 1}`);
      const body = pattern.slice(i + 1, end);
      out += `[${body.startsWith('!') ? `^${classBody(body.slice(1))}` : classBody(body)}]`;
      i = end;
    } else out += escapeRegex(c);
  }
  if (depth > 0) throw new GlobError("unclosed '{'");
  return out;
}

function classBody(body: string): string {
  return body.replace(/[\\\]^]/g, '\\$&');
}

function escapeRegex(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}

/** Why a glob is refused, or null when it compiles. */
export function globProblem(pattern: string): string | null {
  try {
    compileGlob(pattern);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** A `command` pattern: a JavaScript regular expression searched anywhere in the command line. */
export function compileRegex(pattern: string): RegExp {
  let compiled = regexes.get(pattern);
  if (!compiled) {
    compiled = new RegExp(pattern, 'u');
    regexes.set(pattern, compiled);
  }
  return compiled;
}

export function regexProblem(pattern: string): string | null {
  try {
    compileRegex(pattern);
    return null;
  } catch (err) {
    return (err as Error).message.replace(/^Invalid regular expression: /, '');
  }
}
