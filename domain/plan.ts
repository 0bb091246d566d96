import type { Policy, PolicyAction } from './policy-schema.js';

export type RedactionMode = 'none' | 'allowlist' | 'denylist' | 'all';

export interface PersonaPlan {
  name: string;
  /** Slack ids allowed to acknowledge; empty means any allowed approver may. */
  members: string[];
}

/**
 * Everything the policy decided about one request, frozen into the workflow input at creation.
 * JSON-safe on purpose: it travels through Temporal's payload converter.
 */
export interface Plan {
  action: string;
  /** The action's policy `description`, shown to approvers (absent in plans frozen before it was added). */
  description?: string;
  /** false when the action is not in the policy and `unknownAction: manual` let it through. */
  known: boolean;
  approvers: string[];
  minApprovals: number;
  personas: PersonaPlan[];
  timeoutSec: number;
  escalation: { escalateBeforeSec: number; channel: string | null; minApprovals: number | null } | null;
  redaction: { mode: RedactionMode; keys: string[] };
  overrides: {
    allowed: boolean;
    keys: string[];
    schema: Record<string, unknown> | null;
    maxKeys: number;
    maxChars: number;
  };
  allowSelfApproval: boolean;
  /** JSON Schema the agent's params must pass at create (`actions.<name>.paramsSchema`); null: any params. */
  paramsSchema: Record<string, unknown> | null;
  /** A decision receipt expires this long after the decision (`receiptTtlSec`, else `defaults.receiptTtlSec`). */
  receiptTtlSec: number;
  reRequest: { allowed: boolean; cooldownSec: number };
  channel: string | null;
  dmFallbackUser: string | null;
  policyHash: string;
}

export interface PlanLimits {
  overrideMaxKeys: number;
  overrideMaxChars: number;
}

export type PlanResult = { ok: true; plan: Plan } | { ok: false; error: 'policy_denied'; reason: string };

/** Evaluates the policy for one action. Pure: the same policy, action and limits always give the same plan. */
export function evaluatePolicy(policy: Policy, policyHash: string, action: string, limits: PlanLimits): PlanResult {
  // Own keys only: an action named `constructor` must not find Object.prototype's.
  const def = ownEntry(policy.actions, action);
  const common = { action, policyHash, dmFallbackUser: policy.routing.dmFallbackUser ?? null };
  if (def) {
    const description = def.description ? { description: def.description } : {};
    return { ok: true, plan: { ...common, ...description, ...actionPlan(policy, def, limits) } };
  }
  if (policy.defaults.unknownAction === 'manual')
    return { ok: true, plan: { ...common, ...manualPlan(policy, limits) } };
  return { ok: false, error: 'policy_denied', reason: `action '${action}' is not in the policy` };
}

type PlanBody = Omit<Plan, 'action' | 'policyHash' | 'dmFallbackUser'>;

function actionPlan(policy: Policy, def: PolicyAction, limits: PlanLimits): PlanBody {
  const esc = def.escalation;
  return {
    known: true,
    approvers: unique([...def.approvers.allowSlackIds, ...policy.defaults.superApprovers]),
    minApprovals: def.approvers.minApprovals,
    personas: def.personasRequired.map((name) => ({ name, members: [...(ownEntry(policy.personas, name) ?? [])] })),
    timeoutSec: def.timeoutSec ?? policy.routing.defaultTimeoutSec,
    escalation: esc
      ? {
          escalateBeforeSec: esc.escalateBeforeSec,
          channel: esc.escalationChannel ?? null,
          minApprovals: esc.escalateMinApprovals ?? null,
        }
      : null,
    redaction: def.redactParams
      ? { mode: def.redactParams.mode, keys: [...def.redactParams.keys] }
      : { mode: 'none', keys: [] },
    overrides: {
      allowed: def.allowParamOverrides,
      keys: [...def.overrideKeys],
      schema: def.overrideSchema ? structuredClone(def.overrideSchema) : null,
      maxKeys: limits.overrideMaxKeys,
      maxChars: limits.overrideMaxChars,
    },
    allowSelfApproval: def.allowSelfApproval,
    paramsSchema: def.paramsSchema ? structuredClone(def.paramsSchema) : null,
    receiptTtlSec: def.receiptTtlSec ?? policy.defaults.receiptTtlSec,
    reRequest: { allowed: def.allowReRequest, cooldownSec: def.reRequestCooldownSec },
    channel: def.channel ?? policy.routing.defaultChannel ?? null,
  };
}

/** `unknownAction: manual` (SPEC section 5): super approvers decide, quorum 1; nothing is shown or editable. */
function manualPlan(policy: Policy, limits: PlanLimits): PlanBody {
  return {
    known: false,
    approvers: [...policy.defaults.superApprovers],
    minApprovals: 1,
    personas: [],
    timeoutSec: policy.routing.defaultTimeoutSec,
    escalation: null,
    redaction: { mode: 'all', keys: [] },
    overrides: {
      allowed: false,
      keys: [],
      schema: null,
      maxKeys: limits.overrideMaxKeys,
      maxChars: limits.overrideMaxChars,
    },
    allowSelfApproval: false,
    paramsSchema: null,
    receiptTtlSec: policy.defaults.receiptTtlSec,
    reRequest: { allowed: false, cooldownSec: 0 },
    channel: policy.routing.defaultChannel ?? null,
  };
}

function ownEntry<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

function unique(ids: string[]): string[] {
  return [...new Set(ids)];
}
