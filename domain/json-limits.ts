import type { z } from 'zod';

/**
 * Limits on the free-form JSON a request carries (params, policy hints), part of the contract (SPEC section 10):
 * chosen well inside what the payload converter, the reducer and the workflow handle (each state change carries the
 * params through Temporal), and what Slack can show in a thread.
 */
export const JSON_LIMITS = {
  params: { maxDepth: 16, maxBytes: 64 * 1024 },
  policyHints: { maxDepth: 8, maxBytes: 8 * 1024 },
} as const;

export interface JsonLimit {
  maxDepth: number;
  maxBytes: number;
}

type Frame = { value: unknown; depth: number; path: PropertyKey[] };

/**
 * The path to the first value nested deeper than `maxDepth` (the top-level object is depth 1), or null. Iterative:
 * a hostile body nested thousands of levels deep must not exhaust the stack of the code that refuses it.
 */
export function tooDeep(value: unknown, maxDepth: number): PropertyKey[] | null {
  const stack: Frame[] = [{ value, depth: 1, path: [] }];
  while (stack.length > 0) {
    const { value: v, depth, path } = stack.pop() as Frame;
    if (v === null || typeof v !== 'object') continue;
    if (depth > maxDepth) return path;
    const entries: Array<[PropertyKey, unknown]> = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v);
    for (const [key, child] of entries) {
      if (child !== null && typeof child === 'object')
        stack.push({ value: child, depth: depth + 1, path: [...path, key] });
    }
  }
  return null;
}

/** UTF-8 size of the value's JSON. */
export function jsonBytes(value: unknown): number {
  return new TextEncoder().encode(JSON.stringify(value) ?? '').length;
}

/** A zod refinement enforcing `limit` on a JSON value, naming the path and the limit in its issue. */
export function withinJsonLimit(limit: JsonLimit) {
  return (value: unknown, ctx: z.RefinementCtx) => {
    const deep = tooDeep(value, limit.maxDepth);
    if (deep) {
      ctx.addIssue({ code: 'custom', path: deep, message: `nested deeper than ${limit.maxDepth} levels (the limit)` });
      return;
    }
    const bytes = jsonBytes(value);
    if (bytes > limit.maxBytes) {
      ctx.addIssue({ code: 'custom', message: `${bytes} bytes of JSON, more than the limit of ${limit.maxBytes}` });
    }
  };
}
