import type { Policy } from './policy-schema.js';

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
  const def = policy.actions[action];
  const superApprovers = policy.defaults.superApprovers;
  const common = {
    action,
    policyHash,
    dmFallbackUser: policy.routing.dmFallbackUser ?? null,
  };
  if (!def) {
    if (policy.defaults.unknownAction !== 'manual') {
      return { ok: false, error: 'policy_denied', reason: `action '${action}' is not in the policy` };
    }
    return {
      ok: true,
      plan: {
        ...common,
        known: false,
        approvers: [...superApprovers],
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
        reRequest: { allowed: false, cooldownSec: 0 },
        channel: policy.routing.defaultChannel ?? null,
      },
    };
  }
  return {
    ok: true,
    plan: {
      ...common,
      known: true,
      approvers: unique([...def.approvers.allowSlackIds, ...superApprovers]),
      minApprovals: def.approvers.minApprovals,
      personas: def.personasRequired.map((name) => ({ name, members: [...(policy.personas[name] ?? [])] })),
      timeoutSec: def.timeoutSec ?? policy.routing.defaultTimeoutSec,
      escalation: def.escalation
        ? {
            escalateBeforeSec: def.escalation.escalateBeforeSec,
            channel: def.escalation.escalationChannel ?? null,
            minApprovals: def.escalation.escalateMinApprovals ?? null,
          }
        : null,
      redaction: def.redactParams
        ? { mode: def.redactParams.mode, keys: [...def.redactParams.keys] }
        : { mode: 'none', keys: [] },
      overrides: {
        allowed: def.allowParamOverrides,
        keys: [...def.overrideKeys],
        schema: def.overrideSchema ?? null,
        maxKeys: limits.overrideMaxKeys,
        maxChars: limits.overrideMaxChars,
      },
      allowSelfApproval: def.allowSelfApproval,
      reRequest: { allowed: def.allowReRequest, cooldownSec: def.reRequestCooldownSec },
      channel: def.channel ?? policy.routing.defaultChannel ?? null,
    },
  };
}

function unique(ids: string[]): string[] {
  return [...new Set(ids)];
}
