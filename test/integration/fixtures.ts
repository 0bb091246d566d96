/**
 * What the integration suites share besides the harness: the secrets, the policies they run under (built from typed
 * parts: a misspelt key fails the type check, not a test run), and what a test starts of its own — API servers,
 * worker processes, a Temporal dev server it can stop — undone after it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import type { z } from 'zod';
import { startApiServer, type ApiServer } from '../../service/api-server.js';
import { loadConfig, type Config } from '../../config/env.js';
import type { policySchema } from '../../domain/policy-schema.js';
import { createAuditLog } from '../../observability/audit.js';
import { createMetrics, type Metrics } from '../../observability/metrics.js';
import { freePort, startDevServer, type DevServerOptions } from '../../temporal/dev-server.js';
import { GUARD_SEARCH_ATTRIBUTES } from '../../temporal/search-attributes.js';
import { WORKFLOW_BUNDLE_DIR_ENV } from '../helpers/run-bundle.js';
import { apiClient, startProc, type ApiClient, type Proc } from './procs.js';

/** The service's operational notes, on stderr only with GUARD_TEST_LOGS=1 (tests that provoke outages are loud). */
export const testLog =
  (who: string) =>
  (msg: string): void => {
    if (process.env.GUARD_TEST_LOGS) console.error(`[${who}] ${msg}`);
  };

export const SIGNING_SECRET = 'test-signing-secret';
export const ADMIN_TOKEN = 'test-admin-token';

// --- policies ----------------------------------------------------------------------------------------------------

type PolicyInput = z.input<typeof policySchema>;
type ActionInput = NonNullable<PolicyInput['actions']>[string];
export type Actions = Record<string, ActionInput>;

/** A policy file's text. */
export function policyYaml(policy: PolicyInput): string {
  return stringify(policy);
}

/** An action decided by `minApprovals` of `allowSlackIds`, with its other settings. */
export function approvedBy(
  allowSlackIds: string[],
  minApprovals: number,
  settings: Omit<ActionInput, 'approvers'> = {},
): ActionInput {
  return { approvers: { allowSlackIds, minApprovals }, ...settings };
}

/** Approvers may edit the params named in `properties` (JSON Schema), as far as their schemas allow. */
export function editable(properties: Record<string, Record<string, unknown>>): Omit<ActionInput, 'approvers'> {
  return {
    allowParamOverrides: true,
    overrideKeys: Object.keys(properties),
    overrideSchema: { type: 'object', properties },
  };
}

/** `replicas`: a whole number from 1 to 50. */
export const REPLICAS = { replicas: { type: 'integer', minimum: 1, maximum: 50 } };

/** Requests go to C_APPROVALS and live an hour unless their action says otherwise. */
export const ROUTING = { defaultChannel: 'C_APPROVALS', defaultTimeoutSec: 3600 };

/**
 * The policy most suites run under: ROUTING, unknown actions denied, U_ADMIN as super-approver and a DBA persona
 * whose one member is `dba`, plus the suite's own actions.
 */
export function standardPolicy(actions: Actions, dba = 'U_DBA'): string {
  return policyYaml({
    routing: ROUTING,
    defaults: { unknownAction: 'deny', superApprovers: ['U_ADMIN'] },
    personas: { DBA: [dba] },
    actions,
  });
}

/** The harness's actions, when a suite gives no policy of its own. */
export const TEST_ACTIONS: Actions = {
  simple: approvedBy(['U_ALICE', 'U_BOB', 'U_REQ'], 1),
  quorum2: approvedBy(['U_ALICE', 'U_BOB', 'U_CAROL'], 2),
  personas: approvedBy(['U_ALICE', 'U_BOB'], 1, { personasRequired: ['DBA', 'Security'] }),
  short: approvedBy(['U_ALICE'], 1, { timeoutSec: 2 }),
  self_ok: approvedBy(['U_REQ'], 1, { allowSelfApproval: true }),
};
export const TEST_POLICY = standardPolicy(TEST_ACTIONS);

// --- servers and processes ---------------------------------------------------------------------------------------

/**
 * An API server in this process with its own metrics and an audit log nobody reads. Given another API's config it is
 * a replica on the same task queue: replicas share nothing but Temporal and the secrets.
 */
export function startApi(config: Config, metrics: Metrics = createMetrics()): Promise<ApiServer> {
  const audit = createAuditLog({ stream: new Writable({ write: (_c, _e, cb) => cb() }) });
  return startApiServer({ config, metrics, audit, log: testLog('api') });
}

/** A Temporal dev server of a test's own on a SQLite file: stopped and started again, it keeps address and data. */
export interface OwnDevServer {
  readonly address: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** Plain functions (no `this`): a suite may destructure them. */
export interface PerTest {
  /** Runs `fn` after the current test, pass or fail; cleanups run in reverse order. */
  onCleanup: (fn: () => Promise<unknown> | void) => void;
  /** A fresh temp dir, removed after the test, with `policy` in its policy.yaml when given. */
  workspace: (policy?: string) => Promise<{ dir: string; policyPath: string }>;
  /** A dev server on `dir`/temporal.db, stopped after the test. */
  devServer: (dir: string) => Promise<OwnDevServer>;
  /** The worker's real entry point as a child process a test can SIGKILL; killed after the test if still running. */
  workerProc: (env: NodeJS.ProcessEnv) => Proc;
  /** An API in this process for workers run as processes: their `shared` settings and the API's own `env`. */
  apiServer: (
    shared: Record<string, string>,
    env?: Record<string, string>,
  ) => Promise<{ server: ApiServer; api: ApiClient }>;
}

/**
 * What the tests of a file start for themselves, all of it undone after each test: nothing may outlive its test.
 * Call once, at the file's top level (it registers an afterEach hook); `name` prefixes temp dirs and cleanup errors.
 */
export function perTest(name: string): PerTest {
  let cleanups: Array<() => Promise<unknown> | void> = [];
  const onCleanup = (fn: () => Promise<unknown> | void) => void cleanups.push(fn);

  afterEach(async () => {
    const pending = cleanups.reverse();
    cleanups = [];
    for (const fn of pending) {
      try {
        await fn();
      } catch (err) {
        console.error(`${name} cleanup failed:`, err);
      }
    }
  });

  return {
    onCleanup,
    async workspace(policy) {
      const dir = await mkdtemp(join(tmpdir(), `guard-${name}-`));
      onCleanup(() => rm(dir, { recursive: true, force: true }));
      const policyPath = join(dir, 'policy.yaml');
      if (policy !== undefined) await writeFile(policyPath, policy);
      return { dir, policyPath };
    },
    async devServer(dir) {
      const opts: DevServerOptions = {
        dbFile: join(dir, 'temporal.db'),
        port: await freePort(),
        namespace: 'default',
        searchAttributes: GUARD_SEARCH_ATTRIBUTES,
      };
      let server = await startDevServer(opts);
      onCleanup(() => server.stop());
      return {
        get address() {
          return server.address;
        },
        stop: () => server.stop(),
        async start() {
          server = await startDevServer(opts);
        },
      };
    },
    workerProc(env) {
      // The run's prebuilt workflow code, as the image's workers load theirs (`npm start` still bundles at start).
      const dir = process.env[WORKFLOW_BUNDLE_DIR_ENV];
      const withBundle = dir && env.WORKFLOW_BUNDLE_DIR === undefined ? { ...env, WORKFLOW_BUNDLE_DIR: dir } : env;
      const proc = startProc('worker', process.execPath, ['--import', 'tsx', 'service/worker.ts'], { env: withBundle });
      onCleanup(() => {
        proc.child.kill('SIGKILL');
        return proc.exited;
      });
      return proc;
    },
    async apiServer(shared, env = {}) {
      const server = await startApi(
        loadConfig({
          ...shared,
          NODE_ENV: 'test',
          HOST: '127.0.0.1',
          PORT: '0',
          SLACK_SIGNING_SECRET: SIGNING_SECRET,
          ...env,
        }),
      );
      onCleanup(() => server.close());
      return { server, api: apiClient(server.url, SIGNING_SECRET) };
    },
  };
}
