import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parseDocument, type YAMLError } from 'yaml';
import { z } from 'zod';
import { formatPath, policySchema, policyWarnings, type Policy } from './policy-schema.js';

export interface LoadedPolicy {
  policy: Policy;
  /** sha256 of the file bytes (SPEC section 5). */
  hash: string;
  source: string;
  /** Legal but suspicious settings (`path: message`), see policyWarnings. */
  warnings: string[];
}

export class PolicyError extends Error {
  override name = 'PolicyError';
  constructor(
    /** One `path: rule` line per problem, every problem of the file at once. */
    readonly errors: string[],
    source: string,
  ) {
    super(`Invalid policy ${source}:\n${errors.map((e) => `  ${e}`).join('\n')}`);
  }
}

/** Parses YAML text into a validated policy; every error names its YAML path and the rule it broke. */
export function parsePolicy(text: string, source = 'policy'): LoadedPolicy {
  const data = parseYaml(text, source);
  const parsed = policySchema.safeParse(data, { reportInput: true });
  if (!parsed.success) throw new PolicyError(parsed.error.issues.flatMap(describeIssue), source);
  const hash = createHash('sha256').update(text).digest('hex');
  return { policy: parsed.data, hash, source, warnings: policyWarnings(parsed.data) };
}

export async function loadPolicyFile(path: string): Promise<LoadedPolicy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new PolicyError([`(file): cannot read: ${(err as Error).message}`], path);
  }
  return parsePolicy(text, path);
}

const MAX_YAML_ERRORS = 5;

function parseYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  // Warnings (an unknown tag such as `!!foo`) change what a value means: refuse them too.
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) {
    // One syntax slip cascades into dozens of parser errors; the first few locate it.
    const shown = problems.slice(0, MAX_YAML_ERRORS).map(describeYamlError);
    const more = problems.length - shown.length;
    throw new PolicyError(more > 0 ? [...shown, `(yaml): ${more} more error(s) after these`] : shown, source);
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (err) {
    throw new PolicyError([`(yaml): ${(err as Error).message}`], source);
  }
  // An empty file is far more likely a half-written ConfigMap than a policy that refuses everything.
  if (data === null || data === undefined) throw new PolicyError(['(root): the policy file is empty'], source);
  return data;
}

function describeYamlError(e: YAMLError): string {
  const [firstLine = e.message] = e.message.split('\n');
  const pos = e.linePos?.[0];
  const where = pos ? `line ${pos.line}, column ${pos.col}` : '(yaml)';
  return `${where}: ${firstLine.replace(/ at line \d+, column \d+:?$/, '')}`;
}

type Issue = z.core.$ZodIssue;

function describeIssue(issue: Issue): string[] {
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(issue.path);
    return issue.keys.map((key) => {
      const hint = closest(key, known);
      return `${formatPath([...issue.path, key])}: unknown key${hint ? ` (did you mean '${hint}'?)` : ''}`;
    });
  }
  return [`${formatPath(issue.path)}: ${describeMessage(issue)}`];
}

function describeMessage(issue: Issue): string {
  const missing =
    issue.input === undefined &&
    (issue.code === 'invalid_type' || issue.code === 'invalid_value' || issue.code === 'invalid_union');
  if (missing) return 'is required';
  if (issue.code === 'invalid_union') return unionMessage(issue);
  // A fraction where a whole number is due keeps the schema's own message (which names the unit).
  if (issue.code === 'invalid_type' && issue.expected !== 'int') {
    return `must be ${article(issue.expected)}, not ${typeOf(issue.input)}`;
  }
  if (issue.code === 'invalid_value') return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  return issue.message;
}

/** `must be a string or a list, not number 5`: what each branch of a union (`tool: x` or `tool: [x, y]`) expects. */
function unionMessage(issue: Extract<Issue, { code: 'invalid_union' }>): string {
  const expected = issue.errors.flatMap((branch) =>
    branch
      .filter((i) => i.path.length === 0)
      .map((i) => {
        if (i.code === 'invalid_type') return i.expected === 'array' ? 'a list' : article(i.expected);
        if (i.code === 'invalid_value') return `one of ${i.values.map((v) => JSON.stringify(v)).join(', ')}`;
        return null;
      }),
  );
  const known = [...new Set(expected.filter((e): e is string => e !== null))];
  return known.length > 0 ? `must be ${known.join(' or ')}, not ${typeOf(issue.input)}` : issue.message;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** The keys the schema allows at a path, for "did you mean" hints on typos. */
function knownKeysAt(path: readonly PropertyKey[]): string[] {
  let schema: z.core.$ZodType = policySchema;
  for (const seg of path) schema = child(schema, seg) ?? schema;
  const inner = unwrap(schema);
  return inner instanceof z.ZodObject ? Object.keys(inner.shape) : [];
}

function child(schema: z.core.$ZodType, seg: PropertyKey): z.core.$ZodType | undefined {
  const inner = unwrap(schema);
  if (inner instanceof z.ZodObject) return inner.shape[String(seg)];
  if (inner instanceof z.ZodRecord) return inner.valueType;
  if (inner instanceof z.ZodArray) return inner.element;
  return undefined;
}

function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  let s = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional) s = s.unwrap();
  return s;
}

function closest(key: string, candidates: string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const name of candidates) {
    const distance = name.toLowerCase() === lower ? 0 : editDistance(lower, name.toLowerCase());
    if (distance <= 2 && (!best || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        (prev[j] ?? 0) + 1,
        (row[j - 1] ?? 0) + 1,
        (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
