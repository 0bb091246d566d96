/**
 * Static checks of the deployment files: Dockerfile, .dockerignore, docker-compose.yml and deploy/k8s. No Docker
 * engine or cluster is needed; Debian's docker-compose validates the compose file and kustomize builds deploy/k8s.
 */
import { generateKeyPairSync } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { parse, parseAllDocuments } from 'yaml';
import { envSchema } from '../../config/env.js';
import { parsePolicy } from '../../domain/policy-loader.js';
import { serverDatabaseEnv, VERSIONS } from '../../scripts/cluster-lib.js';
import { GUARD_SEARCH_ATTRIBUTES } from '../../temporal/search-attributes.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (rel: string): string => readFileSync(path.join(ROOT, rel), 'utf8');

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' ? (v as Json) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

const ENV_KEYS = new Set(Object.keys(envSchema.shape));

/** The variables config/env.ts demands in production, read from its own error message. */
const PRODUCTION_REQUIRED = (() => {
  const res = envSchema.safeParse({ NODE_ENV: 'production' });
  return res.success ? [] : res.error.issues.map((i) => String(i.path[0]));
})();

/** Valid dummy values for the secrets (the receipt key must really be an Ed25519 key). */
const DUMMY_SECRETS: Record<string, string> = {
  SLACK_SIGNING_SECRET: 'dummy-signing-secret',
  SLACK_BOT_TOKEN: 'xoxb-dummy',
  ADMIN_TOKEN: 'dummy-admin-token',
  TOKEN_SECRET: 'dummy-token-secret-0123456789abcdef',
  AGENT_API_KEYS: '',
  RECEIPT_PRIVATE_KEY: generateKeyPairSync('ed25519')
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString()
    .replaceAll('\n', '\\n'),
};

function expectParsesAsConfig(env: Record<string, string>, where: string): void {
  const res = envSchema.safeParse(env);
  const issues = res.success ? [] : res.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  expect({ where, issues }).toEqual({ where, issues: [] });
}

function expectKnownEnvKeys(keys: Iterable<string>, where: string): void {
  const unknown = [...keys].filter((k) => !ENV_KEYS.has(k));
  expect({ where, unknown }).toEqual({ where, unknown: [] });
}

/** Name=Type lines of the SEARCH_ATTRIBUTES list in the setup script. */
function scriptSearchAttributes(): Record<string, string> {
  const script = read('deploy/k8s/temporal-setup.sh');
  const block = /^SEARCH_ATTRIBUTES="\n([\s\S]*?)"$/m.exec(script)?.[1] ?? '';
  return Object.fromEntries(
    block
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('=') as [string, string]),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  op: string;
  args: string;
}

function dockerfileStages(text: string): { from: string; name?: string; instructions: Instruction[] }[] {
  const logical = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const args: Record<string, string> = {};
  const stages: { from: string; name?: string; instructions: Instruction[] }[] = [];
  for (const line of logical) {
    const [op = '', ...rest] = line.split(/\s+/);
    const ins = { op: op.toUpperCase(), args: rest.join(' ') };
    if (ins.op === 'ARG' && stages.length === 0) {
      const [k, v = ''] = ins.args.split('=');
      args[k!] = v;
    } else if (ins.op === 'FROM') {
      const [image = '', , name] = ins.args.replace(/--platform=\S+\s+/, '').split(/\s+/);
      stages.push({ from: image.replace(/\$\{(\w+)\}/g, (_, k: string) => args[k] ?? ''), name, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(ins);
    }
  }
  return stages;
}

const execForm = (args: string): string[] => JSON.parse(args.replace(/^CMD\s+/, '')) as string[];

/** Relative modules reachable from the entry files (static and dynamic imports, `new URL(..., import.meta.url)`). */
function reachableModules(entries: string[]): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = entries.map((e) => path.join(ROOT, e));
  const specifier =
    /(?:^|[\s;])(?:import(?!\s+type\s)[\s\S]*?\sfrom\s*|export(?!\s+type\s)[^;'"]*?\sfrom\s*|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/gm;
  const urlRef = /new URL\(\s*['"](\.[^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g;
  while (queue.length) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const src = readFileSync(file, 'utf8');
    const specs = [...src.matchAll(specifier)].map((m) => m[1]!);
    const refs = [...src.matchAll(urlRef)].map((m) => m[1]!);
    for (const spec of [...specs, ...refs]) {
      if (spec.startsWith('.')) {
        const base = path.resolve(path.dirname(file), spec);
        const candidates = [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, path.join(base, 'index.ts')];
        const found = candidates.find((c) => existsSync(c) && c.endsWith('.ts'));
        if (!found) throw new Error(`${path.relative(ROOT, file)}: cannot resolve ${spec}`);
        queue.push(found);
      } else if (!spec.startsWith('node:')) {
        packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
  }
  return { files, packages };
}

function productionDeps(): string[] {
  const pkg = JSON.parse(read('package.json')) as { dependencies?: Record<string, string> };
  return Object.keys(pkg.dependencies ?? {});
}

/** Docker's .dockerignore semantics, simplified: globs with * and **, last match wins, `!` re-includes. */
function dockerIgnored(patterns: string[], file: string): boolean {
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const pattern = (negate ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, '');
    const re = new RegExp(
      `^${pattern
        .split('**')
        .map((part) =>
          part
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '[^/]*')
            .replace(/\?/g, '[^/]'),
        )
        .join('.*')
        .replace(/\.\*\//g, '(?:.*/)?')}(?:/.*)?$`,
    );
    if (re.test(file)) ignored = !negate;
  }
  return ignored;
}

describe('Dockerfile', () => {
  const stages = dockerfileStages(read('Dockerfile'));
  const runtime = stages.at(-1)!;
  const ops = (op: string) => runtime.instructions.filter((i) => i.op === op);
  const copies = ops('COPY').filter((c) => !c.args.startsWith('--from'));
  const copiedSources = copies.flatMap((c) => c.args.split(/\s+/).slice(0, -1));

  test('is multi-stage on node:20-bookworm-slim, installing from the lockfile with npm ci', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages[0]!.from).toBe('node:20-bookworm-slim');
    const runs = stages.flatMap((s) => s.instructions.filter((i) => i.op === 'RUN').map((i) => i.args));
    expect(runs.some((r) => /npm ci\b.*--omit=dev/.test(r))).toBe(true);
    expect(ops('COPY').some((c) => /^--from=\S+ \/app\/node_modules /.test(c.args))).toBe(true);
  });

  test('runs as a numeric non-root user', () => {
    const users = ops('USER').map((u) => u.args);
    expect(users).toHaveLength(1);
    const [uid] = users[0]!.split(':');
    expect(uid).toMatch(/^\d+$/);
    expect(Number(uid)).toBeGreaterThan(0);
  });

  test('exposes 8080 and health-checks /healthz with node', () => {
    expect(ops('EXPOSE').map((e) => e.args)).toEqual(['8080']);
    const [healthcheck] = ops('HEALTHCHECK');
    expect(healthcheck).toBeDefined();
    const cmd = execForm(healthcheck!.args.replace(/^(--\S+\s+)*/, ''));
    expect(cmd[0]).toBe('node');
    expect(cmd[1]).toBe('/app/deploy/healthcheck.mjs');
    expect(read('deploy/healthcheck.mjs')).toContain('/healthz');
  });

  test('its entrypoint picks the api or the worker by command', () => {
    const [entrypoint] = ops('ENTRYPOINT');
    const argv = execForm(entrypoint!.args);
    expect(argv.at(-1)).toBe('/app/deploy/docker-entrypoint.sh');
    expect(execForm(ops('CMD')[0]!.args)).toEqual(['api']);
    accessSync(path.join(ROOT, 'deploy/docker-entrypoint.sh'), constants.X_OK);
    const script = read('deploy/docker-entrypoint.sh');
    expect(script).toMatch(/api\)\s+exec node --import tsx service\/api\.ts/);
    expect(script).toMatch(/worker\)\s+exec node --import tsx service\/worker\.ts/);
  });

  test('sets only variables of config/env.ts', () => {
    const keys = ops('ENV').flatMap((e) => [...e.args.matchAll(/(\w+)=/g)].map((m) => m[1]!));
    expect(keys.length).toBeGreaterThan(0);
    expectKnownEnvKeys(keys, 'Dockerfile ENV');
  });

  test('copies every source file the api, the worker and the workflow bundle load', () => {
    for (const src of copiedSources) expect([src, existsSync(path.join(ROOT, src))]).toEqual([src, true]);
    const { files } = reachableModules(['service/api.ts', 'service/worker.ts']);
    const topDirs = new Set([...files].map((f) => path.relative(ROOT, f).split(path.sep)[0]!));
    expect(topDirs).toContain('workflows');
    const missing = [...topDirs].filter((d) => !copiedSources.includes(d));
    expect(missing).toEqual([]);
  });

  test('the image holds no development code: no dev/, test/, bench/ or scripts/ (nor the whole context)', () => {
    const tops = copiedSources.map((src) => src.replace(/^\.\//, '').split('/')[0]!);
    for (const dir of ['dev', 'test', 'bench', 'scripts', '.', '*'])
      expect([dir, tops.includes(dir)]).toEqual([dir, false]);
    // And nothing the production code loads comes from there (lint enforces the same per file).
    const { files } = reachableModules(['service/api.ts', 'service/worker.ts']);
    const devFiles = [...files].map((f) => path.relative(ROOT, f)).filter((f) => /^(dev|test|bench|scripts)\//.test(f));
    expect(devFiles).toEqual([]);
  });

  test('the runtime imports only production dependencies (the image installs with --omit=dev)', () => {
    const { packages } = reachableModules(['service/api.ts', 'service/worker.ts']);
    expect(packages).toContain('@temporalio/worker');
    expect([...packages].filter((p) => !productionDeps().includes(p))).toEqual([]);
  });

  test('tsx, which runs the sources in the image, is a production dependency', () => {
    expect(productionDeps()).toContain('tsx');
  });

  test('.dockerignore keeps secrets and bulk out of the context but not what the image copies', () => {
    const patterns = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const p of ['node_modules', '.git', '.env', '.env.local', '.tools', '.data', 'test/unit/x.test.ts']) {
      expect([p, dockerIgnored(patterns, p)]).toEqual([p, true]);
    }
    const kept = [...copiedSources, 'service/api.ts', 'workflows/index.ts', 'package-lock.json'];
    for (const p of kept) expect([p, dockerIgnored(patterns, p)]).toEqual([p, false]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// docker-compose.yml

/** Compose's variable interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}. */
function interpolate(value: string, env: Record<string, string | undefined>): string {
  return value.replace(/\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}/g, (whole, name: string, op?: string, arg?: string) => {
    if (whole === '$$') return '$';
    const v = env[name];
    const unset = op?.startsWith(':') ? !v : v === undefined;
    if (op?.endsWith('-')) return unset ? (arg ?? '') : v!;
    if (op?.endsWith('?') && unset) throw new Error(`required variable ${name}: ${arg}`);
    return v ?? '';
  });
}

describe('docker-compose.yml', () => {
  const compose = obj(parse(read('docker-compose.yml'), { merge: true }));
  const services = obj(compose.services);
  const service = (name: string) => obj(services[name]);
  const envOf = (name: string) => obj(service(name).environment) as Record<string, string | number | boolean>;

  test('has postgres, its schema one-shot, Temporal, its setup one-shot, the UI, the api and the worker', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['api', 'postgresql', 'temporal', 'temporal-schema', 'temporal-setup', 'temporal-ui', 'worker'].sort(),
    );
    expect(envOf('temporal').DB).toBe('postgres12');
    expect(arr(service('temporal-ui').ports).map(String)).toContainEqual(expect.stringMatching(/(^|:)8233:8080$/));
  });

  test('images are the versions of deploy/temporal-versions.json, which npm run cluster builds and runs', () => {
    const image = (name: string) => interpolate(String(service(name).image), {});
    expect(image('temporal')).toBe(VERSIONS.images.server);
    expect(VERSIONS.images.server).toBe(`temporalio/server:${VERSIONS.server}`);
    expect(image('temporal-schema')).toBe(VERSIONS.images.adminTools);
    expect(image('temporal-setup')).toBe(VERSIONS.images.adminTools);
    expect(image('temporal-ui')).toBe(VERSIONS.images.ui);
    expect(image('postgresql')).toBe(VERSIONS.images.postgres);
  });

  test('Temporal gets the variables npm run cluster proved: SQL persistence and visibility on PostgreSQL', () => {
    const env = envOf('temporal');
    const proven = serverDatabaseEnv({ host: 'postgresql', port: 5432, user: 'temporal', password: 'temporal' });
    const resolved = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(String(v), {})]));
    expect(Object.keys(env).sort()).toEqual(
      [...Object.keys(proven), 'BIND_ON_IP', 'NUM_HISTORY_SHARDS', 'DYNAMIC_CONFIG_FILE_PATH'].sort(),
    );
    for (const [k, v] of Object.entries(proven)) expect([k, resolved[k]]).toEqual([k, v]);
    const [mount] = arr(service('temporal').volumes).map(String);
    expect(mount).toBe(`./deploy/temporal-dynamicconfig.yaml:${env.DYNAMIC_CONFIG_FILE_PATH}:ro`);
  });

  test("the schema one-shot runs deploy/temporal-schema.sh at the release's visibility schema version", () => {
    const schema = service('temporal-schema');
    const [mount] = arr(schema.volumes).map(String);
    const [hostPath, containerPath] = mount!.split(':');
    expect(hostPath).toBe('./deploy/temporal-schema.sh');
    expect(arr(schema.entrypoint)).toEqual(['/bin/sh', containerPath]);
    expect(envOf('temporal-schema')).toMatchObject({
      SQL_HOST: 'postgresql',
      SCHEMA_DIR: '/etc/temporal/schema/postgresql/v12',
      VISIBILITY_SCHEMA_VERSION: VERSIONS.visibilitySchemaVersion,
    });
    expect(schema.restart).toBe('no');
  });

  test('long-running services have healthchecks; Temporal is asked through its HTTP API', () => {
    for (const name of ['postgresql', 'temporal', 'api', 'worker']) {
      expect([name, arr(obj(service(name).healthcheck).test).length > 0]).toEqual([name, true]);
    }
    expect(arr(obj(service('temporal').healthcheck).test).join(' ')).toContain('/api/v1/system-info');
    expect(arr(obj(service('api').healthcheck).test)).toEqual(['CMD', 'node', '/app/deploy/healthcheck.mjs', 'api']);
  });

  test('start order is enforced with depends_on conditions', () => {
    const conditions = (name: string) =>
      Object.fromEntries(Object.entries(obj(service(name).depends_on)).map(([k, v]) => [k, obj(v).condition]));
    expect(conditions('temporal-schema')).toEqual({ postgresql: 'service_healthy' });
    expect(conditions('temporal')).toEqual({ 'temporal-schema': 'service_completed_successfully' });
    expect(conditions('temporal-setup')).toEqual({ temporal: 'service_healthy' });
    for (const role of ['api', 'worker']) {
      expect(conditions(role)).toEqual({
        temporal: 'service_healthy',
        'temporal-setup': 'service_completed_successfully',
      });
    }
    for (const [name, svc] of Object.entries(services)) {
      for (const [dep, cond] of Object.entries(obj(obj(svc).depends_on))) {
        if (obj(cond).condition === 'service_healthy')
          expect([name, dep, !!service(dep).healthcheck]).toEqual([name, dep, true]);
      }
    }
    expect(service('temporal-setup').restart).toBe('no');
  });

  test('api and worker run the image built from the Dockerfile, one role each', () => {
    for (const role of ['api', 'worker']) {
      expect(obj(service(role).build).context).toBe('.');
      expect(service(role).command).toEqual([role]);
    }
    expect(service('api').image).toBe(service('worker').image);
  });

  test('the policy is mounted read-only as a file and the archive lives on a named volume', () => {
    expect(envOf('api').POLICY_PATH).toBe('/etc/guard/policy.yaml');
    expect(arr(service('api').volumes)).toContain('./policies/policy.yaml:/etc/guard/policy.yaml:ro');
    const archiveDir = envOf('worker').RETENTION_ARCHIVE_DIR;
    const archiveMount = arr(service('worker').volumes)
      .map(String)
      .find((v) => v.split(':')[1] === archiveDir);
    expect(archiveMount).toBeDefined();
    expect(Object.keys(obj(compose.volumes))).toContain(archiveMount!.split(':')[0]);
  });

  test('api and worker get only variables of config/env.ts, secrets as required ${VAR:?} values', () => {
    for (const role of ['api', 'worker']) {
      const env = envOf(role);
      expectKnownEnvKeys(Object.keys(env), `compose ${role}`);
      expect(PRODUCTION_REQUIRED.length).toBeGreaterThan(0);
      for (const key of PRODUCTION_REQUIRED)
        expect([key, env[key]]).toEqual([key, expect.stringMatching(`^\\$\\{${key}:\\?`)]);
      const resolved = Object.fromEntries(
        Object.entries(env).map(([k, v]) => [k, interpolate(String(v), DUMMY_SECRETS)]),
      ) as Record<string, string>;
      expectParsesAsConfig(resolved, `compose ${role}`);
      expect(() => interpolate(String(env.ADMIN_TOKEN), {})).toThrow(/required variable ADMIN_TOKEN/);
    }
  });

  test('the setup one-shot runs the script that registers the search attributes of temporal/search-attributes.ts', () => {
    const setup = service('temporal-setup');
    const [mount] = arr(setup.volumes).map(String);
    const [hostPath, containerPath] = mount!.split(':');
    expect(hostPath).toBe('./deploy/k8s/temporal-setup.sh');
    expect(arr(setup.entrypoint)).toEqual(['/bin/sh', containerPath]);
    expect(scriptSearchAttributes()).toEqual(GUARD_SEARCH_ATTRIBUTES);
    expectKnownEnvKeys(Object.keys(obj(setup.environment)), 'compose temporal-setup');
  });

  // Debian's docker-compose (1.29, the Python CLI; .ci/run installs it) validates and interpolates the file without
  // a Docker engine. It is older than the `docker compose` plugin: the file keeps to what both accept (no top-level
  // `name:`; the project name comes from COMPOSE_PROJECT_NAME in .env).
  test("docker-compose config (Debian's docker-compose CLI) accepts it, and refuses it without the secrets", () => {
    const run = (env: Record<string, string>) => {
      const res = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      });
      if ((res.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')
        throw new Error(
          "docker-compose is not installed: apt-get install docker-compose (Debian's package; .ci/run does)",
        );
      return res;
    };
    const ok = run(DUMMY_SECRETS);
    expect([ok.status, ok.stderr]).toEqual([0, '']);
    const missing = run({});
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(
      /Missing mandatory value for "environment" option .* set SLACK_SIGNING_SECRET in \.env/,
    );
  });

  test('docker-compose config resolves the services, volumes and the interpolated defaults', () => {
    const res = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...DUMMY_SECRETS },
    });
    expect([res.status, res.stderr]).toEqual([0, '']);
    const resolved = obj(parse(res.stdout));
    expect(Object.keys(obj(resolved.services)).sort()).toEqual(Object.keys(services).sort());
    expect(Object.keys(obj(resolved.volumes)).sort()).toEqual(Object.keys(obj(compose.volumes)).sort());
    const apiEnv = obj(obj(obj(resolved.services).api).environment);
    expect(apiEnv.TEMPORAL_TASK_QUEUE).toBe('approval-guard');
    expect(apiEnv.SLACK_SIGNING_SECRET).toBe(DUMMY_SECRETS.SLACK_SIGNING_SECRET);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Kubernetes

const K8S = 'deploy/k8s';
const kustomization = obj(parse(read(`${K8S}/kustomization.yaml`)));
const generators = arr(kustomization.configMapGenerator).map(obj);
const generator = (name: string) => generators.find((g) => g.name === name)!;

const parsed = arr(kustomization.resources).flatMap((file) =>
  parseAllDocuments(read(`${K8S}/${String(file)}`)).map((d) => ({ file: String(file), doc: d })),
);
const docs: (Json & { file: string })[] = parsed.map(({ file, doc }) => ({ ...obj(doc.toJS()), file }));
const ofKind = (kind: string) => docs.filter((d) => d.kind === kind);
const named = (kind: string, name: string) => ofKind(kind).find((d) => obj(d.metadata).name === name)!;
const podSpec = (workload: Json) => obj(obj(obj(workload.spec).template).spec);
const container = (workload: Json) => obj(arr(podSpec(workload).containers)[0]);

const secretTemplate = obj(parse(read(`${K8S}/secret.example.yaml`)));
const secretName = obj(secretTemplate.metadata).name;
const envLiterals = Object.fromEntries(
  arr(generator('approval-guard-env').literals).map((l) => {
    const [k, ...v] = String(l).split('=');
    return [k!, v.join('=')];
  }),
) as Record<string, string>;

/** Required fields per kind: the part of the API schemas that a typo would break. */
const REQUIRED: Record<string, string[][]> = {
  Namespace: [],
  ServiceAccount: [],
  PersistentVolumeClaim: [
    ['spec', 'accessModes'],
    ['spec', 'resources', 'requests', 'storage'],
  ],
  Service: [
    ['spec', 'selector'],
    ['spec', 'ports'],
  ],
  Deployment: [
    ['spec', 'selector', 'matchLabels'],
    ['spec', 'template', 'metadata', 'labels'],
    ['spec', 'template', 'spec', 'containers'],
  ],
  Job: [
    ['spec', 'template', 'spec', 'containers'],
    ['spec', 'template', 'spec', 'restartPolicy'],
  ],
  PodDisruptionBudget: [['spec', 'selector', 'matchLabels']],
};
const API_VERSIONS: Record<string, string> = {
  Namespace: 'v1',
  ServiceAccount: 'v1',
  PersistentVolumeClaim: 'v1',
  Service: 'v1',
  Deployment: 'apps/v1',
  Job: 'batch/v1',
  PodDisruptionBudget: 'policy/v1',
};
const LOCAL_KUSTOMIZE = path.join(ROOT, '.tools', 'kustomize', 'kustomize');
function kustomizeCommand(): [string, string[]] {
  if (spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0)
    return ['kubectl', ['kustomize', K8S]];
  if (existsSync(LOCAL_KUSTOMIZE)) return [LOCAL_KUSTOMIZE, ['build', K8S]];
  throw new Error(
    'no kustomize: install kubectl, or `GOBIN=$PWD/.tools/kustomize go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0` (.ci/run does)',
  );
}
const at = (o: unknown, keys: string[]): unknown => keys.reduce<unknown>((v, k) => obj(v)[k], o);
const matches = (selector: unknown, labels: unknown) =>
  Object.entries(obj(selector)).every(([k, v]) => obj(labels)[k] === v);

describe('Kubernetes manifests (deploy/k8s)', () => {
  test('every resource parses, with its apiVersion, a name and the fields its kind requires', () => {
    expect(parsed.flatMap(({ file, doc }) => doc.errors.map((e) => `${file}: ${e.message}`))).toEqual([]);
    expect(docs.length).toBeGreaterThan(0);
    for (const d of docs) {
      const kind = String(d.kind);
      expect([d.file, kind, d.apiVersion]).toEqual([d.file, kind, API_VERSIONS[kind]]);
      expect([d.file, typeof obj(d.metadata).name]).toEqual([d.file, 'string']);
      for (const keys of REQUIRED[kind]!) {
        const v = at(d, keys);
        expect([d.file, keys.join('.'), v !== undefined && v !== null]).toEqual([d.file, keys.join('.'), true]);
      }
    }
  });

  test('has the namespace, both deployments, the service, the PVC, the PDBs and the setup job', () => {
    expect(ofKind('Namespace').map((n) => obj(n.metadata).name)).toEqual([kustomization.namespace]);
    expect(
      ofKind('Deployment')
        .map((d) => obj(d.metadata).name)
        .sort(),
    ).toEqual(['approval-guard-api', 'approval-guard-worker']);
    expect(ofKind('Service')).toHaveLength(1);
    expect(ofKind('PersistentVolumeClaim')).toHaveLength(1);
    expect(ofKind('PodDisruptionBudget')).toHaveLength(2);
    expect(ofKind('Job')).toHaveLength(1);
  });

  test('selectors match their pod templates; services and PDBs select pods of a deployment', () => {
    const deployments = ofKind('Deployment');
    for (const d of deployments) {
      expect(
        matches(at(d, ['spec', 'selector', 'matchLabels']), at(d, ['spec', 'template', 'metadata', 'labels'])),
      ).toBe(true);
    }
    const podLabels = deployments.map((d) => at(d, ['spec', 'template', 'metadata', 'labels']));
    for (const s of [
      ...ofKind('Service').map((s) => at(s, ['spec', 'selector'])),
      ...ofKind('PodDisruptionBudget').map((p) => at(p, ['spec', 'selector', 'matchLabels'])),
    ]) {
      expect(podLabels.filter((l) => matches(s, l))).toHaveLength(1);
    }
    const api = named('Deployment', 'approval-guard-api');
    const servicePort = obj(arr(at(ofKind('Service')[0], ['spec', 'ports']))[0]);
    const containerPorts = arr(container(api).ports).map(obj);
    expect(containerPorts.find((p) => p.name === servicePort.targetPort)?.containerPort).toBe(8080);
  });

  test('the API runs 2 replicas, ready on /readyz and live on /healthz, with resources', () => {
    const api = named('Deployment', 'approval-guard-api');
    expect(at(api, ['spec', 'replicas'])).toBe(2);
    const c = container(api);
    expect(c.args).toEqual(['api']);
    expect(at(c, ['readinessProbe', 'httpGet', 'path'])).toBe('/readyz');
    expect(at(c, ['livenessProbe', 'httpGet', 'path'])).toBe('/healthz');
    expect(at(c, ['readinessProbe', 'httpGet', 'port'])).toBe('http');
    expect(at(c, ['resources', 'requests', 'memory'])).toBeDefined();
    expect(at(c, ['resources', 'limits', 'memory'])).toBeDefined();
  });

  test('the worker runs 2 replicas with the archive claim (ReadWriteMany) at RETENTION_ARCHIVE_DIR', () => {
    const worker = named('Deployment', 'approval-guard-worker');
    expect(at(worker, ['spec', 'replicas'])).toBe(2);
    expect(container(worker).args).toEqual(['worker']);
    const pvc = ofKind('PersistentVolumeClaim')[0]!;
    expect(at(pvc, ['spec', 'accessModes'])).toEqual(['ReadWriteMany']);
    const volume = arr(podSpec(worker).volumes)
      .map(obj)
      .find((v) => obj(v.persistentVolumeClaim).claimName === obj(pvc.metadata).name);
    const mount = arr(container(worker).volumeMounts)
      .map(obj)
      .find((m) => m.name === volume?.name);
    expect(mount?.mountPath).toBe(envLiterals.RETENTION_ARCHIVE_DIR);
    expect(at(podSpec(worker), ['securityContext', 'fsGroup'])).toBeDefined();
  });

  test('the worker serves its metrics on WORKER_METRICS_PORT: scraped, probed, and set in compose too', () => {
    const worker = named('Deployment', 'approval-guard-worker');
    const c = container(worker);
    const port = arr(c.env)
      .map(obj)
      .find((e) => e.name === 'WORKER_METRICS_PORT')?.value;
    expect(port).toBe('9464');
    expect(arr(c.ports)).toContainEqual({ name: 'metrics', containerPort: 9464 });
    expect(obj(obj(obj(worker.spec).template).metadata).annotations).toMatchObject({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': port,
      'prometheus.io/path': '/metrics',
    });
    expect(obj(c.livenessProbe).httpGet).toEqual({ path: '/metrics', port: 'metrics' });
    const compose = obj(parse(read('docker-compose.yml'), { merge: true }));
    expect(obj(obj(obj(compose.services).worker).environment).WORKER_METRICS_PORT).toBe(9464);
    expect(read('deploy/healthcheck.mjs')).toContain('env.WORKER_METRICS_PORT');
  });

  test('every pod runs non-root, without privilege escalation, on a read-only root filesystem', () => {
    for (const w of [...ofKind('Deployment'), ...ofKind('Job')]) {
      const name = obj(w.metadata).name;
      const pod = obj(podSpec(w).securityContext);
      expect([name, pod.runAsNonRoot, Number(pod.runAsUser) > 0]).toEqual([name, true, true]);
      expect([name, at(pod, ['seccompProfile', 'type'])]).toEqual([name, 'RuntimeDefault']);
      for (const c of arr(podSpec(w).containers).map(obj)) {
        const sc = obj(c.securityContext);
        expect([
          name,
          sc.allowPrivilegeEscalation,
          sc.readOnlyRootFilesystem,
          at(sc, ['capabilities', 'drop']),
        ]).toEqual([name, false, true, ['ALL']]);
      }
    }
  });

  test('volumes resolve to generated config maps, the claim or emptyDirs; mounts to volumes', () => {
    const generated = generators.map((g) => g.name);
    for (const w of [...ofKind('Deployment'), ...ofKind('Job')]) {
      const volumes = arr(podSpec(w).volumes).map(obj);
      for (const v of volumes) {
        const ref =
          obj(v.configMap).name ?? obj(v.persistentVolumeClaim).claimName ?? (v.emptyDir ? 'emptyDir' : undefined);
        expect([
          v.name,
          ref === 'emptyDir' ||
            generated.includes(ref) ||
            ofKind('PersistentVolumeClaim').some((p) => obj(p.metadata).name === ref),
        ]).toEqual([v.name, true]);
      }
      for (const c of arr(podSpec(w).containers).map(obj)) {
        for (const m of arr(c.volumeMounts).map(obj)) expect(volumes.map((v) => v.name)).toContain(m.name);
        for (const e of arr(c.envFrom).map(obj)) {
          const ref = obj(e.configMapRef).name ?? obj(e.secretRef).name;
          expect([ref, generated.includes(ref) || ref === secretName]).toEqual([ref, true]);
        }
      }
    }
    for (const g of generators) {
      for (const f of arr(g.files)) expect([f, existsSync(path.join(ROOT, K8S, String(f)))]).toEqual([f, true]);
    }
  });

  test('the policy config map is mounted so that POLICY_PATH names its file, and the policy is valid', () => {
    const policyPath = envLiterals.POLICY_PATH!;
    const api = named('Deployment', 'approval-guard-api');
    const volume = arr(podSpec(api).volumes)
      .map(obj)
      .find((v) => obj(v.configMap).name === 'approval-guard-policy');
    const mount = arr(container(api).volumeMounts)
      .map(obj)
      .find((m) => m.name === volume?.name);
    expect(mount?.mountPath).toBe(path.posix.dirname(policyPath));
    expect(mount?.readOnly).toBe(true);
    const items = arr(obj(volume?.configMap).items).map(obj);
    expect(items).toEqual([{ key: 'policy.yaml', path: path.posix.basename(policyPath) }]);
    expect(generator('approval-guard-policy').files).toEqual(['policy.yaml']);
    expect(() => parsePolicy(read(`${K8S}/policy.yaml`), 'deploy/k8s/policy.yaml')).not.toThrow();
  });

  test('env comes from the generated config map and the Secret, and is a valid production configuration', () => {
    expectKnownEnvKeys(Object.keys(envLiterals), 'approval-guard-env');
    const secretKeys = Object.keys(obj(secretTemplate.stringData));
    expectKnownEnvKeys(secretKeys, 'secret.example.yaml');
    expect(secretKeys).toEqual(expect.arrayContaining(PRODUCTION_REQUIRED));
    expect(secretKeys).toEqual(
      expect.arrayContaining([
        'SLACK_SIGNING_SECRET',
        'SLACK_BOT_TOKEN',
        'ADMIN_TOKEN',
        'TOKEN_SECRET',
        'AGENT_API_KEYS',
      ]),
    );
    for (const [k, v] of Object.entries(obj(secretTemplate.stringData))) {
      if (v) expect([k, String(v)]).toEqual([k, expect.stringContaining('REPLACE_ME')]);
    }
    expect(arr(kustomization.resources)).not.toContain('secret.example.yaml');
    for (const d of ofKind('Deployment')) {
      const c = container(d);
      const refs = arr(c.envFrom).map(obj);
      expect(refs).toContainEqual({ configMapRef: { name: 'approval-guard-env' } });
      expect(refs).toContainEqual({ secretRef: { name: secretName } });
      const explicit = Object.fromEntries(arr(c.env).map((e) => [obj(e).name, String(obj(e).value)])) as Record<
        string,
        string
      >;
      expectKnownEnvKeys(Object.keys(explicit), `${String(obj(d.metadata).name)} env`);
      const secretValues = Object.fromEntries(secretKeys.map((k) => [k, DUMMY_SECRETS[k] ?? 'dummy']));
      expectParsesAsConfig({ ...envLiterals, ...secretValues, ...explicit }, String(obj(d.metadata).name));
    }
  });

  test('the setup job runs the search-attribute script against the same Temporal', () => {
    const job = ofKind('Job')[0]!;
    const c = container(job);
    expect(c.image).toBe(VERSIONS.images.adminTools);
    expect(c.envFrom).toEqual([{ configMapRef: { name: 'approval-guard-env' } }]);
    const script = arr(podSpec(job).volumes)
      .map(obj)
      .find((v) => obj(v.configMap).name === 'approval-guard-temporal-setup');
    const mount = arr(c.volumeMounts)
      .map(obj)
      .find((m) => m.name === script?.name);
    expect(c.command).toEqual(['/bin/sh', `${String(mount?.mountPath)}/temporal-setup.sh`]);
    expect(generator('approval-guard-temporal-setup').files).toEqual(['temporal-setup.sh']);
    expect(scriptSearchAttributes()).toEqual(GUARD_SEARCH_ATTRIBUTES);
  });

  // kustomize works offline: kubectl's built-in one, else the binary .ci/run builds from the Go module proxy. Without
  // either the test fails saying how to get one (it never skips).
  test('kustomize (kubectl kustomize, or kustomize build) builds it, wiring the generated names', () => {
    const [cmd, args] = kustomizeCommand();
    const res = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8' });
    expect([res.status, res.stderr]).toEqual([0, '']);
    const built = parseAllDocuments(res.stdout).map((d) => obj(d.toJS()));
    const cms = built.filter((d) => d.kind === 'ConfigMap').map((d) => String(obj(d.metadata).name));
    expect(cms).toEqual(expect.arrayContaining([expect.stringMatching(/^approval-guard-env-[a-z0-9]+$/)]));
    for (const d of built) {
      if (d.kind !== 'Namespace') expect(obj(d.metadata).namespace).toBe(kustomization.namespace);
    }
    const api = built.find((d) => d.kind === 'Deployment' && obj(d.metadata).name === 'approval-guard-api')!;
    const envFrom = arr(container(api).envFrom).map(obj);
    expect(cms).toContain(obj(envFrom[0]!.configMapRef).name);
  });
});
