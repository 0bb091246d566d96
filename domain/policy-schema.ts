import { z } from 'zod';
import { overrideSchemaProblems } from './json-schema.js';
import { globProblem, PARAM_SOURCES, regexProblem } from './tool-gate.js';

/**
 * The policy file format (SPEC section 5; docs/policy.md is the operators' reference). Objects are strict: a
 * misspelt key is an error, never ignored. Kept free of I/O so the API, the check command and the tests share it.
 */
const slackId = z.string().min(1, 'must not be empty');
const name = z.string().min(1, 'must not be empty');
const seconds = z.number().int('must be a whole number of seconds').positive('must be greater than 0');

export const DEFAULT_TIMEOUT_SEC = 3600;
/** How long a decision receipt stays valid after the decision (issue 17: one hour unless the policy says). */
export const DEFAULT_RECEIPT_TTL_SEC = 3600;

export const redactionSchema = z.strictObject({
  mode: z.enum(['allowlist', 'denylist', 'all']),
  keys: z.array(name).default([]),
});

export const escalationSchema = z.strictObject({
  escalateBeforeSec: seconds,
  escalationChannel: name.optional(),
  escalateMinApprovals: z.number().int('must be a whole number').min(1, 'must be at least 1').optional(),
});

export const approversSchema = z.strictObject({
  allowSlackIds: z.array(slackId).default([]),
  minApprovals: z.number().int('must be a whole number').min(1, 'must be at least 1').default(1),
});

export const actionSchema = z.strictObject({
  description: z.string().optional(),
  approvers: approversSchema.default({ allowSlackIds: [], minApprovals: 1 }),
  personasRequired: z.array(name).default([]),
  timeoutSec: seconds.optional(),
  redactParams: redactionSchema.optional(),
  channel: name.optional(),
  escalation: escalationSchema.optional(),
  allowReRequest: z.boolean().default(false),
  reRequestCooldownSec: z.number().int('must be a whole number of seconds').min(0, 'must not be negative').default(0),
  allowParamOverrides: z.boolean().default(false),
  overrideKeys: z.array(name).default([]),
  overrideSchema: z.record(z.string(), z.unknown()).optional(),
  allowSelfApproval: z.boolean().default(false),
  paramsSchema: z.record(z.string(), z.unknown()).optional(),
  receiptTtlSec: seconds.optional(),
});

export const routingSchema = z.strictObject({
  defaultChannel: name.optional(),
  dmFallbackUser: slackId.optional(),
  defaultTimeoutSec: seconds.default(DEFAULT_TIMEOUT_SEC),
});

export const defaultsSchema = z.strictObject({
  unknownAction: z.enum(['deny', 'manual']).default('deny'),
  superApprovers: z.array(slackId).default([]),
  receiptTtlSec: seconds.default(DEFAULT_RECEIPT_TTL_SEC),
});

/** `tools` (issue 19): which tool calls of an agent need a human; docs/agents.md is the reference. */
const verdict = z.enum(['allow', 'deny', 'ask']);
const glob = z.string().min(1, 'must not be empty');
const globs = z.union([glob, z.array(glob).min(1, 'must list at least one pattern')]);
const paramsMapping = z.record(name, z.string().min(1, 'must not be empty'));
const justification = z.string().trim().min(3, 'must be at least 3 characters').max(4000);

export const toolRuleSchema = z.strictObject({
  server: globs.optional(),
  tool: globs,
  command: z.string().min(1, 'must not be empty').optional(),
  path: globs.optional(),
  args: z.record(z.string().min(1, 'must not be empty'), glob).optional(),
  action: name.optional(),
  decision: verdict.optional(),
  params: paramsMapping.optional(),
  justification: justification.optional(),
  unreachable: verdict.optional(),
});

export const toolsSchema = z.strictObject({
  default: z
    .union([
      verdict,
      z.strictObject({
        action: name,
        params: paramsMapping.optional(),
        justification: justification.optional(),
        unreachable: verdict.optional(),
      }),
    ])
    .default('allow'),
  unreachable: verdict.default('deny'),
  rules: z.array(toolRuleSchema).default([]),
});

const policyObject = z.strictObject({
  version: z.union([z.number(), z.string()]).optional(),
  actions: z.record(name, actionSchema).default({}),
  routing: routingSchema.default({ defaultTimeoutSec: DEFAULT_TIMEOUT_SEC }),
  defaults: defaultsSchema.default({
    unknownAction: 'deny',
    superApprovers: [],
    receiptTtlSec: DEFAULT_RECEIPT_TTL_SEC,
  }),
  personas: z.record(name, z.array(slackId)).default({}),
  tools: toolsSchema.optional(),
});

export type Policy = z.infer<typeof policyObject>;
export type ToolsSection = z.infer<typeof toolsSchema>;
export type ToolRule = z.infer<typeof toolRuleSchema>;
export type PolicyAction = z.infer<typeof actionSchema>;
export type Redaction = z.infer<typeof redactionSchema>;

type Path = (string | number)[];
type Report = (path: Path, message: string) => void;

/** Which top-level sections parsed cleanly: a rule reading a broken one would be reading raw input. */
interface Intact {
  routing: boolean;
  defaults: boolean;
  personas: boolean;
}

/**
 * Cross-field rules run even when other parts of the file are broken, so one run lists every error; a rule
 * is skipped only when a section it reads did not parse.
 */
export const policySchema = policyObject.superRefine(
  (policy, ctx) => {
    const broken = ctx.issues.filter((i) => i.code !== 'unrecognized_keys').map((i) => i.path ?? []);
    // Intact: no issue inside this section, nor above it (the section itself of the wrong type).
    const intact = (...section: Path) =>
      !broken.some((p) => p.every((seg, i) => i >= section.length || seg === section[i]));
    const report: Report = (path, message) => ctx.addIssue({ code: 'custom', path, message });
    const sections = { routing: intact('routing'), defaults: intact('defaults'), personas: intact('personas') };
    if (sections.defaults) checkDefaults(policy, report);
    if (policy.tools && intact('tools'))
      checkTools(policy, policy.tools, intact('actions') && sections.defaults, report);
    if (broken.some((p) => isPrefix(p, ['actions']))) return;
    for (const [actionName, action] of Object.entries(policy.actions)) {
      if (!intact('actions', actionName)) continue;
      const at = (path: Path, message: string) => report(['actions', actionName, ...path], message);
      checkAction(policy, sections, action, at);
    }
  },
  { when: (payload) => isPlainObject(payload.value) },
);

function checkDefaults(policy: Policy, report: Report): void {
  if (policy.defaults.unknownAction === 'manual' && policy.defaults.superApprovers.length === 0) {
    report(['defaults', 'superApprovers'], 'must list at least one Slack id when unknownAction is manual');
  }
}

function checkTools(policy: Policy, tools: ToolsSection, actionsIntact: boolean, report: Report): void {
  // A tools-only file (the gateway's or the hook's own) names actions of the service's policy: only a file that
  // defines actions can be checked against them.
  const known = actionsIntact && Object.keys(policy.actions).length > 0 && policy.defaults.unknownAction === 'deny';
  const checkActionName = (action: string, at: Path) => {
    if (known && !Object.hasOwn(policy.actions, action)) {
      report(at, `'${action}' is not under actions: the service would refuse it (policy_denied)`);
    }
  };
  if (typeof tools.default === 'object') {
    checkActionName(tools.default.action, ['tools', 'default', 'action']);
    checkMapping(tools.default.params, ['tools', 'default', 'params'], report);
  }
  tools.rules.forEach((rule, i) => {
    const at = (...path: Path): Path => ['tools', 'rules', i, ...path];
    if (rule.action === undefined && rule.decision === undefined) report(at(), 'must set action or decision');
    if (rule.action !== undefined && rule.decision !== undefined) {
      report(at('decision'), 'must not be set with action (an action sends the call to the approvers)');
    }
    if (rule.action !== undefined) checkActionName(rule.action, at('action'));
    else {
      for (const key of ['params', 'justification', 'unreachable'] as const) {
        if (rule[key] !== undefined) report(at(key), 'applies to an action only: set action, or remove it');
      }
    }
    for (const key of ['server', 'tool', 'path'] as const) checkGlobs(rule[key], at(key), report);
    for (const [arg, pattern] of Object.entries(rule.args ?? {})) checkGlobs(pattern, at('args', arg), report);
    const problem = rule.command === undefined ? null : regexProblem(rule.command);
    if (problem) report(at('command'), `invalid regular expression: ${problem}`);
    checkMapping(rule.params, at('params'), report);
  });
}

function checkGlobs(patterns: string | string[] | undefined, at: Path, report: Report): void {
  if (patterns === undefined) return;
  const list = Array.isArray(patterns) ? patterns : [patterns];
  list.forEach((pattern, i) => {
    const problem = globProblem(pattern);
    if (problem) report(Array.isArray(patterns) ? [...at, i] : at, `invalid pattern: ${problem}`);
  });
}

function checkMapping(mapping: Record<string, string> | undefined, at: Path, report: Report): void {
  for (const [param, source] of Object.entries(mapping ?? {})) {
    if (source.startsWith('$') && !(PARAM_SOURCES as readonly string[]).includes(source)) {
      report([...at, param], `unknown source '${source}' (one of ${PARAM_SOURCES.join(', ')}, or an argument path)`);
    }
  }
}

function checkAction(policy: Policy, sections: Intact, action: PolicyAction, report: Report): void {
  if (sections.routing) checkTiming(policy, action, report);
  if (sections.defaults) checkQuorum(policy, action, report);
  if (sections.personas) checkPersonas(policy, action, report);
  checkOverrides(action, report);
  if (action.paramsSchema) checkObjectSchema(action.paramsSchema, ['paramsSchema'], report);
  if (action.redactParams && action.redactParams.mode !== 'all' && action.redactParams.keys.length === 0) {
    report(['redactParams', 'keys'], `must list at least one key for mode ${action.redactParams.mode}`);
  }
}

function checkTiming(policy: Policy, action: PolicyAction, report: Report): void {
  const timeoutSec = action.timeoutSec ?? policy.routing.defaultTimeoutSec;
  const esc = action.escalation;
  if (esc && esc.escalateBeforeSec >= timeoutSec) {
    const from = action.timeoutSec === undefined ? 'routing.defaultTimeoutSec' : 'timeoutSec';
    report(['escalation', 'escalateBeforeSec'], `must be less than ${from} (${timeoutSec})`);
  }
}

function checkQuorum(policy: Policy, action: PolicyAction, report: Report): void {
  const { minApprovals } = action.approvers;
  const raised = action.escalation?.escalateMinApprovals;
  if (raised !== undefined && raised < minApprovals) {
    report(['escalation', 'escalateMinApprovals'], `must be at least approvers.minApprovals (${minApprovals})`);
  }
  const pool = new Set([...action.approvers.allowSlackIds, ...policy.defaults.superApprovers]).size;
  const who = `only ${pool} distinct approver(s) in approvers.allowSlackIds and defaults.superApprovers`;
  if (pool < minApprovals) {
    report(['approvers', 'minApprovals'], `quorum ${minApprovals} can never be reached: ${who}`);
  } else if (raised !== undefined && pool < raised) {
    report(['escalation', 'escalateMinApprovals'], `quorum ${raised} can never be reached: ${who}`);
  }
}

function checkPersonas(policy: Policy, action: PolicyAction, report: Report): void {
  const seen = new Set<string>();
  action.personasRequired.forEach((persona, i) => {
    if (seen.has(persona)) return report(['personasRequired', i], `persona '${persona}' is listed twice`);
    seen.add(persona);
    if (Object.hasOwn(policy.personas, persona) && policy.personas[persona]?.length === 0) {
      report(
        ['personasRequired', i],
        `persona '${persona}' has no members in personas.${persona}: list its members, or remove it from personas to let any approver acknowledge it`,
      );
    }
  });
}

function checkOverrides(action: PolicyAction, report: Report): void {
  if (action.allowParamOverrides && action.overrideKeys.length === 0) {
    report(['overrideKeys'], 'must list at least one key when allowParamOverrides is true');
  }
  const schema = action.overrideSchema;
  if (!schema || !checkObjectSchema(schema, ['overrideSchema'], report)) return;
  const properties = isPlainObject(schema.properties) ? schema.properties : {};
  action.overrideKeys.forEach((key, i) => {
    if (!Object.hasOwn(properties, key)) {
      report(
        ['overrideKeys', i],
        `'${key}' is not a property of overrideSchema (add overrideSchema.properties.${key})`,
      );
    }
  });
}

/**
 * A JSON Schema that validates a whole params object: it compiles (each problem reported once, with its path inside
 * the schema) and its top-level type, if any, is object. False when it does not compile.
 */
function checkObjectSchema(schema: Record<string, unknown>, at: Path, report: Report): boolean {
  const problems = overrideSchemaProblems(schema);
  const seen = new Set<string>();
  for (const problem of problems) {
    const key = problem.path.join('/');
    if (seen.has(key)) continue;
    seen.add(key);
    report([...at, ...problem.path], `invalid JSON Schema: ${problem.message}`);
  }
  if (problems.length > 0) return false;
  const type = schema.type;
  if (type !== undefined && type !== 'object' && !(Array.isArray(type) && type.includes('object'))) {
    report([...at, 'type'], "must be 'object': the schema validates the whole params object");
  }
  return true;
}

function isPrefix(prefix: readonly PropertyKey[], path: Path): boolean {
  return prefix.length <= path.length && prefix.every((seg, i) => seg === path[i]);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Legal but probably not what the author meant: the file loads, `policy:check` prints these (and fails on them
 * with --strict), and reloads audit them.
 */
export function policyWarnings(policy: Policy): string[] {
  const warnings: string[] = [];
  const warn: Report = (path, message) => warnings.push(`${formatPath(path)}: ${message}`);
  duplicates(['defaults', 'superApprovers'], policy.defaults.superApprovers, warn);
  for (const [persona, members] of Object.entries(policy.personas)) duplicates(['personas', persona], members, warn);
  // A file with only a tools section is the gateway's or the hook's, naming actions of the service's policy.
  if (Object.keys(policy.actions).length === 0 && policy.defaults.unknownAction === 'deny' && !policy.tools) {
    warn(['actions'], 'no actions and unknownAction is deny: every request will be refused');
  }
  const routed = Boolean(policy.routing.defaultChannel ?? policy.routing.dmFallbackUser);
  if (!routed && policy.defaults.unknownAction === 'manual') {
    warn(['routing'], 'has no defaultChannel or dmFallbackUser: requests for unknown actions are not posted to Slack');
  }
  for (const [actionName, action] of Object.entries(policy.actions)) {
    actionWarnings(action, routed, (path, message) => warn(['actions', actionName, ...path], message));
  }
  if (policy.tools) toolWarnings(policy.tools, warn);
  return warnings;
}

function actionWarnings(action: PolicyAction, routed: boolean, warn: Report): void {
  if (!action.channel && !routed) {
    warn(
      ['channel'],
      'is not set and routing has no defaultChannel or dmFallbackUser: requests are not posted to Slack',
    );
  }
  duplicates(['approvers', 'allowSlackIds'], action.approvers.allowSlackIds, warn);
  duplicates(['overrideKeys'], action.overrideKeys, warn);
  if (!action.allowParamOverrides && (action.overrideKeys.length > 0 || action.overrideSchema)) {
    warn(['allowParamOverrides'], 'is false: overrideKeys and overrideSchema have no effect');
  }
  if (!action.allowReRequest && action.reRequestCooldownSec > 0) {
    warn(['reRequestCooldownSec'], 'has no effect: allowReRequest is false');
  }
  if (action.redactParams?.mode === 'all' && action.redactParams.keys.length > 0) {
    warn(['redactParams', 'keys'], 'has no effect with mode all (every value is hidden)');
  }
}

function toolWarnings(tools: ToolsSection, warn: Report): void {
  const open = 'lets the tool run unapproved whenever the service cannot be reached';
  if (tools.unreachable === 'allow') warn(['tools', 'unreachable'], open);
  if (typeof tools.default === 'object' && tools.default.unreachable === 'allow') {
    warn(['tools', 'default', 'unreachable'], open);
  }
  tools.rules.forEach((rule, i) => {
    if (rule.unreachable === 'allow') warn(['tools', 'rules', i, 'unreachable'], open);
  });
}

function duplicates(path: Path, values: string[], warn: Report): void {
  values.forEach((value, i) => {
    if (values.indexOf(value) !== i) warn([...path, i], `'${value}' is listed twice`);
  });
}

/** `actions.run_migration.approvers.allowSlackIds[1]`; keys that are not plain words are quoted. */
export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path
    .map((seg, i) => {
      if (typeof seg === 'number') return `[${seg}]`;
      const key = String(seg);
      if (/^[A-Za-z_$][\w$-]*$/.test(key)) return i === 0 ? key : `.${key}`;
      return `[${JSON.stringify(key)}]`;
    })
    .join('');
}
