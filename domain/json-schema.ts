import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import ajvFormats from 'ajv-formats';
import { canonicalJson } from './payload-hash.js';

/**
 * Override JSON Schemas (SPEC sections 2 and 5), checked with Ajv. Operators may annotate a schema with
 * `errorMessage` (the ajv-errors convention): a string replaces every error of that schema, an object maps a
 * keyword (or `_` for the rest) to its message, and `required: {prop: msg}` names a message per missing property.
 */
export type OverrideValidator = (params: Record<string, unknown>) => Record<string, string> | null;

/** Key of errors that belong to no single property (the params object itself has the wrong shape). */
export const ROOT_ERROR_KEY = '(root)';

export interface SchemaProblem {
  /** Path inside the schema, e.g. `['properties', 'replicas', 'maximum']`; empty for the schema itself. */
  path: string[];
  message: string;
}

type AjvInstance = InstanceType<typeof Ajv>;

const DRAFTS: Record<string, new (opts: Options) => AjvInstance> = {
  'https://json-schema.org/draft/2020-12/schema': Ajv2020,
  'https://json-schema.org/draft/2019-09/schema': Ajv2019,
};

// ajv-formats is CommonJS: depending on the loader its default import is the plugin or its module object.
const addFormats = ((ajvFormats as unknown as { default?: unknown }).default ?? ajvFormats) as unknown as (
  ajv: AjvInstance,
) => AjvInstance;

/**
 * A fresh instance per schema: two policies may reuse one `$id` with different content, which a shared
 * instance would refuse; compiled validators are cached below, so this runs once per distinct schema.
 * Strict mode makes an unknown keyword (a typo such as `maximun`) a load error instead of a silent no-op.
 */
function newAjv(schema: Record<string, unknown>): AjvInstance {
  const draft = typeof schema.$schema === 'string' ? DRAFTS[schema.$schema.replace(/#$/, '')] : undefined;
  const ajv = new (draft ?? Ajv)({ allErrors: true, verbose: true, strictTypes: false, strictTuples: false });
  addFormats(ajv);
  ajv.addKeyword({ keyword: 'errorMessage', schemaType: ['string', 'object'] });
  return ajv;
}

/** Everything wrong with a schema, each with its path inside it; empty when the schema compiles. */
export function overrideSchemaProblems(schema: Record<string, unknown>): SchemaProblem[] {
  let ajv: AjvInstance;
  try {
    ajv = newAjv(schema);
    if (!ajv.validateSchema(schema)) {
      return (ajv.errors ?? []).map((e) => ({ path: pointerToPath(e.instancePath), message: e.message ?? 'invalid' }));
    }
    ajv.compile(schema);
    return [];
  } catch (err) {
    return [{ path: [], message: (err as Error).message }];
  }
}

const CACHE_LIMIT = 256;
const byIdentity = new WeakMap<object, OverrideValidator>();
/** Plans come back from Temporal as new objects, so equal content must hit the cache too. */
const byContent = new Map<string, OverrideValidator>();

/**
 * Compiles an override schema into a validator returning field errors keyed by top-level property
 * (`{replicas: 'must be <= 50'}`), or null when the params are valid. Throws when the schema is invalid
 * (the policy loader refuses such a policy first).
 */
export function compileOverrideSchema(schema: Record<string, unknown>): OverrideValidator {
  const known = byIdentity.get(schema);
  if (known) return known;
  const key = canonicalJson(schema);
  let validator = byContent.get(key);
  if (!validator) {
    validator = toFieldErrors(newAjv(schema).compile(schema));
    if (byContent.size >= CACHE_LIMIT) byContent.delete(byContent.keys().next().value as string);
    byContent.set(key, validator);
  }
  byIdentity.set(schema, validator);
  return validator;
}

/** One way the agent's params fail an action's `paramsSchema`: the path inside the params and why. */
export interface ParamsProblem {
  /** e.g. `['limits', 'cpu']`; a missing or unexpected key is named as the last segment; empty for the object. */
  path: string[];
  message: string;
}
export type ParamsValidator = (params: Record<string, unknown>) => ParamsProblem[] | null;

const paramsByContent = new Map<string, ParamsValidator>();

/**
 * Compiles an action's `paramsSchema` (issue 17: checked when a request is created) into a validator listing every
 * problem with its full path inside the params, or null when they pass. Same Ajv settings, drafts and `errorMessage`
 * convention as override schemas; throws when the schema is invalid (the policy loader refuses such a policy first).
 */
export function compileParamsSchema(schema: Record<string, unknown>): ParamsValidator {
  const key = canonicalJson(schema);
  let validator = paramsByContent.get(key);
  if (!validator) {
    const validate = newAjv(schema).compile(schema);
    validator = (params) => (validate(params) ? null : (validate.errors ?? []).map(describeAtPath));
    if (paramsByContent.size >= CACHE_LIMIT) paramsByContent.delete(paramsByContent.keys().next().value as string);
    paramsByContent.set(key, validator);
  }
  return validator;
}

function describeAtPath(error: ErrorObject): ParamsProblem {
  const path = pointerToPath(error.instancePath);
  const custom = customMessage(error);
  if (error.keyword === 'required') {
    return { path: [...path, String(error.params.missingProperty)], message: custom ?? 'is required' };
  }
  if (error.keyword === 'additionalProperties') {
    return { path: [...path, String(error.params.additionalProperty)], message: custom ?? 'is not an allowed key' };
  }
  return { path, message: custom ?? error.message ?? 'is invalid' };
}

function toFieldErrors(validate: ValidateFunction): OverrideValidator {
  return (params) => {
    if (validate(params)) return null;
    const fields: Record<string, string> = {};
    for (const error of validate.errors ?? []) {
      const { field, message } = describe(error);
      fields[field] ??= message;
    }
    return fields;
  };
}

function describe(error: ErrorObject): { field: string; message: string } {
  const path = pointerToPath(error.instancePath);
  const custom = customMessage(error);
  if (path.length === 0) {
    if (error.keyword === 'required') {
      return { field: String(error.params.missingProperty), message: custom ?? 'is required' };
    }
    if (error.keyword === 'additionalProperties') {
      return { field: String(error.params.additionalProperty), message: custom ?? 'is not an allowed key' };
    }
    return { field: ROOT_ERROR_KEY, message: custom ?? error.message ?? 'is invalid' };
  }
  const [field, ...rest] = path as [string, ...string[]];
  const message = custom ?? error.message ?? 'is invalid';
  return { field, message: rest.length > 0 && !custom ? `${rest.join('.')}: ${message}` : message };
}

function customMessage(error: ErrorObject): string | undefined {
  const spec = (error.parentSchema as { errorMessage?: unknown } | undefined)?.errorMessage;
  if (typeof spec === 'string') return spec;
  if (spec === null || typeof spec !== 'object') return undefined;
  const byKeyword = spec as Record<string, unknown>;
  const entry = byKeyword[error.keyword];
  if (typeof entry === 'string') return entry;
  if (error.keyword === 'required' && entry && typeof entry === 'object') {
    const perProperty = (entry as Record<string, unknown>)[String(error.params.missingProperty)];
    if (typeof perProperty === 'string') return perProperty;
  }
  return typeof byKeyword._ === 'string' ? byKeyword._ : undefined;
}

/** A deep copy without `errorMessage` annotations, for `GET /api/schemas/:action`. */
export function publicSchema(schema: Record<string, unknown>): Record<string, unknown> {
  return stripErrorMessages(schema) as Record<string, unknown>;
}

/**
 * Strips the annotation where it is a keyword, not where it is data: a property *named* `errorMessage`
 * under `properties` (or a `const`/`enum`/`default` value) is kept.
 */
function stripErrorMessages(value: unknown, isSchema = true): unknown {
  if (Array.isArray(value)) return value.map((v) => stripErrorMessages(v, isSchema));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (isSchema && k === 'errorMessage') continue;
    if (!isSchema) out[k] = stripErrorMessages(v, true);
    else if (DATA_KEYWORDS.has(k)) out[k] = structuredClone(v);
    else out[k] = stripErrorMessages(v, !SCHEMA_MAP_KEYWORDS.has(k));
  }
  return out;
}

/** Keywords whose value is a map of name → schema. */
const SCHEMA_MAP_KEYWORDS = new Set([
  'properties',
  'patternProperties',
  'definitions',
  '$defs',
  'dependentSchemas',
  'dependencies',
]);
/** Keywords whose value is instance data, never a schema. */
const DATA_KEYWORDS = new Set(['const', 'enum', 'default', 'examples', 'example']);

function pointerToPath(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}
