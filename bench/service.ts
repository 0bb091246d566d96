/**
 * The system under load, started for the run or found where the caller says: an embedded Temporal dev server on a
 * temporary SQLite file, the fake Slack Web API, the worker and the API as child processes (their CPU and memory
 * are the service's, not the load generator's), and the floor's bare worker beside them on the same server.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeSlack, type FakeSlack, type FakeSlackCall } from '../dev/fake-slack.js';
import { freePort, startDevServer, type DevServer } from '../temporal/dev-server.js';
import { registerSearchAttributes } from '../temporal/namespace.js';
import { GUARD_SEARCH_ATTRIBUTES } from '../temporal/search-attributes.js';
import { BENCH_POLICY } from './policy.js';
import { spawnChild, type Child } from './procs.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NAMESPACE = 'default';
const START_TIMEOUT_MS = 120_000;
/** Posted messages remembered for a click that has not asked yet (requests nobody clicks, e.g. timer ones, fall out). */
const POSTED_IDS_MAX = 50_000;

export interface ServiceOptions {
  /** An API already running (it must load BENCH_POLICY); with it, `temporal` is required for the floor. */
  url?: string | undefined;
  /** A Temporal server already running; otherwise an embedded dev server is started. */
  temporal?: string | undefined;
  /** Its process id, to measure its CPU and memory too. */
  temporalPid?: number | undefined;
  /** Its Prometheus metrics URL. */
  temporalMetrics?: string | undefined;
  /** Signing secret of the service at `url`. */
  signingSecret?: string | undefined;
  /** Audit file of the service at `url` (escalation times are read from it). */
  auditFile?: string | undefined;
  /** Extra environment for the API and worker children (tuning experiments). */
  env?: Record<string, string>;
  /** The fake Slack answers each Web API call after this many ms (default 0). */
  slackLatencyMs?: number;
  /** Write V8 CPU profiles of the API and worker children here. */
  profileDir?: string | undefined;
  log: (msg: string) => void;
}

export interface Service {
  url: string;
  temporalAddress: string;
  signingSecret: string;
  /** Processes to measure (absent when someone else runs them). */
  pids: { api?: number; worker?: number; temporal?: number; floorWorker: number; loadgen: number };
  slack: SlackTraffic | null;
  auditFile: string | null;
  /** The worker's Temporal SDK metrics (Prometheus text), for task latencies. */
  sdkMetricsUrl: string | null;
  /** The Temporal server's metrics, for RPCs and database operations per approval. */
  serverMetricsUrl: string | null;
  /** The embedded dev server's SQLite file (its size is part of what an open request costs); null for another server. */
  temporalDbFile: string | null;
  floorTaskQueue: string;
  close(): Promise<void>;
}

/**
 * Counts the fake Slack's traffic without keeping it: the recorded calls are dropped as they come (a 10,000-request
 * run would otherwise hold every message body), while the message store stays so chat.update keeps working.
 */
export class SlackTraffic {
  total = 0;
  lastAt = 0;
  readonly byMethod: Record<string, number> = {};
  /** Requests whose message is in Slack and nobody has waited for yet (oldest first, bounded). */
  private readonly postedIds = new Set<string>();
  private readonly waiting = new Map<string, Array<() => void>>();

  constructor(readonly fake: FakeSlack) {}

  record(call: FakeSlackCall): void {
    const { method } = call;
    this.total += 1;
    this.lastAt = Date.now();
    this.byMethod[method] = (this.byMethod[method] ?? 0) + 1;
    if (this.fake.calls.length > 1000) this.fake.calls.splice(0);
    if (method === 'chat.postMessage' && call.status === 200 && !call.args.thread_ts) this.notePosted(call);
  }

  /**
   * Resolves once the request's message is in Slack: an approver can only click a button Slack shows. After
   * `maxMs` without it (its post failed) it resolves anyway: the click then finds what the request says.
   */
  posted(requestId: string, maxMs = 30_000): Promise<void> {
    if (this.postedIds.delete(requestId)) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, maxMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiting.set(requestId, [...(this.waiting.get(requestId) ?? []), done]);
    });
  }

  private notePosted(call: FakeSlackCall): void {
    // The message's buttons carry the request id as their value.
    const requestId = /"value":"(req_[^"]+)"/.exec(JSON.stringify(call.args.blocks ?? null))?.[1];
    if (!requestId) return;
    const waiters = this.waiting.get(requestId);
    if (waiters) {
      this.waiting.delete(requestId);
      for (const w of waiters) w();
      return;
    }
    this.postedIds.add(requestId);
    if (this.postedIds.size > POSTED_IDS_MAX) this.postedIds.delete(this.postedIds.values().next().value!);
  }

  count(method: string): number {
    return this.byMethod[method] ?? 0;
  }
}

export async function startService(opts: ServiceOptions): Promise<Service> {
  const dir = await mkdtemp(path.join(tmpdir(), 'guard-bench-'));
  const cleanups: Array<() => Promise<void>> = [async () => rm(dir, { recursive: true, force: true })];
  const close = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    const temporal = await resolveTemporal(opts, dir, cleanups);
    const floor = await startFloorWorker(temporal.address, opts);
    cleanups.push(() => floor.child.stop());
    const base = {
      temporalAddress: temporal.address,
      serverMetricsUrl: temporal.metricsUrl ?? null,
      temporalDbFile: temporal.dbFile ?? null,
      floorTaskQueue: floor.taskQueue,
      close,
    };
    if (opts.url) {
      return {
        ...base,
        url: opts.url.replace(/\/+$/, ''),
        signingSecret: opts.signingSecret ?? process.env.SLACK_SIGNING_SECRET ?? '',
        pids: {
          ...(temporal.pid === undefined ? {} : { temporal: temporal.pid }),
          floorWorker: floor.child.pid,
          loadgen: process.pid,
        },
        slack: null,
        auditFile: opts.auditFile ?? null,
        sdkMetricsUrl: null,
      };
    }
    const { api, worker, ...own } = await startOwnService(dir, temporal.address, opts, cleanups);
    return {
      ...base,
      ...own,
      pids: {
        api: api.pid,
        worker: worker.pid,
        ...(temporal.pid === undefined ? {} : { temporal: temporal.pid }),
        floorWorker: floor.child.pid,
        loadgen: process.pid,
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}

async function resolveTemporal(
  opts: ServiceOptions,
  dir: string,
  cleanups: Array<() => Promise<void>>,
): Promise<{ address: string; pid?: number; metricsUrl?: string; dbFile?: string }> {
  if (opts.temporal) {
    await registerSearchAttributes(opts.temporal, NAMESPACE, GUARD_SEARCH_ATTRIBUTES);
    return {
      address: opts.temporal,
      ...(opts.temporalPid ? { pid: opts.temporalPid } : {}),
      ...(opts.temporalMetrics ? { metricsUrl: opts.temporalMetrics } : {}),
    };
  }
  opts.log('starting the embedded Temporal dev server (headless, temporary SQLite file)');
  const metricsPort = await freePort();
  const dbFile = path.join(dir, 'temporal.sqlite');
  const server: DevServer = await startDevServer({
    dbFile,
    port: await freePort(),
    namespace: NAMESPACE,
    searchAttributes: GUARD_SEARCH_ATTRIBUTES,
    startTimeoutMs: START_TIMEOUT_MS,
    metricsPort,
  });
  cleanups.push(() => server.stop());
  return { address: server.address, pid: server.pid, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`, dbFile };
}

function tsxArgs(entry: string, profileDir: string | undefined, name: string): string[] {
  // One directory per process: each of its threads (main, tsx loader, workflow runner) writes its own profile.
  const profile = profileDir ? ['--cpu-prof', '--cpu-prof-dir', path.join(profileDir, name)] : [];
  return [...profile, '--import', 'tsx', entry];
}

/** The children get only what we give them: a developer's TEMPORAL_* or SLACK_* must not point them elsewhere. */
function childEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const leaky =
    /^(TEMPORAL_|SLACK_|POLICY_PATH$|TOKEN_SECRET$|ADMIN_TOKEN$|AGENT_API_KEYS$|AUDIT_FILE$|PORT$|NODE_OPTIONS$)/;
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !leaky.test(k)));
  return { ...base, ...vars };
}

async function startFloorWorker(address: string, opts: ServiceOptions): Promise<{ child: Child; taskQueue: string }> {
  const taskQueue = `bench-floor-${randomUUID()}`;
  const child = spawnChild(
    'floor worker',
    process.execPath,
    tsxArgs('bench/floor-worker.ts', opts.profileDir, 'floor-worker'),
    childEnv({ FLOOR_TEMPORAL_ADDRESS: address, FLOOR_TASK_QUEUE: taskQueue }),
    ROOT,
  );
  await child.waitForLine(/\[floor\] polling/, START_TIMEOUT_MS);
  return { child, taskQueue };
}

async function startOwnService(
  dir: string,
  address: string,
  opts: ServiceOptions,
  cleanups: Array<() => Promise<void>>,
): Promise<{
  url: string;
  signingSecret: string;
  slack: SlackTraffic;
  auditFile: string;
  sdkMetricsUrl: string;
  api: Child;
  worker: Child;
}> {
  let traffic: SlackTraffic | null = null;
  const fake = await startFakeSlack({
    onCall: (call) => traffic?.record(call),
    latencyMs: opts.slackLatencyMs ?? 0,
  });
  traffic = new SlackTraffic(fake);
  cleanups.push(() => fake.close());
  const policyPath = path.join(dir, 'policy.yaml');
  await writeFile(policyPath, BENCH_POLICY);
  const signingSecret = `bench-${randomUUID()}`;
  const auditFile = path.join(dir, 'audit.ndjson');
  const sdkMetricsPort = await freePort();
  const env = childEnv({
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: '0',
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: NAMESPACE,
    TEMPORAL_TASK_QUEUE: `bench-${randomUUID()}`,
    TEMPORAL_METRICS_PORT: String(sdkMetricsPort),
    POLICY_PATH: policyPath,
    SLACK_SIGNING_SECRET: signingSecret,
    SLACK_BOT_TOKEN: 'xoxb-bench-token',
    SLACK_API_URL: fake.url,
    TOKEN_SECRET: `bench-token-${randomUUID()}`,
    ADMIN_TOKEN: `bench-admin-${randomUUID()}`,
    RECEIPT_PRIVATE_KEY: generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    AUDIT_FILE: auditFile,
    RETENTION_ARCHIVE_DIR: path.join(dir, 'archive'),
    // One client address sends everything: the per-IP limiter would measure itself.
    RATE_LIMIT_CAPACITY: '100000000',
    RATE_LIMIT_REFILL_PER_SEC: '100000000',
    ...opts.env,
  });
  opts.log('starting the worker and the API as child processes');
  const worker = spawnChild(
    'worker',
    process.execPath,
    tsxArgs('service/worker.ts', opts.profileDir, 'worker'),
    env,
    ROOT,
  );
  cleanups.push(() => worker.stop());
  const api = spawnChild('api', process.execPath, tsxArgs('service/api.ts', opts.profileDir, 'api'), env, ROOT);
  cleanups.push(() => api.stop());
  const [, listening] = await Promise.all([
    worker.waitForLine(/polling task queue/, START_TIMEOUT_MS),
    api.waitForLine(/listening on http:\/\/\S+/, START_TIMEOUT_MS),
  ]);
  const url = /listening on (http:\/\/[^\s,]+)/.exec(listening)![1]!;
  return {
    url,
    signingSecret,
    slack: traffic,
    auditFile,
    sdkMetricsUrl: `http://127.0.0.1:${sdkMetricsPort}/metrics`,
    api,
    worker,
  };
}
