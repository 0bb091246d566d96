import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { policySchema, type Policy } from './policy-schema.js';

export interface LoadedPolicy {
  policy: Policy;
  /** sha256 of the file bytes (SPEC section 5). */
  hash: string;
  source: string;
}

export class PolicyError extends Error {
  override name = 'PolicyError';
  constructor(
    readonly errors: string[],
    source: string,
  ) {
    super(`Invalid policy ${source}:\n${errors.map((e) => `  ${e}`).join('\n')}`);
  }
}

/** Parses YAML text into a validated policy; every error names its YAML path and the rule it broke. */
export function parsePolicy(text: string, source = 'policy'): LoadedPolicy {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new PolicyError(
      doc.errors.map((e) => `yaml: ${e.message.split('\n')[0]}`),
      source,
    );
  }
  const parsed = policySchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    throw new PolicyError(
      parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${describeIssue(i)}`),
      source,
    );
  }
  const hash = createHash('sha256').update(text).digest('hex');
  return { policy: parsed.data, hash, source };
}

export async function loadPolicyFile(path: string): Promise<LoadedPolicy> {
  return parsePolicy(await readFile(path, 'utf8'), path);
}

function describeIssue(issue: { code: string; message: string; keys?: string[] }): string {
  if (issue.code === 'unrecognized_keys' && issue.keys)
    return `unknown key(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
  return issue.message;
}
