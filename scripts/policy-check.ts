/**
 * `npm run policy:check -- FILE [ACTION] [--strict]`: validates a policy file the way the service loads it, so
 * operators can check a ConfigMap in their own CI before shipping it.
 *
 * Exit 0: valid (with ACTION, the plan a request for it would get is printed as JSON, or the `policy_denied`
 * answer). Exit 1: invalid, every error printed with its YAML path (with --strict, warnings count as errors).
 * Exit 2: bad usage. OVERRIDE_MAX_KEYS / OVERRIDE_MAX_CHARS are read from the environment, as the service does.
 */
import { ConfigError, loadConfig } from '../config/env.js';
import { evaluatePolicy } from '../domain/plan.js';
import { loadPolicyFile, PolicyError } from '../domain/policy-loader.js';

const USAGE = 'usage: npm run policy:check -- FILE [ACTION] [--strict]';

async function main(argv: string[]): Promise<number> {
  const strict = argv.includes('--strict');
  const args = argv.filter((a) => a !== '--strict');
  const [file, action, ...extra] = args;
  if (!file || extra.length > 0 || args.some((a) => a.startsWith('-'))) {
    console.error(USAGE);
    return 2;
  }
  const config = loadConfig({
    OVERRIDE_MAX_KEYS: process.env.OVERRIDE_MAX_KEYS,
    OVERRIDE_MAX_CHARS: process.env.OVERRIDE_MAX_CHARS,
  });
  let loaded;
  try {
    loaded = await loadPolicyFile(file);
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    console.error(`${file}: ${err.errors.length} error(s)`);
    for (const line of err.errors) console.error(`  error ${line}`);
    return 1;
  }
  for (const line of loaded.warnings) console.error(`  warning ${line}`);
  const actions = Object.keys(loaded.policy.actions);
  console.error(
    `${file}: valid, sha256 ${loaded.hash}, ${actions.length} action(s)${actions.length ? `: ${actions.join(', ')}` : ''}`,
  );
  if (strict && loaded.warnings.length > 0) {
    console.error(`${file}: ${loaded.warnings.length} warning(s) and --strict`);
    return 1;
  }
  if (action === undefined) return 0;
  const result = evaluatePolicy(loaded.policy, loaded.hash, action, {
    overrideMaxKeys: config.OVERRIDE_MAX_KEYS,
    overrideMaxChars: config.OVERRIDE_MAX_CHARS,
  });
  const answer = result.ok ? result.plan : { error: result.error, detail: result.reason };
  console.log(JSON.stringify(answer, null, 2));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof ConfigError ? err.message : `policy:check failed: ${String(err)}`);
    process.exitCode = 2;
  },
);
