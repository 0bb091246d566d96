import { evaluatePolicy, type Plan } from '../domain/plan.js';
import type { ApiDeps } from './deps.js';
import { HttpError } from './errors.js';

/** The plan the loaded policy gives an action now: 503 without a policy, 403 when the policy refuses it. */
export function currentPlan(deps: Pick<ApiDeps, 'policy' | 'config'>, action: string): Plan {
  const loaded = deps.policy.loaded;
  if (!loaded) throw new HttpError(503, 'policy_unavailable');
  const result = evaluatePolicy(loaded.policy, loaded.hash, action, {
    overrideMaxKeys: deps.config.OVERRIDE_MAX_KEYS,
    overrideMaxChars: deps.config.OVERRIDE_MAX_CHARS,
  });
  if (!result.ok) {
    const actions = Object.keys(loaded.policy.actions);
    throw new HttpError(403, 'policy_denied', { detail: `${result.reason}; actions: ${actions.join(', ')}`, actions });
  }
  return result.plan;
}
