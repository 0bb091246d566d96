/**
 * The system the waiters benchmark holds its waiters against: a Temporal dev server (with its metrics, to count the
 * reads each waiter and decision costs), and the service in one of three shapes:
 * - `stack`: worker and API in one process (`npm start` against the server: the in-process change feed);
 * - `redis`: worker and API apart, the change feed over a redis-server of the run's own;
 * - `history`: worker and API apart, no feed (the fall-back: bounded history long-polls and sweeps).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, startDevServer } from '../temporal/dev-server.js';
import { GUARD_SEARCH_ATTRIBUTES } from '../temporal/search-attributes.js';
import { BENCH_POLICY } from './policy.js';
import { spawnChild, type Child } from './procs.js';
import { ROOT } from './service.js';

export type Mode = 'stack' | 'redis' | 'history';
export const MODES: readonly Mode[] = ['stack', 'redis', 'history'];

export interface System {
  mode: Mode;
  url: string;
  temporalAddress: string;
  taskQueue: string;
  serverMetricsUrl: string;
  /** The process that serves the API (and, for `stack`, the worker too). */
  apiPid: number;
  pids: Record<string, number>;
  /** The last lines the service's processes printed (warnings are worth a look after a run). */
  output(): string;
  close(): Promise<void>;
}

const START_TIMEOUT_MS = 120_000;

export async function startSystem(
  mode: Mode,
  env: Record<string, string>,
  log: (msg: string) => void,
  /** Write V8 CPU profiles of the service's processes here. */
  profileDir?: string,
): Promise<System> {
  const dir = await mkdtemp(path.join(tmpdir(), 'guard-bench-waiters-'));
  const cleanups: Array<() => Promise<unknown>> = [() => rm(dir, { recursive: true, force: true })];
  const close = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    const metricsPort = await freePort();
    log('starting a Temporal dev server (headless, temporary SQLite file)');
    const server = await startDevServer({
      dbFile: path.join(dir, 'temporal.sqlite'),
      port: await freePort(),
      namespace: 'default',
      searchAttributes: GUARD_SEARCH_ATTRIBUTES,
      startTimeoutMs: START_TIMEOUT_MS,
      metricsPort,
    });
    cleanups.push(() => server.stop());
    const policyPath = path.join(dir, 'policy.yaml');
    await writeFile(policyPath, BENCH_POLICY);
    const taskQueue = `bench-waiters-${randomUUID()}`;
    const redisUrl = mode === 'redis' ? await startRedis(dir, cleanups) : null;
    const childEnv = serviceEnv({
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_TASK_QUEUE: taskQueue,
      POLICY_PATH: policyPath,
      RETENTION_ARCHIVE_DIR: path.join(dir, 'archive'),
      AUDIT_FILE: path.join(dir, 'audit.ndjson'),
      ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
      ...env,
    });
    const base = {
      mode,
      temporalAddress: server.address,
      taskQueue,
      serverMetricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
      close,
    };
    if (mode === 'stack') {
      log('starting worker + API in one process (service/start.ts against the server)');
      const stack = spawnService('stack', 'service/start.ts', childEnv, cleanups, profileDir);
      const line = await stack.waitForLine(/\[guard\] API\s+http:\/\/\S+/, START_TIMEOUT_MS);
      const url = /(http:\/\/\S+)/.exec(line)![1]!;
      return {
        ...base,
        url,
        apiPid: stack.pid,
        pids: { stack: stack.pid, temporal: server.pid },
        output: () => stack.output(),
      };
    }
    log(`starting the worker and the API as two processes${redisUrl ? ', change feed over Redis' : ', no feed'}`);
    const worker = spawnService('worker', 'service/worker.ts', childEnv, cleanups, profileDir);
    const api = spawnService('api', 'service/api.ts', childEnv, cleanups, profileDir);
    const [, listening] = await Promise.all([
      worker.waitForLine(/polling task queue/, START_TIMEOUT_MS),
      api.waitForLine(/listening on http:\/\/\S+/, START_TIMEOUT_MS),
    ]);
    const url = /listening on (http:\/\/[^\s,]+)/.exec(listening)![1]!;
    return {
      ...base,
      url,
      apiPid: api.pid,
      pids: { api: api.pid, worker: worker.pid, temporal: server.pid },
      output: () => `${api.output()}\n${worker.output()}`,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

function spawnService(
  name: string,
  entry: string,
  env: NodeJS.ProcessEnv,
  cleanups: Array<() => Promise<unknown>>,
  profileDir: string | undefined,
) {
  const profile = profileDir ? ['--cpu-prof', '--cpu-prof-dir', path.join(profileDir, name)] : [];
  const child: Child = spawnChild(name, process.execPath, [...profile, '--import', 'tsx', entry], env, ROOT);
  cleanups.push(() => child.stop());
  return child;
}

/** The children get only what we give them: a developer's TEMPORAL_* or SLACK_* must not point them elsewhere. */
function serviceEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const leaky =
    /^(TEMPORAL_|SLACK_|REDIS_URL$|POLICY_PATH$|TOKEN_SECRET$|ADMIN_TOKEN$|AGENT_API_KEYS$|AUDIT_FILE$|PORT$|NODE_OPTIONS$)/;
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !leaky.test(k)));
  return {
    ...base,
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: '0',
    TOKEN_SECRET: `bench-token-${randomUUID()}`,
    // One client address sends everything: the per-IP limiter would measure itself.
    RATE_LIMIT_CAPACITY: '100000000',
    RATE_LIMIT_REFILL_PER_SEC: '100000000',
    ...vars,
  };
}

async function startRedis(dir: string, cleanups: Array<() => Promise<unknown>>): Promise<string> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  cleanups.push(async () => {
    child.kill('SIGTERM');
    await exited;
  });
  const url = `redis://127.0.0.1:${port}`;
  const { Redis } = await import('ioredis');
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(100)) {
    if (child.exitCode !== null) break;
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') {
        probe.disconnect();
        return url;
      }
    } catch {
      probe.disconnect();
    }
  }
  throw new Error('redis-server did not start (Debian package redis-server)');
}
