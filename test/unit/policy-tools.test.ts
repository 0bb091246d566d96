import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePolicy, PolicyError } from '../../domain/policy-loader.js';
import type { ToolsSection } from '../../domain/policy-schema.js';
import {
  applyEffectiveParams,
  compileGlob,
  decideToolCall,
  globProblem,
  mapParams,
  type ToolCall,
} from '../../domain/tool-gate.js';

function errorsOf(yaml: string): string[] {
  try {
    parsePolicy(yaml);
  } catch (err) {
    if (err instanceof PolicyError) return err.errors;
    throw err;
  }
  throw new Error('expected the policy to be refused');
}

function toolsOf(yaml: string): ToolsSection {
  const tools = parsePolicy(yaml).policy.tools;
  if (!tools) throw new Error('no tools section');
  return tools;
}

/** The common cases of docs/agents.md, as one file with the actions they name. */
const COMMON = `
routing: { defaultChannel: C_OPS }
actions:
  git_push_main: { approvers: { allowSlackIds: [U_A] } }
  terraform_apply: { approvers: { allowSlackIds: [U_A] } }
  kubectl_prod: { approvers: { allowSlackIds: [U_A] } }
  write_env: { approvers: { allowSlackIds: [U_A] } }
  github_write: { approvers: { allowSlackIds: [U_A] } }
tools:
  default: allow
  rules:
    - tool: Bash
      command: '\\bgit\\s+push\\b.*\\b(main|master)\\b'
      action: git_push_main
      params: { command: command, cwd: $cwd }
    - tool: Bash
      command: '\\bterraform\\s+apply\\b'
      action: terraform_apply
      params: { command: command }
    - tool: Bash
      command: '\\bkubectl\\b.*--context[= ]prod'
      action: kubectl_prod
    - tool: [Edit, Write, MultiEdit]
      path: ['**/.env', '**/.env.*']
      action: write_env
      params: { file_path: file_path, content: content }
    - server: github
      tool: 'create_*'
      action: github_write
      params: { repo: repo, title: title, tool: $tool }
    - server: github
      tool: 'delete_*'
      decision: deny
    - server: github
      tool: push_files
      args: { branch: '{main,release/**}' }
      action: github_write
`;

describe('tools section: which calls need a human', () => {
  const tools = toolsOf(COMMON);
  const bash = (command: string): ToolCall => ({ tool: 'Bash', arguments: { command }, cwd: '/src/shop' });

  test.each<[string, ToolCall, string]>([
    ['git push to main', bash('git push origin main'), 'git_push_main'],
    ['git push to master after a cd', bash('cd app && git push -f upstream master'), 'git_push_main'],
    ['git push to a feature branch passes', bash('git push origin feature/x'), 'allow'],
    ['terraform apply', bash('terraform apply -auto-approve'), 'terraform_apply'],
    ['terraform plan passes', bash('terraform plan'), 'allow'],
    ['kubectl against prod', bash('kubectl --context=prod delete pod web-1'), 'kubectl_prod'],
    ['kubectl against staging passes', bash('kubectl --context staging get pods'), 'allow'],
    ['writing .env (absolute path)', { tool: 'Write', arguments: { file_path: '/src/shop/.env' } }, 'write_env'],
    [
      'editing .env.production',
      { tool: 'Edit', arguments: { file_path: '/src/shop/config/.env.production' } },
      'write_env',
    ],
    ['writing .envrc passes', { tool: 'Write', arguments: { file_path: '/src/shop/.envrc' } }, 'allow'],
    ['reading .env passes (Read is not listed)', { tool: 'Read', arguments: { file_path: '/src/shop/.env' } }, 'allow'],
    ['an MCP tool by glob on its server', { server: 'github', tool: 'create_issue', arguments: {} }, 'github_write'],
    ['the same tool name on another server passes', { server: 'gitlab', tool: 'create_issue', arguments: {} }, 'allow'],
    ['a built-in tool never matches a server rule', { tool: 'create_issue', arguments: {} }, 'allow'],
    ['a deny rule', { server: 'github', tool: 'delete_repository', arguments: {} }, 'deny'],
    [
      'an argument glob',
      { server: 'github', tool: 'push_files', arguments: { branch: 'release/2.1' } },
      'github_write',
    ],
    ['an argument glob that misses', { server: 'github', tool: 'push_files', arguments: { branch: 'dev' } }, 'allow'],
    ['a missing argument never matches', { server: 'github', tool: 'push_files', arguments: {} }, 'allow'],
  ])('%s', (_name, call, expected) => {
    const decision = decideToolCall(tools, call);
    expect(decision.kind === 'action' ? decision.action : decision.kind).toBe(expected);
  });

  test('the first matching rule decides, and says which it was', () => {
    const decision = decideToolCall(tools, bash('git push origin main && terraform apply'));
    expect(decision).toMatchObject({ kind: 'action', action: 'git_push_main', rule: 0 });
  });

  test('params through the mapping: arguments by path, and $cwd / $tool / $server', () => {
    expect(decideToolCall(tools, bash('git push origin main'))).toMatchObject({
      params: { command: 'git push origin main', cwd: '/src/shop' },
      unreachable: 'deny',
      justification: null,
    });
    const create: ToolCall = { server: 'github', tool: 'create_issue', arguments: { repo: 'acme/shop', body: 'x' } };
    expect(decideToolCall(tools, create)).toMatchObject({ params: { repo: 'acme/shop', tool: 'create_issue' } });
  });

  test('without a mapping, every argument is a param', () => {
    const call = bash('kubectl --context=prod apply -f x.yaml');
    expect(decideToolCall(tools, { ...call, arguments: { ...call.arguments, timeout: 5 } })).toMatchObject({
      params: { command: 'kubectl --context=prod apply -f x.yaml', timeout: 5 },
    });
  });

  test.each<[string, string, ReturnType<typeof decideToolCall>['kind'] | string]>([
    ['allow', 'default: allow', 'allow'],
    ['deny', 'default: deny', 'deny'],
    ['ask', 'default: ask', 'ask'],
    ['an action', 'default: { action: a, unreachable: ask }', 'a'],
  ])('default %s', (_name, line, expected) => {
    const section = toolsOf(`actions: { a: { approvers: { allowSlackIds: [U_A] } } }\ntools:\n  ${line}\n`);
    const decision = decideToolCall(section, { tool: 'anything', arguments: { x: 1 } });
    expect(decision.kind === 'action' ? decision.action : decision.kind).toBe(expected);
    if (decision.kind === 'action') expect(decision).toMatchObject({ params: { x: 1 }, unreachable: 'ask' });
  });

  test('defaults of the section: unmapped tools pass, unreachable refuses', () => {
    expect(toolsOf('tools: {}\n')).toEqual({ default: 'allow', unreachable: 'deny', rules: [] });
    expect(parsePolicy('actions: {}\n').policy.tools).toBeUndefined();
  });
});

describe('effective params back into arguments', () => {
  const call: ToolCall = {
    server: 'k8s',
    tool: 'scale',
    arguments: { deployment: 'web', spec: { replicas: 3, paused: false }, dryRun: false },
  };
  const mapping = { deployment: 'deployment', replicas: 'spec.replicas', tool: '$tool' };

  test('an edited param is written back where it came from; unmapped arguments stay', () => {
    const params = mapParams(mapping, call);
    expect(params).toEqual({ deployment: 'web', replicas: 3, tool: 'scale' });
    const args = applyEffectiveParams(mapping, call, { ...params, replicas: 7 });
    expect(args).toEqual({ deployment: 'web', spec: { replicas: 7, paused: false }, dryRun: false });
    expect(call.arguments.spec).toEqual({ replicas: 3, paused: false });
  });

  test('an edit of a fact of the call ($tool) cannot be applied: the params of the result differ', () => {
    const args = applyEffectiveParams(mapping, call, { ...mapParams(mapping, call), tool: 'delete' });
    expect(mapParams(mapping, { ...call, arguments: args }).tool).toBe('scale');
  });

  test('without a mapping, the effective params are the arguments, in the order the agent wrote them', () => {
    expect(applyEffectiveParams(null, call, { deployment: 'api' })).toEqual({ deployment: 'api' });
    const args = applyEffectiveParams(null, call, { extra: 1, dryRun: true, deployment: 'api', spec: {} });
    expect(Object.keys(args)).toEqual(['deployment', 'spec', 'dryRun', 'extra']);
  });
});

describe('globs', () => {
  test.each<[string, string, boolean]>([
    ['create_*', 'create_issue', true],
    ['create_*', 'create_', true],
    ['create_*', 'xcreate_issue', false],
    ['*.yaml', 'a.yaml', true],
    ['*.yaml', 'dir/a.yaml', false],
    ['**/*.yaml', 'dir/sub/a.yaml', true],
    ['**/*.yaml', 'a.yaml', true],
    ['**/.env', '/home/me/app/.env', true],
    ['**/.env', '/home/me/app/.env.bak', false],
    ['src/**', 'src/a/b.ts', true],
    ['file?.txt', 'file1.txt', true],
    ['file?.txt', 'file12.txt', false],
    ['{main,master}', 'master', true],
    ['release/{v1,v2}.*', 'release/v2.3', true],
    ['[abc]x', 'bx', true],
    ['[!abc]x', 'bx', false],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['a.b', 'axb', false],
    ['(x)|y', '(x)|y', true],
  ])('%s ~ %s → %s', (pattern, value, expected) => {
    expect(compileGlob(pattern).test(value)).toBe(expected);
  });

  test.each([
    ['{a,b', "unclosed '{'"],
    ['[ab', "unclosed '[' at position 1"],
    ['ab\\', 'ends with a lone backslash'],
  ])('%s is refused: %s', (pattern, problem) => {
    expect(globProblem(pattern)).toBe(problem);
  });
});

describe('tools section: validation errors name the YAML path', () => {
  const actions = 'actions: { deploy: { approvers: { allowSlackIds: [U_A] } } }\n';
  test.each<[string, string, string]>([
    [
      'neither action nor decision',
      'tools: { rules: [{ tool: Bash }] }',
      'tools.rules[0]: must set action or decision',
    ],
    [
      'both action and decision',
      'tools: { rules: [{ tool: Bash, action: deploy, decision: deny }] }',
      'tools.rules[0].decision: must not be set with action (an action sends the call to the approvers)',
    ],
    [
      'params on a decision',
      'tools: { rules: [{ tool: Bash, decision: deny, params: { c: command } }] }',
      'tools.rules[0].params: applies to an action only: set action, or remove it',
    ],
    [
      'an action the policy does not define',
      'tools: { rules: [{ tool: Bash, action: deploi }] }',
      "tools.rules[0].action: 'deploi' is not under actions: the service would refuse it (policy_denied)",
    ],
    [
      'a default action the policy does not define',
      'tools: { default: { action: nope } }',
      "tools.default.action: 'nope' is not under actions: the service would refuse it (policy_denied)",
    ],
    [
      'a bad regular expression',
      "tools: { rules: [{ tool: Bash, command: 'git (push', action: deploy }] }",
      'tools.rules[0].command: invalid regular expression: /git (push/u: Unterminated group',
    ],
    [
      'a bad glob in a list',
      "tools: { rules: [{ tool: [Edit, 'W{rite'], action: deploy }] }",
      "tools.rules[0].tool[1]: invalid pattern: unclosed '{'",
    ],
    [
      'a bad argument glob',
      "tools: { rules: [{ tool: x, args: { branch: '[main' }, action: deploy }] }",
      "tools.rules[0].args.branch: invalid pattern: unclosed '[' at position 1",
    ],
    [
      'an unknown param source',
      'tools: { rules: [{ tool: x, action: deploy, params: { who: $user } }] }',
      "tools.rules[0].params.who: unknown source '$user' (one of $tool, $server, $cwd, or an argument path)",
    ],
    ['a rule without tool', 'tools: { rules: [{ action: deploy }] }', 'tools.rules[0].tool: is required'],
    [
      'a tool of the wrong type',
      'tools: { rules: [{ tool: 5, action: deploy }] }',
      'tools.rules[0].tool: must be a string or a list, not number 5',
    ],
    [
      'a default of the wrong kind',
      'tools: { default: pass }',
      'tools.default: must be one of "allow", "deny", "ask" or an object, not string "pass"',
    ],
    [
      'an empty tool list',
      'tools: { rules: [{ tool: [], action: deploy }] }',
      'tools.rules[0].tool: must list at least one pattern',
    ],
    [
      'an unknown rule key',
      'tools: { rules: [{ tool: x, action: deploy, comand: y }] }',
      "tools.rules[0].comand: unknown key (did you mean 'command'?)",
    ],
    ['a bad unreachable', 'tools: { unreachable: pass }', 'tools.unreachable: must be one of "allow", "deny", "ask"'],
  ])('%s', (_name, yaml, expected) => {
    expect(errorsOf(`${actions}${yaml}\n`)).toContain(expected);
  });

  test('a tools-only file (the gateway’s own) names actions it cannot check, and is not warned about', () => {
    const loaded = parsePolicy("tools: { rules: [{ tool: 'x*', action: anything }] }\n");
    expect(loaded.policy.tools?.rules[0]?.action).toBe('anything');
    expect(loaded.warnings).toEqual([]);
  });

  test('unreachable: allow is legal but warned about', () => {
    const loaded = parsePolicy(
      `${actions}tools: { unreachable: allow, rules: [{ tool: x, action: deploy, unreachable: allow }] }\n`,
    );
    expect(loaded.warnings.filter((w) => w.startsWith('tools'))).toEqual([
      'tools.unreachable: lets the tool run unapproved whenever the service cannot be reached',
      'tools.rules[0].unreachable: lets the tool run unapproved whenever the service cannot be reached',
    ]);
  });

  test('the common cases of docs/agents.md load without errors or warnings', () => {
    expect(parsePolicy(COMMON).warnings).toEqual([]);
  });
});

describe('the shipped agent tool gate (policies/examples/agent-tools.yaml) on the common cases', () => {
  const file = join(import.meta.dirname, '../../policies/examples/agent-tools.yaml');
  const tools = toolsOf(readFileSync(file, 'utf8'));
  const cwd = '/home/dev/shop';
  const bash = (command: string): ToolCall => ({ tool: 'Bash', arguments: { command }, cwd });
  const file_ = (tool: string, path: string): ToolCall => ({ tool, arguments: { file_path: path }, cwd });

  test.each<[string, ToolCall, string]>([
    ['git push to main', bash('git push origin main'), 'git_push_main'],
    ['git push HEAD:master', bash('git push upstream HEAD:master'), 'git_push_main'],
    ['git push of a branch', bash('git push -u origin fix/login'), 'allow'],
    ['terraform apply', bash('cd infra && terraform apply -auto-approve'), 'terraform_apply'],
    ['terraform destroy', bash('terraform destroy'), 'terraform_apply'],
    ['terraform plan', bash('terraform plan -out plan.bin'), 'allow'],
    ['kubectl against prod', bash('kubectl --context=prod rollout restart deploy/web'), 'kubectl_prod'],
    ['kubectl against prod (space)', bash('kubectl get pods --context prod'), 'kubectl_prod'],
    ['kubectl against staging', bash('kubectl --context=staging get pods'), 'allow'],
    ['kubectl against a context named production-like', bash('kubectl --context=prodigy get pods'), 'allow'],
    ['writing .env', file_('Write', `${cwd}/.env`), 'write_env'],
    ['editing .env.local in a subfolder', file_('Edit', `${cwd}/api/.env.local`), 'write_env'],
    ['writing another file', file_('Write', `${cwd}/src/env.ts`), 'allow'],
    ['reading .env', file_('Read', `${cwd}/.env`), 'allow'],
    [
      'an MCP push to main',
      { server: 'github', tool: 'push_files', arguments: { owner: 'acme', repo: 'shop', branch: 'main' } },
      'git_push_main',
    ],
    ['an MCP push to a branch', { server: 'github', tool: 'push_files', arguments: { branch: 'fix' } }, 'allow'],
    ['an MCP delete', { server: 'github', tool: 'delete_file', arguments: {} }, 'deny'],
  ])('%s', (_name, call, expected) => {
    const decision = decideToolCall(tools, call);
    expect(decision.kind === 'action' ? decision.action : decision.kind).toBe(expected);
  });

  test('the approvers see the command and where it runs', () => {
    expect(decideToolCall(tools, bash('git push origin main'))).toMatchObject({
      params: { command: 'git push origin main', cwd },
    });
  });
});
