import type { Plan } from './plan.js';

export const REDACTED = '«redacted»';

/** Params as people may see them (Slack, logs, audit): hidden values replaced by `«redacted»`. */
export function redactParams(params: Record<string, unknown>, redaction: Plan['redaction']): Record<string, unknown> {
  const { mode, keys } = redaction;
  if (mode === 'none') return { ...params };
  const listed = new Set(keys);
  return Object.fromEntries(
    Object.entries(params).map(([k, v]) => {
      const hidden = mode === 'all' || (mode === 'denylist' ? listed.has(k) : !listed.has(k));
      return [k, hidden ? REDACTED : v];
    }),
  );
}
