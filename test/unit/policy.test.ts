import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { evaluatePolicy, type Plan, type PlanLimits } from '../../domain/plan.js';
import { loadPolicyFile, parsePolicy, PolicyError } from '../../domain/policy-loader.js';
import type { Policy } from '../../domain/policy-schema.js';

const LIMITS: PlanLimits = { overrideMaxKeys: 4, overrideMaxChars: 500 };
const FIELD_POLICY = fileURLToPath(new URL('../fixtures/policies/field-policy.yaml', import.meta.url));

function errorsOf(yaml: string): string[] {
  try {
    parsePolicy(yaml, 'test.yaml');
  } catch (err) {
    if (err instanceof PolicyError) return err.errors;
    throw err;
  }
  throw new Error('expected the policy to be refused');
}

const startingWith = (prefix: string) =>
  expect.stringMatching(new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));

/** A policy with one action `run_migration` whose body is given as YAML flow-mapping entries. */
const oneAction = (body: string, top = '') => `${top}\nactions:\n  run_migration: { ${body} }\n`;
const APPROVERS = 'approvers: { allowSlackIds: [U_A, U_B, U_C] }';

describe('parsing: every field of SPEC section 5', () => {
  const { policy } = parsePolicy(readFileSync(FIELD_POLICY, 'utf8'));
  const migration = policy.actions.run_migration;

  test.each<[string, unknown, unknown]>([
    ['routing.defaultChannel', policy.routing.defaultChannel, 'C0APPROVALS'],
    ['routing.dmFallbackUser', policy.routing.dmFallbackUser, 'U0ONCALL'],
    ['routing.defaultTimeoutSec', policy.routing.defaultTimeoutSec, 7200],
    ['defaults.unknownAction', policy.defaults.unknownAction, 'manual'],
    ['defaults.superApprovers', policy.defaults.superApprovers, ['U0CTO', 'U0SRELEAD']],
    ['personas.DBA', policy.personas.DBA, ['U0DBA1', 'U0DBA2']],
    ['description', migration?.description, 'Apply a database schema migration to production'],
    ['approvers.allowSlackIds', migration?.approvers.allowSlackIds, ['U0ALICE', 'U0BOB', 'U0CAROL']],
    ['approvers.minApprovals', migration?.approvers.minApprovals, 2],
    ['personasRequired', migration?.personasRequired, ['DBA']],
    ['timeoutSec', migration?.timeoutSec, 86400],
    ['channel', migration?.channel, 'C0DBCHANGES'],
    [
      'escalation',
      migration?.escalation,
      { escalateBeforeSec: 7200, escalationChannel: 'C0ESCALATIONS', escalateMinApprovals: 3 },
    ],
    ['allowReRequest', migration?.allowReRequest, true],
    ['reRequestCooldownSec', migration?.reRequestCooldownSec, 300],
    [
      'redactParams',
      policy.actions.rotate_secret?.redactParams,
      { mode: 'denylist', keys: ['secret_value', 'previous_value'] },
    ],
    ['allowSelfApproval', policy.actions.install_dependency?.allowSelfApproval, true],
    ['allowParamOverrides', policy.actions.deploy_config?.allowParamOverrides, true],
    ['overrideKeys', policy.actions.deploy_config?.overrideKeys, ['replicas', 'region']],
    [
      'overrideSchema',
      policy.actions.deploy_config?.overrideSchema,
      {
        type: 'object',
        properties: {
          replicas: { type: 'integer', minimum: 1, maximum: 50 },
          region: { type: 'string', enum: ['eu-west-1', 'us-east-1'] },
        },
      },
    ],
  ])('%s', (_field, actual, expected) => {
    expect(actual).toEqual(expected);
  });

  test('a policy in use in the field loads unchanged: every value written is the value parsed', async () => {
    const text = readFileSync(FIELD_POLICY, 'utf8');
    const loaded = await loadPolicyFile(FIELD_POLICY);
    expect(loaded.policy).toMatchObject(parseYaml(text) as Record<string, unknown>);
    expect(Object.keys(loaded.policy.actions)).toEqual([
      'run_migration',
      'rotate_secret',
      'install_dependency',
      'deploy_config',
      'read_audit_log',
    ]);
  });
});

describe('parsing: defaults', () => {
  const { policy } = parsePolicy(oneAction(APPROVERS));
  const action = policy.actions.run_migration;

  test.each<[string, unknown, unknown]>([
    ['actions (no other action)', Object.keys(policy.actions), ['run_migration']],
    ['routing.defaultTimeoutSec', policy.routing.defaultTimeoutSec, 3600],
    ['routing.defaultChannel', policy.routing.defaultChannel, undefined],
    ['defaults.unknownAction', policy.defaults.unknownAction, 'deny'],
    ['defaults.superApprovers', policy.defaults.superApprovers, []],
    ['personas', policy.personas, {}],
    ['approvers.minApprovals', action?.approvers.minApprovals, 1],
    ['personasRequired', action?.personasRequired, []],
    ['timeoutSec (routing decides)', action?.timeoutSec, undefined],
    ['escalation', action?.escalation, undefined],
    ['redactParams', action?.redactParams, undefined],
    ['allowReRequest', action?.allowReRequest, false],
    ['reRequestCooldownSec', action?.reRequestCooldownSec, 0],
    ['allowParamOverrides', action?.allowParamOverrides, false],
    ['overrideKeys', action?.overrideKeys, []],
    ['allowSelfApproval', action?.allowSelfApproval, false],
  ])('%s', (_field, actual, expected) => {
    expect(actual).toEqual(expected);
  });

  test('redactParams.keys defaults to none for mode all', () => {
    const { policy: p } = parsePolicy(oneAction(`${APPROVERS}, redactParams: { mode: all }`));
    expect(p.actions.run_migration?.redactParams).toEqual({ mode: 'all', keys: [] });
  });
});

describe('validation errors name the YAML path and the reason', () => {
  test.each<[string, string, string]>([
    ['unknown top-level key', 'action: {}\n', 'action: unknown key'],
    ['unknown routing key', 'routing: { defaultChanel: C1 }\n', 'routing.defaultChanel: unknown key'],
    ['unknown defaults key', 'defaults: { unknown: deny }\n', 'defaults.unknown: unknown key'],
    ['unknown action key', oneAction(`${APPROVERS}, approver: {}`), 'actions.run_migration.approver: unknown key'],
    [
      'unknown escalation key',
      oneAction(`${APPROVERS}, escalation: { escalateBeforeSec: 60, before: 1 }`),
      'actions.run_migration.escalation.before: unknown key',
    ],
    [
      'unknown approvers key',
      oneAction('approvers: { allowSlackIds: [U_A], min: 1 }'),
      'actions.run_migration.approvers.min: unknown key',
    ],
    [
      'escalateBeforeSec not below the action timeout',
      oneAction(`${APPROVERS}, timeoutSec: 1800, escalation: { escalateBeforeSec: 1800 }`),
      'actions.run_migration.escalation.escalateBeforeSec: must be less than timeoutSec (1800)',
    ],
    [
      'escalateBeforeSec not below the routing default timeout',
      oneAction(`${APPROVERS}, escalation: { escalateBeforeSec: 3600 }`),
      'actions.run_migration.escalation.escalateBeforeSec: must be less than routing.defaultTimeoutSec (3600)',
    ],
    [
      'escalateBeforeSec must be positive',
      oneAction(`${APPROVERS}, escalation: { escalateBeforeSec: 0 }`),
      'actions.run_migration.escalation.escalateBeforeSec: must be greater than 0',
    ],
    [
      'minApprovals ≥ 1',
      oneAction('approvers: { allowSlackIds: [U_A], minApprovals: 0 }'),
      'actions.run_migration.approvers.minApprovals: must be at least 1',
    ],
    [
      'escalateMinApprovals ≥ minApprovals',
      oneAction(
        'approvers: { allowSlackIds: [U_A, U_B], minApprovals: 2 }, escalation: { escalateBeforeSec: 60, escalateMinApprovals: 1 }',
      ),
      'actions.run_migration.escalation.escalateMinApprovals: must be at least approvers.minApprovals (2)',
    ],
    [
      'a quorum larger than the approver pool',
      oneAction('approvers: { allowSlackIds: [U_A, U_B], minApprovals: 3 }'),
      'actions.run_migration.approvers.minApprovals: quorum 3 can never be reached',
    ],
    [
      'an escalated quorum larger than the approver pool',
      oneAction(
        'approvers: { allowSlackIds: [U_A, U_B], minApprovals: 2 }, escalation: { escalateBeforeSec: 60, escalateMinApprovals: 3 }',
      ),
      'actions.run_migration.escalation.escalateMinApprovals: quorum 3 can never be reached',
    ],
    [
      'approvers listed twice count once toward the pool',
      oneAction('approvers: { allowSlackIds: [U_A, U_A], minApprovals: 2 }'),
      'actions.run_migration.approvers.minApprovals: quorum 2 can never be reached',
    ],
    ['an unknown unknownAction', 'defaults: { unknownAction: allow }\n', 'defaults.unknownAction: must be one of'],
    [
      'a wrongly typed timeout',
      oneAction(`${APPROVERS}, timeoutSec: soon`),
      'actions.run_migration.timeoutSec: must be a number',
    ],
    [
      'an unknown redaction mode',
      oneAction(`${APPROVERS}, redactParams: { mode: hide, keys: [a] }`),
      'actions.run_migration.redactParams.mode: must be one of',
    ],
  ])('%s', (_name, yaml, expected) => {
    expect(errorsOf(yaml)).toContainEqual(startingWith(expected));
  });

  test('super approvers count toward the pool', () => {
    const yaml = oneAction(
      'approvers: { allowSlackIds: [U_A, U_B], minApprovals: 3 }',
      'defaults: { superApprovers: [U_S] }',
    );
    expect(() => parsePolicy(yaml)).not.toThrow();
  });

  test('every error of the file is reported at once, naming the source', () => {
    const yaml = oneAction('approvers: { allowSlackIds: [U_A], minApprovals: 0 }', 'routing: { defaultChanel: C1 }');
    let error: unknown;
    try {
      parsePolicy(yaml, 'policies/prod.yaml');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(PolicyError);
    expect((error as PolicyError).errors).toHaveLength(2);
    expect((error as PolicyError).message).toContain('policies/prod.yaml');
  });

  test.each<[string, string, RegExp]>([
    ['an unclosed flow sequence', 'actions: [unclosed\n', /^line 2, column 1: .*\]/],
    ['a duplicate key', 'routing: {}\nrouting: {}\n', /^line 2, column 1: Map keys must be unique/],
    ['a tab-indented block', 'actions:\n\trun_migration: {}\n', /^line 2, column 1: /],
  ])('YAML syntax errors are reported with their position: %s', (_name, yaml, expected) => {
    expect(errorsOf(yaml)[0]).toMatch(expected);
  });
});

describe('policy hash', () => {
  const sha256 = (bytes: string | Buffer) => createHash('sha256').update(bytes).digest('hex');

  test('is the sha256 of the file bytes, non-ASCII included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'policy-'));
    try {
      const file = join(dir, 'policy.yaml');
      writeFileSync(file, `# «redacted» means hidden — ✓\n${oneAction(APPROVERS)}`);
      const loaded = await loadPolicyFile(file);
      expect(loaded.hash).toBe(sha256(readFileSync(file)));
      expect(loaded.source).toBe(file);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('changes with any byte, even a comment, though the policy is the same', () => {
    const a = parsePolicy(oneAction(APPROVERS));
    const b = parsePolicy(`# reviewed\n${oneAction(APPROVERS)}`);
    expect(b.policy).toEqual(a.policy);
    expect(b.hash).not.toBe(a.hash);
  });
});

describe('evaluatePolicy', () => {
  const loaded = parsePolicy(readFileSync(FIELD_POLICY, 'utf8'));
  const planFor = (action: string, policy: Policy = loaded.policy): Plan => {
    const result = evaluatePolicy(policy, loaded.hash, action, LIMITS);
    if (!result.ok) throw new Error(result.reason);
    return result.plan;
  };

  test.each<[string, string, Partial<Plan>]>([
    [
      'approvers are the action’s plus super approvers, quorum and personas with members',
      'run_migration',
      {
        known: true,
        approvers: ['U0ALICE', 'U0BOB', 'U0CAROL', 'U0CTO', 'U0SRELEAD'],
        minApprovals: 2,
        personas: [{ name: 'DBA', members: ['U0DBA1', 'U0DBA2'] }],
        escalation: { escalateBeforeSec: 7200, channel: 'C0ESCALATIONS', minApprovals: 3 },
        reRequest: { allowed: true, cooldownSec: 300 },
      },
    ],
    ['timeout from the action', 'run_migration', { timeoutSec: 86400 }],
    ['timeout from routing when the action sets none', 'rotate_secret', { timeoutSec: 7200 }],
    ['channel from the action', 'run_migration', { channel: 'C0DBCHANGES' }],
    ['channel from routing when the action sets none', 'rotate_secret', { channel: 'C0APPROVALS' }],
    ['dmFallbackUser from routing', 'rotate_secret', { dmFallbackUser: 'U0ONCALL' }],
    [
      'redaction as written',
      'rotate_secret',
      { redaction: { mode: 'denylist', keys: ['secret_value', 'previous_value'] } },
    ],
    ['no redaction when the action sets none', 'run_migration', { redaction: { mode: 'none', keys: [] } }],
    ['no escalation when the action sets none', 'rotate_secret', { escalation: null }],
    ['self approval as written', 'install_dependency', { allowSelfApproval: true }],
    [
      'overrides with the limits of the caller',
      'deploy_config',
      {
        overrides: {
          allowed: true,
          keys: ['replicas', 'region'],
          schema: loaded.policy.actions.deploy_config?.overrideSchema ?? null,
          maxKeys: 4,
          maxChars: 500,
        },
      },
    ],
    ['the policy hash', 'rotate_secret', { policyHash: loaded.hash }],
  ])('%s', (_name, action, expected) => {
    expect(planFor(action)).toMatchObject({ action, ...expected });
  });

  test('a super approver also listed by the action appears once', () => {
    expect(planFor('read_audit_log').approvers).toEqual(['U0SRELEAD', 'U0CTO']);
  });

  test('a required persona without listed members lets any approver acknowledge (empty members)', () => {
    const { policy } = parsePolicy(oneAction(`${APPROVERS}, personasRequired: [Legal]`));
    expect(planFor('run_migration', policy).personas).toEqual([{ name: 'Legal', members: [] }]);
  });

  test('unknown action with unknownAction deny: policy_denied', () => {
    const { policy } = parsePolicy(oneAction(APPROVERS));
    expect(evaluatePolicy(policy, 'h', 'drop_database', LIMITS)).toEqual({
      ok: false,
      error: 'policy_denied',
      reason: expect.stringContaining('drop_database'),
    });
  });

  test('unknown action with unknownAction manual: super approvers decide with quorum 1', () => {
    expect(planFor('drop_database')).toEqual({
      action: 'drop_database',
      known: false,
      approvers: ['U0CTO', 'U0SRELEAD'],
      minApprovals: 1,
      personas: [],
      timeoutSec: 7200,
      escalation: null,
      redaction: { mode: 'all', keys: [] },
      overrides: { allowed: false, keys: [], schema: null, maxKeys: 4, maxChars: 500 },
      allowSelfApproval: false,
      paramsSchema: null,
      receiptTtlSec: 3600,
      reRequest: { allowed: false, cooldownSec: 0 },
      channel: 'C0APPROVALS',
      dmFallbackUser: 'U0ONCALL',
      policyHash: loaded.hash,
    });
  });

  test('the plan is JSON-safe: it survives the trip through Temporal’s payload converter', () => {
    const plan = planFor('deploy_config');
    expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
  });
});
