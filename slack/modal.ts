import { compileOverrideSchema, ROOT_ERROR_KEY } from '../domain/json-schema.js';
import type { Plan } from '../domain/plan.js';
import { checkOverride, reduce, type RefusalReason, type RequestState } from '../domain/request-state.js';
import { OVERRIDE_ACTION_ID, OVERRIDE_BLOCK_PREFIX, propertySchema } from '../domain/slack-modal.js';

export {
  buildOverrideModal,
  OVERRIDE_ACTION_ID,
  OVERRIDE_BLOCK_PREFIX,
  OVERRIDE_CALLBACK_ID,
  type ModalView,
} from '../domain/slack-modal.js';

const NUMERIC = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** `view.state.values` of a submission: block id → action id → element state. */
export type SubmittedValues = Record<string, Record<string, { value?: string | null } | undefined> | undefined>;

export type OverrideVerdict =
  | { ok: true; changes: Record<string, unknown> }
  | { ok: false; reason: RefusalReason; message: string; fieldErrors: Record<string, string> };

/**
 * The values the approver submitted, typed: numeric strings become numbers (unless the schema says the key
 * is a string), booleans and JSON stay what the current value is. Empty inputs keep the current value.
 */
export function readOverrideChanges(values: SubmittedValues, plan: Plan, state: RequestState): Record<string, unknown> {
  const changes: Record<string, unknown> = {};
  for (const [blockId, actions] of Object.entries(values)) {
    if (!blockId.startsWith(OVERRIDE_BLOCK_PREFIX)) continue;
    const raw = actions?.[OVERRIDE_ACTION_ID]?.value;
    if (raw === undefined || raw === null || raw.trim() === '') continue;
    const key = blockId.slice(OVERRIDE_BLOCK_PREFIX.length);
    changes[key] = parseValue(raw, state.effectiveParams[key], propertySchema(plan, key));
  }
  return changes;
}

function parseValue(raw: string, current: unknown, schema: Record<string, unknown> | undefined): unknown {
  const text = raw.trim();
  if (NUMERIC.test(text) && !onlyString(schema)) {
    const n = Number(text);
    // Past 2^53 a number would silently change the value; the string goes to the schema check instead.
    if (Number.isFinite(n) && (!/^-?\d+$/.test(text) || Number.isSafeInteger(n))) return n;
  }
  if (typeof current === 'boolean' && (text === 'true' || text === 'false')) return text === 'true';
  if (current !== null && typeof current === 'object') {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return raw;
    }
  }
  return raw;
}

function onlyString(schema: Record<string, unknown> | undefined): boolean {
  const type = schema?.type;
  return type === 'string' || (Array.isArray(type) && type.length > 0 && type.every((t) => t === 'string'));
}

/** Why `userId` may not edit this request now (the reducer's rules for an edit), or null when they may. */
export function editRefusal(
  state: RequestState,
  plan: Plan,
  userId: string,
  now: string,
): { reason: RefusalReason; message: string } | null {
  const t = reduce(state, plan, { type: 'override', userId, changes: {} }, now);
  return t.ok || t.reason === 'no_change' ? null : { reason: t.reason, message: t.message };
}

/**
 * SPEC section 2's checks, in order, on the latest state: who may edit and when (the reducer's own rules), then
 * the changed-key limit, the size limit, and the action's JSON Schema (which only the API can run: the
 * validator generates code, which the workflow sandbox does not allow). The workflow re-checks all but the
 * schema when the edit arrives, so a state that moved in between is still judged right.
 */
export function judgeOverride(
  state: RequestState,
  plan: Plan,
  userId: string,
  changes: Record<string, unknown>,
  now: string,
): OverrideVerdict {
  const t = reduce(state, plan, { type: 'override', userId, changes }, now);
  if (!t.ok) {
    const fieldErrors = t.reason === 'invalid_key' ? (checkOverride(state, plan, changes).fieldErrors ?? {}) : {};
    return { ok: false, reason: t.reason, message: t.message, fieldErrors };
  }
  const schema = plan.overrides.schema;
  const check = checkOverride(state, plan, changes, schema ? compileOverrideSchema(schema) : undefined);
  if (!check.ok) {
    return {
      ok: false,
      reason: check.reason ?? 'schema_validation',
      message: check.message ?? 'the edit was refused',
      fieldErrors: check.fieldErrors ?? {},
    };
  }
  return { ok: true, changes };
}

/**
 * Slack shows `errors` under the named input blocks. Field errors go to their key's block; errors about the
 * whole edit (limits, authorization) go to every changed key, or to the first input when nothing changed.
 */
export function modalErrors(
  plan: Plan,
  changes: Record<string, unknown>,
  verdict: { message: string; fieldErrors: Record<string, string> },
): Record<string, string> {
  const blockOf = (key: string) => `${OVERRIDE_BLOCK_PREFIX}${key}`;
  const inModal = new Set(plan.overrides.keys);
  const changed = Object.keys(changes).filter((k) => inModal.has(k));
  const fallback = blockOf(changed[0] ?? plan.overrides.keys[0] ?? 'value');
  const errors: Record<string, string> = {};
  const add = (block: string, message: string) => {
    errors[block] = errors[block] ? `${errors[block]}; ${message}` : message;
  };
  for (const [key, message] of Object.entries(verdict.fieldErrors)) {
    if (inModal.has(key)) add(blockOf(key), message);
    else add(fallback, key === ROOT_ERROR_KEY ? message : `${key}: ${message}`);
  }
  if (Object.keys(errors).length > 0) return errors;
  for (const key of changed.length > 0 ? changed : [plan.overrides.keys[0] ?? 'value']) {
    add(blockOf(key), verdict.message);
  }
  return errors;
}
