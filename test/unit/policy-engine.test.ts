import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  compileOverrideSchema,
  compileParamsSchema,
  overrideSchemaProblems,
  type ParamsProblem,
  publicSchema,
  ROOT_ERROR_KEY,
} from '../../domain/json-schema.js';
import { evaluatePolicy, type Plan } from '../../domain/plan.js';
import { parsePolicy, PolicyError, type LoadedPolicy } from '../../domain/policy-loader.js';
import { formatPath } from '../../domain/policy-schema.js';

const LIMITS = { overrideMaxKeys: 10, overrideMaxChars: 2000 };

/** The errors of a file that must not load. */
function errorsOf(yaml: string): string[] {
  try {
    parsePolicy(yaml);
  } catch (err) {
    if (err instanceof PolicyError) return err.errors;
    throw err;
  }
  throw new Error('expected the policy to be refused');
}

/** One action `a` with the given YAML body lines (indented under it), plus optional top-level sections. */
function withAction(body: string, top = ''): string {
  const indented = body
    .trim()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
  return `${top}\nactions:\n  a:\n${indented}\n`;
}

const BASE = 'approvers: { allowSlackIds: [U_A, U_B, U_C] }';

function planOf(yaml: string, action = 'a'): Plan {
  const loaded = parsePolicy(yaml);
  const result = evaluatePolicy(loaded.policy, loaded.hash, action, LIMITS);
  if (!result.ok) throw new Error(result.reason);
  return result.plan;
}

describe('policy defaults', () => {
  const loaded = parsePolicy('actions:\n  a:\n    approvers: { allowSlackIds: [U_A] }\n');
  const action = loaded.policy.actions.a!;
  test.each<[string, unknown, unknown]>([
    ['routing.defaultTimeoutSec', loaded.policy.routing.defaultTimeoutSec, 3600],
    ['routing.defaultChannel', loaded.policy.routing.defaultChannel, undefined],
    ['routing.dmFallbackUser', loaded.policy.routing.dmFallbackUser, undefined],
    ['defaults.unknownAction', loaded.policy.defaults.unknownAction, 'deny'],
    ['defaults.superApprovers', loaded.policy.defaults.superApprovers, []],
    ['defaults.receiptTtlSec', loaded.policy.defaults.receiptTtlSec, 3600],
    ['personas', loaded.policy.personas, {}],
    ['actions.a.approvers.minApprovals', action.approvers.minApprovals, 1],
    ['actions.a.personasRequired', action.personasRequired, []],
    ['actions.a.timeoutSec', action.timeoutSec, undefined],
    ['actions.a.redactParams', action.redactParams, undefined],
    ['actions.a.escalation', action.escalation, undefined],
    ['actions.a.allowReRequest', action.allowReRequest, false],
    ['actions.a.reRequestCooldownSec', action.reRequestCooldownSec, 0],
    ['actions.a.allowParamOverrides', action.allowParamOverrides, false],
    ['actions.a.overrideKeys', action.overrideKeys, []],
    ['actions.a.overrideSchema', action.overrideSchema, undefined],
    ['actions.a.allowSelfApproval', action.allowSelfApproval, false],
    ['actions.a.paramsSchema', action.paramsSchema, undefined],
    ['actions.a.receiptTtlSec', action.receiptTtlSec, undefined],
  ])('%s defaults to %p', (_path, actual, expected) => {
    expect(actual).toEqual(expected);
  });

  test('an action without approvers gets an empty list and quorum 1 (super approvers decide)', () => {
    const policy = parsePolicy('defaults: { superApprovers: [U_ADMIN] }\nactions:\n  a: {}\n').policy;
    expect(policy.actions.a!.approvers).toEqual({ allowSlackIds: [], minApprovals: 1 });
  });

  test('the hash is the sha256 of the file bytes, and the source is kept', () => {
    const text = '# comment changes the hash\nactions:\n  a: { approvers: { allowSlackIds: [U_A] } }\n';
    const l: LoadedPolicy = parsePolicy(text, 'my.yaml');
    expect(l.hash).toBe(createHash('sha256').update(text).digest('hex'));
    expect(l.source).toBe('my.yaml');
    expect(parsePolicy(`${text}\n`).hash).not.toBe(l.hash);
  });
});

describe('every field of SPEC section 5 is accepted', () => {
  const top = `
version: 2
routing: { defaultChannel: C_DEF, dmFallbackUser: U_DM, defaultTimeoutSec: 7200 }
defaults: { unknownAction: manual, superApprovers: [U_ADMIN], receiptTtlSec: 900 }
personas: { DBA: [U_DBA] }`;
  const policy = parsePolicy(
    withAction(
      `
description: do a thing
approvers: { allowSlackIds: [U_A, U_B], minApprovals: 2 }
personasRequired: [DBA]
timeoutSec: 600
redactParams: { mode: denylist, keys: [secret] }
channel: C_ACT
escalation: { escalateBeforeSec: 60, escalationChannel: C_ESC, escalateMinApprovals: 3 }
allowReRequest: true
reRequestCooldownSec: 30
allowParamOverrides: true
overrideKeys: [n]
overrideSchema: { type: object, properties: { n: { type: integer } } }
allowSelfApproval: true
paramsSchema: { type: object, required: [n], properties: { n: { type: integer } } }
receiptTtlSec: 120`,
      top,
    ),
  ).policy;
  const a = policy.actions.a!;
  test.each<[string, unknown, unknown]>([
    ['version', policy.version, 2],
    ['routing', policy.routing, { defaultChannel: 'C_DEF', dmFallbackUser: 'U_DM', defaultTimeoutSec: 7200 }],
    ['defaults', policy.defaults, { unknownAction: 'manual', superApprovers: ['U_ADMIN'], receiptTtlSec: 900 }],
    ['personas', policy.personas, { DBA: ['U_DBA'] }],
    ['description', a.description, 'do a thing'],
    ['approvers', a.approvers, { allowSlackIds: ['U_A', 'U_B'], minApprovals: 2 }],
    ['personasRequired', a.personasRequired, ['DBA']],
    ['timeoutSec', a.timeoutSec, 600],
    ['redactParams', a.redactParams, { mode: 'denylist', keys: ['secret'] }],
    ['channel', a.channel, 'C_ACT'],
    ['escalation', a.escalation, { escalateBeforeSec: 60, escalationChannel: 'C_ESC', escalateMinApprovals: 3 }],
    ['allowReRequest', a.allowReRequest, true],
    ['reRequestCooldownSec', a.reRequestCooldownSec, 30],
    ['allowParamOverrides', a.allowParamOverrides, true],
    ['overrideKeys', a.overrideKeys, ['n']],
    ['overrideSchema', a.overrideSchema, { type: 'object', properties: { n: { type: 'integer' } } }],
    ['allowSelfApproval', a.allowSelfApproval, true],
    ['paramsSchema', a.paramsSchema, { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } }],
    ['receiptTtlSec', a.receiptTtlSec, 120],
  ])('%s', (_field, actual, expected) => {
    expect(actual).toEqual(expected);
  });
});

describe('validation errors name the YAML path and the rule', () => {
  test.each<[string, string, string]>([
    // shapes and types
    ['unknown top-level key', 'actionz: {}\n', "actionz: unknown key (did you mean 'actions'?)"],
    [
      'unknown action key',
      withAction(`${BASE}\ntimeoutsec: 10`),
      "actions.a.timeoutsec: unknown key (did you mean 'timeoutSec'?)",
    ],
    ['unknown key, no hint', withAction(`${BASE}\nfoo: 1`), 'actions.a.foo: unknown key'],
    [
      'unknown nested key',
      withAction('approvers: { allowSlackIds: [U_A], minApproval: 1 }'),
      "actions.a.approvers.minApproval: unknown key (did you mean 'minApprovals'?)",
    ],
    [
      'unknown routing key',
      'routing: { defaultChanel: C }\nactions: {}\n',
      "routing.defaultChanel: unknown key (did you mean 'defaultChannel'?)",
    ],
    ['root is a list', '- a\n', '(root): must be an object, not a list'],
    ['actions is a list', 'actions: [a]\n', 'actions: must be a record, not a list'],
    ['approvers is a string', withAction('approvers: U_A'), 'actions.a.approvers: must be an object, not string "U_A"'],
    [
      'slack id is a number',
      withAction('approvers: { allowSlackIds: [U_A, 42] }'),
      'actions.a.approvers.allowSlackIds[1]: must be a string, not number 42',
    ],
    [
      'empty slack id',
      withAction("approvers: { allowSlackIds: [''] }"),
      'actions.a.approvers.allowSlackIds[0]: must not be empty',
    ],
    [
      'timeoutSec as text',
      withAction(`${BASE}\ntimeoutSec: 30m`),
      'actions.a.timeoutSec: must be a number, not string "30m"',
    ],
    ['timeoutSec zero', withAction(`${BASE}\ntimeoutSec: 0`), 'actions.a.timeoutSec: must be greater than 0'],
    [
      'timeoutSec fraction',
      withAction(`${BASE}\ntimeoutSec: 1.5`),
      'actions.a.timeoutSec: must be a whole number of seconds',
    ],
    [
      'defaultTimeoutSec negative',
      'routing: { defaultTimeoutSec: -1 }\nactions: {}\n',
      'routing.defaultTimeoutSec: must be greater than 0',
    ],
    [
      'minApprovals 0',
      withAction('approvers: { allowSlackIds: [U_A], minApprovals: 0 }'),
      'actions.a.approvers.minApprovals: must be at least 1',
    ],
    [
      'escalateBeforeSec 0',
      withAction(`${BASE}\nescalation: { escalateBeforeSec: 0 }`),
      'actions.a.escalation.escalateBeforeSec: must be greater than 0',
    ],
    [
      'escalateBeforeSec missing',
      withAction(`${BASE}\nescalation: { escalationChannel: C }`),
      'actions.a.escalation.escalateBeforeSec: is required',
    ],
    [
      'escalateMinApprovals 0',
      withAction(`${BASE}\nescalation: { escalateBeforeSec: 5, escalateMinApprovals: 0 }`),
      'actions.a.escalation.escalateMinApprovals: must be at least 1',
    ],
    [
      'cooldown negative',
      withAction(`${BASE}\nreRequestCooldownSec: -5`),
      'actions.a.reRequestCooldownSec: must not be negative',
    ],
    [
      'boolean as text',
      withAction(`${BASE}\nallowSelfApproval: "yes"`),
      'actions.a.allowSelfApproval: must be a boolean, not string "yes"',
    ],
    [
      'unknownAction value',
      'defaults: { unknownAction: allow }\nactions: {}\n',
      'defaults.unknownAction: must be one of "deny", "manual"',
    ],
    [
      'redaction mode value',
      withAction(`${BASE}\nredactParams: { mode: some, keys: [x] }`),
      'actions.a.redactParams.mode: must be one of "allowlist", "denylist", "all"',
    ],
    [
      'redaction mode missing',
      withAction(`${BASE}\nredactParams: { keys: [x] }`),
      'actions.a.redactParams.mode: is required',
    ],
    [
      'persona members not a list',
      'personas: { DBA: U_DBA }\nactions: {}\n',
      'personas.DBA: must be an array, not string "U_DBA"',
    ],
    [
      'overrideSchema not a mapping',
      withAction(`${BASE}\noverrideSchema: [1]`),
      'actions.a.overrideSchema: must be a record, not a list',
    ],
    [
      'action name with a dot is quoted',
      'actions:\n  db.migrate: { approvers: { allowSlackIds: [U_A] }, channel: 5 }\n',
      'actions["db.migrate"].channel: must be a string, not number 5',
    ],
    // cross-field rules
    [
      'escalation after expiry',
      withAction(`${BASE}\ntimeoutSec: 600\nescalation: { escalateBeforeSec: 600 }`),
      'actions.a.escalation.escalateBeforeSec: must be less than timeoutSec (600)',
    ],
    [
      'escalation after default expiry',
      withAction(`${BASE}\nescalation: { escalateBeforeSec: 5000 }`, 'routing: { defaultTimeoutSec: 3000 }'),
      'actions.a.escalation.escalateBeforeSec: must be less than routing.defaultTimeoutSec (3000)',
    ],
    [
      'escalation lowers quorum',
      withAction(
        'approvers: { allowSlackIds: [U_A, U_B], minApprovals: 2 }\nescalation: { escalateBeforeSec: 5, escalateMinApprovals: 1 }',
      ),
      'actions.a.escalation.escalateMinApprovals: must be at least approvers.minApprovals (2)',
    ],
    [
      'quorum unreachable',
      withAction('approvers: { allowSlackIds: [U_A, U_A], minApprovals: 2 }'),
      'actions.a.approvers.minApprovals: quorum 2 can never be reached: only 1 distinct approver(s) in approvers.allowSlackIds and defaults.superApprovers',
    ],
    [
      'raised quorum unreachable',
      withAction(
        'approvers: { allowSlackIds: [U_A, U_B], minApprovals: 2 }\nescalation: { escalateBeforeSec: 5, escalateMinApprovals: 3 }',
      ),
      'actions.a.escalation.escalateMinApprovals: quorum 3 can never be reached: only 2 distinct approver(s) in approvers.allowSlackIds and defaults.superApprovers',
    ],
    [
      'no approvers at all',
      'actions:\n  a: {}\n',
      'actions.a.approvers.minApprovals: quorum 1 can never be reached: only 0 distinct approver(s) in approvers.allowSlackIds and defaults.superApprovers',
    ],
    [
      'manual without super approvers',
      'defaults: { unknownAction: manual }\nactions: {}\n',
      'defaults.superApprovers: must list at least one Slack id when unknownAction is manual',
    ],
    [
      'persona with no members',
      withAction(`${BASE}\npersonasRequired: [DBA]`, 'personas: { DBA: [] }'),
      "actions.a.personasRequired[0]: persona 'DBA' has no members in personas.DBA: list its members, or remove it from personas to let any approver acknowledge it",
    ],
    [
      'persona listed twice',
      withAction(`${BASE}\npersonasRequired: [DBA, DBA]`),
      "actions.a.personasRequired[1]: persona 'DBA' is listed twice",
    ],
    [
      'overrides without keys',
      withAction(`${BASE}\nallowParamOverrides: true`),
      'actions.a.overrideKeys: must list at least one key when allowParamOverrides is true',
    ],
    [
      'redaction without keys',
      withAction(`${BASE}\nredactParams: { mode: allowlist }`),
      'actions.a.redactParams.keys: must list at least one key for mode allowlist',
    ],
    [
      'override key not in schema',
      withAction(
        `${BASE}\nallowParamOverrides: true\noverrideKeys: [n, m]\noverrideSchema: { type: object, properties: { n: { type: integer } } }`,
      ),
      "actions.a.overrideKeys[1]: 'm' is not a property of overrideSchema (add overrideSchema.properties.m)",
    ],
    [
      'override schema not for an object',
      withAction(`${BASE}\noverrideSchema: { type: string }`),
      "actions.a.overrideSchema.type: must be 'object': the schema validates the whole params object",
    ],
    [
      'invalid JSON Schema keyword value',
      withAction(`${BASE}\noverrideSchema: { type: object, properties: { n: { type: integr } } }`),
      'actions.a.overrideSchema.properties.n.type: invalid JSON Schema: must be equal to one of the allowed values',
    ],
    [
      'invalid JSON Schema: minimum as text',
      withAction(`${BASE}\noverrideSchema: { properties: { n: { minimum: "1" } } }`),
      'actions.a.overrideSchema.properties.n.minimum: invalid JSON Schema: must be number',
    ],
    [
      'unknown JSON Schema keyword (typo)',
      withAction(`${BASE}\noverrideSchema: { properties: { n: { maximun: 5 } } }`),
      'actions.a.overrideSchema: invalid JSON Schema: strict mode: unknown keyword: "maximun"',
    ],
    [
      'unresolvable $ref',
      withAction(`${BASE}\noverrideSchema: { properties: { n: { $ref: "#/definitions/none" } } }`),
      "actions.a.overrideSchema: invalid JSON Schema: can't resolve reference #/definitions/none from id #",
    ],
    [
      'params schema not for an object',
      withAction(`${BASE}\nparamsSchema: { type: array }`),
      "actions.a.paramsSchema.type: must be 'object': the schema validates the whole params object",
    ],
    [
      'params schema: invalid keyword value',
      withAction(`${BASE}\nparamsSchema: { type: object, properties: { n: { type: integr } } }`),
      'actions.a.paramsSchema.properties.n.type: invalid JSON Schema: must be equal to one of the allowed values',
    ],
    [
      'params schema: unknown keyword (typo)',
      withAction(`${BASE}\nparamsSchema: { properties: { n: { maxLenght: 5 } } }`),
      'actions.a.paramsSchema: invalid JSON Schema: strict mode: unknown keyword: "maxLenght"',
    ],
    [
      'params schema not a mapping',
      withAction(`${BASE}\nparamsSchema: true`),
      'actions.a.paramsSchema: must be a record, not boolean true',
    ],
    ['receiptTtlSec zero', withAction(`${BASE}\nreceiptTtlSec: 0`), 'actions.a.receiptTtlSec: must be greater than 0'],
    [
      'receiptTtlSec as text',
      withAction(`${BASE}\nreceiptTtlSec: 1h`),
      'actions.a.receiptTtlSec: must be a number, not string "1h"',
    ],
    [
      'defaults.receiptTtlSec fraction',
      'defaults: { receiptTtlSec: 0.5 }\nactions: {}\n',
      'defaults.receiptTtlSec: must be a whole number of seconds',
    ],
    // the file itself
    ['empty file', '', '(root): the policy file is empty'],
    ['comments only', '# nothing yet\n', '(root): the policy file is empty'],
    ['duplicate YAML key', 'actions: {}\nactions: {}\n', 'line 2, column 1: Map keys must be unique'],
    ['unknown YAML tag', 'actions: !!foo {}\n', 'line 1, column 10: Unresolved tag: tag:yaml.org,2002:foo'],
    [
      'unresolved alias',
      'actions: *nope\n',
      '(yaml): Unresolved alias (the anchor must be set before the alias): nope',
    ],
  ])('%s', (_name, yaml, expected) => {
    expect(errorsOf(yaml)).toContain(expected);
  });

  test('every error of the file is reported at once, in one PolicyError naming the source', () => {
    const yaml = `
routing: { defaultTimeoutSec: 600 }
defaults: { unknownAction: sometimes }
personas: { DBA: [] }
actions:
  broken:
    approvers: { allowSlackIds: [U_A], minApprovals: 0 }
    timeotSec: 5
  late:
    approvers: { allowSlackIds: [U_A] }
    escalation: { escalateBeforeSec: 900 }
  dba:
    approvers: { allowSlackIds: [U_A] }
    personasRequired: [DBA]
  edits:
    approvers: { allowSlackIds: [U_A] }
    allowParamOverrides: true
    overrideKeys: [x]
    overrideSchema: { type: object, properties: { y: {} } }
`;
    let error: PolicyError | undefined;
    try {
      parsePolicy(yaml, 'cm/policy.yaml');
    } catch (err) {
      error = err as PolicyError;
    }
    expect(error).toBeInstanceOf(PolicyError);
    expect(error!.errors).toEqual(
      expect.arrayContaining([
        'actions.broken.approvers.minApprovals: must be at least 1',
        "actions.broken.timeotSec: unknown key (did you mean 'timeoutSec'?)",
        'defaults.unknownAction: must be one of "deny", "manual"',
        'actions.late.escalation.escalateBeforeSec: must be less than routing.defaultTimeoutSec (600)',
        expect.stringMatching(/^actions\.dba\.personasRequired\[0\]: persona 'DBA' has no members/),
        "actions.edits.overrideKeys[0]: 'x' is not a property of overrideSchema (add overrideSchema.properties.x)",
      ]),
    );
    expect(error!.errors).toHaveLength(6);
    expect(error!.message).toMatch(/^Invalid policy cm\/policy\.yaml:\n {2}actions\.broken/);
  });

  test('a YAML syntax slip reports its first errors, not the whole cascade', () => {
    const errors = errorsOf('actions:\n  a: { approvers: [\n'.repeat(20));
    expect(errors.length).toBe(6);
    expect(errors[0]).toMatch(/^line \d+, column \d+: /);
    expect(errors[5]).toMatch(/^\(yaml\): \d+ more error\(s\) after these$/);
  });

  test('rules that read a broken section are skipped rather than misreport', () => {
    // defaults is broken, so the quorum rule (which reads superApprovers) cannot judge `a`.
    const errors = errorsOf(withAction('approvers: { allowSlackIds: [U_A], minApprovals: 2 }', 'defaults: 5'));
    expect(errors).toEqual(['defaults: must be an object, not number 5']);
  });
});

describe('warnings: legal but probably unintended', () => {
  test.each<[string, string, string]>([
    [
      'duplicate approver id',
      withAction('approvers: { allowSlackIds: [U_A, U_B, U_A] }'),
      "actions.a.approvers.allowSlackIds[2]: 'U_A' is listed twice",
    ],
    [
      'duplicate super approver',
      'defaults: { superApprovers: [U_X, U_X] }\nactions: {}\n',
      "defaults.superApprovers[1]: 'U_X' is listed twice",
    ],
    [
      'duplicate persona member',
      withAction(BASE, 'personas: { DBA: [U_D, U_D] }'),
      "personas.DBA[1]: 'U_D' is listed twice",
    ],
    [
      'duplicate override key',
      withAction(`${BASE}\nallowParamOverrides: true\noverrideKeys: [k, k]`),
      "actions.a.overrideKeys[1]: 'k' is listed twice",
    ],
    [
      'override settings unused',
      withAction(`${BASE}\noverrideKeys: [k]`),
      'actions.a.allowParamOverrides: is false: overrideKeys and overrideSchema have no effect',
    ],
    [
      'cooldown unused',
      withAction(`${BASE}\nreRequestCooldownSec: 60`),
      'actions.a.reRequestCooldownSec: has no effect: allowReRequest is false',
    ],
    [
      'redaction keys unused',
      withAction(`${BASE}\nredactParams: { mode: all, keys: [x] }`),
      'actions.a.redactParams.keys: has no effect with mode all (every value is hidden)',
    ],
    [
      'nothing can pass',
      'actions: {}\n',
      'actions: no actions and unknownAction is deny: every request will be refused',
    ],
    [
      'action posted nowhere',
      withAction(BASE),
      'actions.a.channel: is not set and routing has no defaultChannel or dmFallbackUser: requests are not posted to Slack',
    ],
    [
      'unknown actions posted nowhere',
      'defaults: { unknownAction: manual, superApprovers: [U] }\nactions: {}\n',
      'routing: has no defaultChannel or dmFallbackUser: requests for unknown actions are not posted to Slack',
    ],
  ])('%s', (_name, yaml, expected) => {
    expect(parsePolicy(yaml).warnings).toContain(expected);
  });

  test('a clean policy has no warnings', () => {
    expect(parsePolicy(withAction(BASE, 'routing: { defaultChannel: C }')).warnings).toEqual([]);
    expect(parsePolicy(withAction(`${BASE}\nchannel: C`)).warnings).toEqual([]);
    expect(parsePolicy(withAction(BASE, 'routing: { dmFallbackUser: U_DM }')).warnings).toEqual([]);
  });
});

describe('formatPath', () => {
  test.each<[PropertyKey[], string]>([
    [[], '(root)'],
    [['actions', 'a', 'timeoutSec'], 'actions.a.timeoutSec'],
    [['actions', 'a', 'overrideKeys', 2], 'actions.a.overrideKeys[2]'],
    [['actions', 'db.migrate'], 'actions["db.migrate"]'],
    [['personas', 'On Call'], 'personas["On Call"]'],
    [['actions', 'run-migration'], 'actions.run-migration'],
  ])('%j → %s', (path, expected) => {
    expect(formatPath(path)).toBe(expected);
  });
});

describe('evaluatePolicy: the plan frozen into the workflow', () => {
  const policy = `
routing: { defaultChannel: C_DEF, dmFallbackUser: U_DM, defaultTimeoutSec: 7200 }
defaults: { unknownAction: deny, superApprovers: [U_ADMIN, U_A], receiptTtlSec: 1800 }
personas: { DBA: [U_DBA1, U_DBA2] }
actions:
  full:
    approvers: { allowSlackIds: [U_A, U_B, U_C], minApprovals: 2 }
    personasRequired: [DBA, Security]
    timeoutSec: 900
    redactParams: { mode: allowlist, keys: [db] }
    channel: C_ACT
    escalation: { escalateBeforeSec: 300, escalationChannel: C_ESC, escalateMinApprovals: 3 }
    allowReRequest: true
    reRequestCooldownSec: 60
    allowParamOverrides: true
    overrideKeys: [n]
    overrideSchema: { type: object, properties: { n: { type: integer, maximum: 5 } } }
    allowSelfApproval: true
    paramsSchema: { type: object, required: [db] }
    receiptTtlSec: 300
  bare:
    approvers: { allowSlackIds: [U_B] }
    escalation: { escalateBeforeSec: 60 }
`;
  const full = planOf(policy, 'full');
  const bare = planOf(policy, 'bare');

  test.each<[string, unknown, unknown]>([
    ['approvers: the action’s plus superApprovers, each once', full.approvers, ['U_A', 'U_B', 'U_C', 'U_ADMIN']],
    ['quorum', full.minApprovals, 2],
    [
      'personas with members; without a personas entry, no member list',
      full.personas,
      [
        { name: 'DBA', members: ['U_DBA1', 'U_DBA2'] },
        { name: 'Security', members: [] },
      ],
    ],
    ['timeout from the action', full.timeoutSec, 900],
    ['timeout from routing.defaultTimeoutSec', bare.timeoutSec, 7200],
    [
      'escalation time, channel and quorum raise',
      full.escalation,
      { escalateBeforeSec: 300, channel: 'C_ESC', minApprovals: 3 },
    ],
    [
      'escalation without channel or raise',
      bare.escalation,
      { escalateBeforeSec: 60, channel: null, minApprovals: null },
    ],
    ['redaction', full.redaction, { mode: 'allowlist', keys: ['db'] }],
    ['no redaction', bare.redaction, { mode: 'none', keys: [] }],
    [
      'override rules with the limits',
      full.overrides,
      {
        allowed: true,
        keys: ['n'],
        schema: { type: 'object', properties: { n: { type: 'integer', maximum: 5 } } },
        maxKeys: 10,
        maxChars: 2000,
      },
    ],
    ['overrides off', bare.overrides, { allowed: false, keys: [], schema: null, maxKeys: 10, maxChars: 2000 }],
    ['allowSelfApproval', [full.allowSelfApproval, bare.allowSelfApproval], [true, false]],
    [
      're-request',
      [full.reRequest, bare.reRequest],
      [
        { allowed: true, cooldownSec: 60 },
        { allowed: false, cooldownSec: 0 },
      ],
    ],
    ['channel: the action’s, else routing.defaultChannel', [full.channel, bare.channel], ['C_ACT', 'C_DEF']],
    ['dmFallbackUser', full.dmFallbackUser, 'U_DM'],
    ['known action', full.known, true],
    ['policy hash', full.policyHash, parsePolicy(policy).hash],
    ['params schema', [full.paramsSchema, bare.paramsSchema], [{ type: 'object', required: ['db'] }, null]],
    [
      'receipt lifetime: the action’s, else defaults.receiptTtlSec',
      [full.receiptTtlSec, bare.receiptTtlSec],
      [300, 1800],
    ],
  ])('%s', (_name, actual, expected) => {
    expect(actual).toEqual(expected);
  });

  test('channel is null when neither the action nor routing names one', () => {
    expect(planOf(withAction(BASE)).channel).toBeNull();
  });

  test('unknownAction deny refuses with policy_denied', () => {
    const loaded = parsePolicy(policy);
    expect(evaluatePolicy(loaded.policy, loaded.hash, 'nope', LIMITS)).toEqual({
      ok: false,
      error: 'policy_denied',
      reason: "action 'nope' is not in the policy",
    });
  });

  test('unknownAction manual: superApprovers decide, quorum 1, everything redacted, no edits', () => {
    const manual = policy.replace('unknownAction: deny', 'unknownAction: manual');
    expect(planOf(manual, 'nope')).toEqual({
      action: 'nope',
      known: false,
      approvers: ['U_ADMIN', 'U_A'],
      minApprovals: 1,
      personas: [],
      timeoutSec: 7200,
      escalation: null,
      redaction: { mode: 'all', keys: [] },
      overrides: { allowed: false, keys: [], schema: null, maxKeys: 10, maxChars: 2000 },
      allowSelfApproval: false,
      paramsSchema: null,
      receiptTtlSec: 1800,
      reRequest: { allowed: false, cooldownSec: 0 },
      channel: 'C_DEF',
      dmFallbackUser: 'U_DM',
      policyHash: parsePolicy(manual).hash,
    });
  });

  test.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])(
    'an action named %s that the policy does not define is unknown, not Object.prototype’s',
    (name) => {
      const loaded = parsePolicy(policy);
      expect(evaluatePolicy(loaded.policy, loaded.hash, name, LIMITS)).toMatchObject({ ok: false });
    },
  );

  test('the limits come from the caller', () => {
    const loaded = parsePolicy(policy);
    const result = evaluatePolicy(loaded.policy, loaded.hash, 'full', { overrideMaxKeys: 1, overrideMaxChars: 7 });
    expect(result.ok && result.plan.overrides).toMatchObject({ maxKeys: 1, maxChars: 7 });
  });

  test('pure: same inputs, same JSON-safe plan, sharing nothing with the policy', () => {
    const loaded = parsePolicy(policy);
    const a = evaluatePolicy(loaded.policy, loaded.hash, 'full', LIMITS);
    const b = evaluatePolicy(loaded.policy, loaded.hash, 'full', LIMITS);
    expect(a).toEqual(b);
    expect(JSON.parse(JSON.stringify(a))).toEqual(a);
    if (!a.ok) throw new Error('expected a plan');
    (a.plan.overrides.schema!.properties as Record<string, unknown>).n = 'mutated';
    a.plan.approvers.push('U_EVIL');
    a.plan.personas[0]!.members.push('U_EVIL');
    (a.plan.paramsSchema!.required as string[]).push('evil');
    expect(evaluatePolicy(loaded.policy, loaded.hash, 'full', LIMITS)).toEqual(b);
  });
});

describe('params JSON Schema: every problem with its path inside the params', () => {
  const validate = compileParamsSchema({
    type: 'object',
    required: ['database'],
    additionalProperties: false,
    properties: {
      database: { type: 'string', enum: ['orders', 'users'] },
      limits: { type: 'object', required: ['cpu'], properties: { cpu: { type: 'number', maximum: 4 } } },
      steps: { type: 'array', items: { type: 'integer', errorMessage: 'a step number' } },
    },
  });

  test.each<[string, Record<string, unknown>, ParamsProblem[] | null]>([
    ['valid params', { database: 'orders', limits: { cpu: 2 }, steps: [1, 2] }, null],
    ['missing required key', {}, [{ path: ['database'], message: 'is required' }]],
    ['unexpected key', { database: 'users', color: 'red' }, [{ path: ['color'], message: 'is not an allowed key' }]],
    ['nested value', { database: 'users', limits: { cpu: 9 } }, [{ path: ['limits', 'cpu'], message: 'must be <= 4' }]],
    ['nested missing key', { database: 'users', limits: {} }, [{ path: ['limits', 'cpu'], message: 'is required' }]],
    [
      'errorMessage annotation',
      { database: 'users', steps: ['x'] },
      [{ path: ['steps', '0'], message: 'a step number' }],
    ],
    [
      'several at once',
      { database: 'prod', limits: { cpu: 'lots' } },
      [
        { path: ['database'], message: 'must be equal to one of the allowed values' },
        { path: ['limits', 'cpu'], message: 'must be number' },
      ],
    ],
  ])('%s', (_name, params, expected) => {
    expect(validate(params)).toEqual(expected);
  });

  test('compiled once per distinct schema', () => {
    const schema = { type: 'object', maxProperties: 1 };
    expect(compileParamsSchema(schema)).toBe(compileParamsSchema(structuredClone(schema)));
    expect(compileParamsSchema(schema)({ a: 1, b: 2 })).toEqual([
      { path: [], message: 'must NOT have more than 1 properties' },
    ]);
  });
});

describe('override JSON Schema', () => {
  const schema = {
    type: 'object',
    required: ['service'],
    additionalProperties: false,
    properties: {
      service: { type: 'string' },
      replicas: { type: 'integer', minimum: 1, maximum: 50 },
      region: { type: 'string', enum: ['eu-west-1', 'us-east-1'] },
      owner: { type: 'string', format: 'email' },
      limits: { type: 'object', properties: { cpu: { type: 'number' } } },
    },
  };
  const validate = compileOverrideSchema(schema);

  test.each<[string, Record<string, unknown>, Record<string, string> | null]>([
    ['valid params', { service: 's', replicas: 3, region: 'us-east-1' }, null],
    ['above maximum', { service: 's', replicas: 51 }, { replicas: 'must be <= 50' }],
    ['below minimum', { service: 's', replicas: 0 }, { replicas: 'must be >= 1' }],
    ['wrong type', { service: 's', replicas: '3' }, { replicas: 'must be integer' }],
    ['not in enum', { service: 's', region: 'mars' }, { region: 'must be equal to one of the allowed values' }],
    ['format (ajv-formats)', { service: 's', owner: 'nobody' }, { owner: 'must match format "email"' }],
    ['missing required', { replicas: 2 }, { service: 'is required' }],
    ['unexpected key', { service: 's', color: 'red' }, { color: 'is not an allowed key' }],
    [
      'nested error keyed by its top-level property',
      { service: 's', limits: { cpu: 'lots' } },
      { limits: 'cpu: must be number' },
    ],
    [
      'every field at once',
      { replicas: 99, region: 'x' },
      {
        service: 'is required',
        replicas: 'must be <= 50',
        region: 'must be equal to one of the allowed values',
      },
    ],
  ])('%s', (_name, params, expected) => {
    expect(validate(params)).toEqual(expected);
  });

  test('errors of the params object itself use the root key', () => {
    const v = compileOverrideSchema({ type: 'object', minProperties: 2 });
    expect(v({ a: 1 })).toEqual({ [ROOT_ERROR_KEY]: 'must NOT have fewer than 2 properties' });
  });

  test('validators are cached by identity and by content', () => {
    expect(compileOverrideSchema(schema)).toBe(validate);
    expect(compileOverrideSchema(JSON.parse(JSON.stringify(schema)) as Record<string, unknown>)).toBe(validate);
    expect(compileOverrideSchema({ ...schema, minProperties: 1 })).not.toBe(validate);
  });

  test('two schemas may reuse one $id', () => {
    const a = compileOverrideSchema({
      $id: 'https://example.com/edits.json',
      type: 'object',
      properties: { n: { maximum: 1 } },
    });
    const b = compileOverrideSchema({
      $id: 'https://example.com/edits.json',
      type: 'object',
      properties: { n: { maximum: 9 } },
    });
    expect([a({ n: 5 }), b({ n: 5 })]).toEqual([{ n: 'must be <= 1' }, null]);
  });

  test('draft 2020-12 schemas are honoured through $schema', () => {
    const v = compileOverrideSchema({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      $defs: { small: { type: 'integer', maximum: 3 } },
      properties: { n: { $ref: '#/$defs/small' } },
    });
    expect(v({ n: 4 })).toEqual({ n: 'must be <= 3' });
  });

  describe('errorMessage (ajv-errors convention) sets the message', () => {
    const custom = compileOverrideSchema({
      type: 'object',
      required: ['service', 'team'],
      properties: {
        replicas: { type: 'integer', maximum: 50, errorMessage: 'replicas: 1 to 50' },
        region: { type: 'string', enum: ['a'], errorMessage: { enum: 'pick region a' } },
        size: { type: 'integer', minimum: 1, errorMessage: { _: 'size must be a positive integer' } },
      },
      errorMessage: { required: { service: 'name the service' } },
    });
    test.each<[string, Record<string, unknown>, Record<string, string>]>([
      [
        'a string replaces every error of its schema',
        { service: 's', team: 't', replicas: 'x' },
        { replicas: 'replicas: 1 to 50' },
      ],
      ['an object maps a keyword', { service: 's', team: 't', region: 'b' }, { region: 'pick region a' }],
      ['a keyword without a message keeps Ajv’s', { service: 's', team: 't', region: 3 }, { region: 'must be string' }],
      [
        '`_` covers the other keywords',
        { service: 's', team: 't', size: 0 },
        { size: 'size must be a positive integer' },
      ],
      ['required per property, others default', {}, { service: 'name the service', team: 'is required' }],
    ])('%s', (_name, params, expected) => {
      expect(custom(params)).toEqual(expected);
    });
  });

  test('publicSchema drops errorMessage annotations only, as a deep copy', () => {
    const annotated = {
      type: 'object',
      errorMessage: { required: 'x' },
      properties: {
        errorMessage: { type: 'string', errorMessage: 'gone' },
        n: { type: 'integer', errorMessage: 'gone', default: { errorMessage: 'data stays' } },
        c: { const: { errorMessage: 'data stays' } },
        list: { type: 'array', items: [{ type: 'string', errorMessage: 'gone' }] },
      },
      $defs: { d: { type: 'string', errorMessage: 'gone' } },
    };
    const copy = publicSchema(annotated);
    expect(copy).toEqual({
      type: 'object',
      properties: {
        errorMessage: { type: 'string' },
        n: { type: 'integer', default: { errorMessage: 'data stays' } },
        c: { const: { errorMessage: 'data stays' } },
        list: { type: 'array', items: [{ type: 'string' }] },
      },
      $defs: { d: { type: 'string' } },
    });
    (copy.properties as Record<string, Record<string, unknown>>).n!.type = 'string';
    expect(annotated.properties.n.type).toBe('integer');
    expect(annotated.properties.n.errorMessage).toBe('gone');
  });

  test.each<[string, Record<string, unknown>, string[]]>([
    ['valid', schema, []],
    ['errorMessage is a known keyword', { type: 'object', errorMessage: 'x' }, []],
    ['bad type name', { properties: { n: { type: 'integr' } } }, ['properties/n/type']],
    ['unknown keyword', { properties: { n: { maximun: 1 } } }, ['']],
    ['bad errorMessage type', { errorMessage: 5 }, ['']],
  ])('overrideSchemaProblems: %s', (_name, s, paths) => {
    expect([...new Set(overrideSchemaProblems(s).map((p) => p.path.join('/')))]).toEqual(paths);
  });
});

describe('shipped policies', () => {
  const dir = join(import.meta.dirname, '../../policies');
  const files = [
    'policy.yaml',
    ...readdirSync(join(dir, 'examples'))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => `examples/${f}`),
  ];

  test('there is one example per pattern', () => {
    expect(files.sort()).toEqual([
      'examples/agent-tools.yaml',
      'examples/approve-with-edits.yaml',
      'examples/personas.yaml',
      'examples/quorum-escalation.yaml',
      'examples/redaction.yaml',
      'examples/unknown-action-manual.yaml',
      'policy.yaml',
    ]);
  });

  test.each(files)('%s loads with no error and no warning', (file) => {
    expect(parsePolicy(readFileSync(join(dir, file), 'utf8'), file).warnings).toEqual([]);
  });

  test('each example shows its pattern', () => {
    const load = (f: string) => parsePolicy(readFileSync(join(dir, 'examples', f), 'utf8')).policy;
    const personas = load('personas.yaml');
    expect(personas.actions.run_migration!.personasRequired.every((p) => personas.personas[p]!.length > 0)).toBe(true);
    expect(load('quorum-escalation.yaml').actions.drop_table!.escalation!.escalateMinApprovals).toBeGreaterThan(
      load('quorum-escalation.yaml').actions.drop_table!.approvers.minApprovals,
    );
    const edits = load('approve-with-edits.yaml').actions.scale_service!;
    expect(edits.allowParamOverrides && edits.overrideSchema).toBeTruthy();
    expect(compileOverrideSchema(edits.overrideSchema!)({ service: 'api', replicas: 80 })).toEqual({
      replicas: 'replicas must be a whole number from 1 to 50',
    });
    expect(Object.values(load('redaction.yaml').actions).map((a) => a.redactParams?.mode)).toEqual([
      'denylist',
      'allowlist',
      'all',
    ]);
    expect(load('unknown-action-manual.yaml').defaults.unknownAction).toBe('manual');
  });

  test('the agent tool gate names only actions of the default policy', () => {
    const tools = parsePolicy(readFileSync(join(dir, 'examples', 'agent-tools.yaml'), 'utf8')).policy.tools!;
    const defaults = parsePolicy(readFileSync(join(dir, 'policy.yaml'), 'utf8')).policy.actions;
    const named = tools.rules.flatMap((r) => (r.action ? [r.action] : []));
    expect(new Set(named)).toEqual(new Set(['git_push_main', 'terraform_apply', 'kubectl_prod', 'write_env']));
    expect(named.filter((a) => !Object.hasOwn(defaults, a))).toEqual([]);
  });
});
