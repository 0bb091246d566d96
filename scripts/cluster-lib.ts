/**
 * A real Temporal cluster on this machine, without containers (issue 20): the pinned server built from the Go module
 * proxy into `.tools/`, PostgreSQL (Debian's package) on a throwaway data directory, the schema applied by the
 * server's own SQL tool through deploy/temporal-schema.sh, the server configured exactly as the `temporalio/server`
 * image configures it (its embedded config template, filled from environment variables), and the namespace, search
 * attributes and retention set by deploy/k8s/temporal-setup.sh. docker-compose.yml and deploy/k8s use the same
 * versions (deploy/temporal-versions.json), the same variables and the same two scripts.
 */
import { execFile, spawn } from 'node:child_process';
import {
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { spawnWatched, type WatchedProcess } from '../dev/procs.js';
import { projectRoot, temporalCliPath } from '../temporal/binaries.js';
import { freePort } from '../temporal/dev-server.js';

const ROOT = projectRoot();
const execFileP = promisify(execFile);

export interface TemporalVersions {
  server: string;
  goToolchain: string;
  schemaVersion: string;
  visibilitySchemaVersion: string;
  images: { server: string; adminTools: string; ui: string; postgres: string };
}

export const VERSIONS = JSON.parse(
  readFileSync(path.join(ROOT, 'deploy/temporal-versions.json'), 'utf8'),
) as TemporalVersions;

/** Where the pinned build lives: `server`, `sql` (temporal-sql-tool) and `schema/` (the release's postgresql/v12). */
export const SERVER_DIR = path.join(ROOT, '.tools', 'temporal-server', `v${VERSIONS.server}`);
const MODULE = 'go.temporal.io/server';

export interface ServerBuild {
  server: string;
  sqlTool: string;
  schemaDir: string;
  /** Seconds the build took, or null when the cached build was used. */
  builtSec: number | null;
}

type Log = (msg: string) => void;

function goEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // GOTOOLCHAIN fetches the Go release the server needs from the module proxy when the machine's Go is older.
  return { ...process.env, GOTOOLCHAIN: VERSIONS.goToolchain, ...extra };
}

/**
 * The pinned server and SQL tool, built once: `go install` of both commands at the pinned version into
 * `.tools/temporal-server/v<version>/` (through a `.partial` folder, so an interrupted build is never taken for a
 * finished one). The Go module and build caches are the user's (GOMODCACHE, GOCACHE): a fresh clone on the same
 * machine relinks from them instead of compiling again.
 */
export async function ensureServerBuild(log: Log): Promise<ServerBuild> {
  const server = path.join(SERVER_DIR, 'server');
  const sqlTool = path.join(SERVER_DIR, 'sql');
  const schemaDir = path.join(SERVER_DIR, 'schema');
  let builtSec: number | null = null;
  if (!existsSync(server) || !existsSync(sqlTool)) {
    const partial = `${SERVER_DIR}.partial`;
    rmSync(partial, { recursive: true, force: true });
    mkdirSync(partial, { recursive: true });
    log(
      `building Temporal server ${VERSIONS.server} (${VERSIONS.goToolchain}, Go module proxy) into ` +
        `${path.relative(ROOT, SERVER_DIR)}: 8 to 25 minutes of both cores with empty Go caches, under a minute when they hold it`,
    );
    const started = Date.now();
    await run(
      'go',
      ['install', `${MODULE}/cmd/server@v${VERSIONS.server}`, `${MODULE}/cmd/tools/sql@v${VERSIONS.server}`],
      {
        env: goEnv({ GOBIN: partial }),
        log,
      },
    );
    rmSync(SERVER_DIR, { recursive: true, force: true });
    renameSync(partial, SERVER_DIR);
    builtSec = Math.round((Date.now() - started) / 1000);
    log(`built in ${builtSec} s`);
  }
  if (!existsSync(path.join(schemaDir, 'version.go'))) {
    const { stdout } = await execFileP('go', ['mod', 'download', '-json', `${MODULE}@v${VERSIONS.server}`], {
      env: goEnv(),
      maxBuffer: 1 << 20,
    });
    const moduleDir = (JSON.parse(stdout) as { Dir: string }).Dir;
    cpSync(path.join(moduleDir, 'schema', 'postgresql', 'v12'), schemaDir, { recursive: true });
  }
  return { server, sqlTool, schemaDir, builtSec };
}

/** Runs a command to its end; its output goes to `log` unless `quiet` (then it is quoted only if it fails). */
function run(
  cmd: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; log: Log; cwd?: string; quiet?: boolean },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env, cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        tail.push(line);
        if (tail.length > 40) tail.shift();
        if (!opts.quiet) opts.log(`  ${line}`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args[0]} failed (${code ?? signal}):\n${tail.join('\n')}`)),
    );
  });
}

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL

function postgresBinDir(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base)
    ? readdirSync(base)
        .filter((v) => /^\d+$/.test(v) && existsSync(path.join(base, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions.length) throw new Error("PostgreSQL is not installed: apt-get install postgresql (Debian's package)");
  return path.join(base, versions[0]!, 'bin');
}

/** PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user the package creates. */
async function asPostgresUser(dir: string): Promise<string[]> {
  if (process.getuid?.() !== 0) return [];
  const [uid, gid] = await Promise.all(
    ['-u', '-g'].map(async (f) => Number((await execFileP('id', [f, 'postgres'])).stdout)),
  );
  chownSync(dir, uid!, gid!);
  return ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--'];
}

export interface Postgres {
  port: number;
  version: string;
  process: WatchedProcess;
}

async function startPostgres(dir: string, log: Log): Promise<Postgres> {
  const bin = postgresBinDir();
  const prefix = await asPostgresUser(dir);
  const data = path.join(dir, 'data');
  const [cmd = '', ...pre] = [...prefix, path.join(bin, 'initdb')];
  await execFileP(cmd, [...pre, '-D', data, '-U', 'temporal', '--auth=trust', '-E', 'UTF8', '--no-instructions'], {
    env: { ...process.env, LC_ALL: 'C.UTF-8' },
  });
  const port = await freePort();
  const args = [
    path.join(bin, 'postgres'),
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'listen_addresses=127.0.0.1',
  ];
  const [pcmd = '', ...pargs] = [...prefix, ...args];
  const proc = spawnWatched('postgres', pcmd, [...pargs, '-c', 'max_connections=200'], { cwd: dir, env: process.env });
  await proc.waitForLine(/database system is ready to accept connections/, 60_000);
  const version = path.basename(path.dirname(bin));
  log(`PostgreSQL ${version} on 127.0.0.1:${port} (data in ${data})`);
  return { port, version, process: proc };
}

// ---------------------------------------------------------------------------------------------------------------
// The server

/** The SQL persistence and visibility settings of the server image's config template (config/docker.yaml). */
export function serverDatabaseEnv(pg: { host: string; port: number; user: string; password: string }) {
  return {
    DB: 'postgres12',
    POSTGRES_SEEDS: pg.host,
    DB_PORT: String(pg.port),
    // The template takes the visibility store's port from VISIBILITY_DB_PORT or POSTGRES_PORT, not DB_PORT.
    POSTGRES_PORT: String(pg.port),
    POSTGRES_USER: pg.user,
    POSTGRES_PWD: pg.password,
    DBNAME: 'temporal',
    VISIBILITY_DBNAME: 'temporal_visibility',
  };
}

/** Port variables of the template; every service binds its gRPC and membership port. */
const PORT_VARS = [
  'FRONTEND_GRPC_PORT',
  'FRONTEND_HTTP_PORT',
  'FRONTEND_MEMBERSHIP_PORT',
  'INTERNAL_FRONTEND_HTTP_PORT',
  'MATCHING_GRPC_PORT',
  'MATCHING_MEMBERSHIP_PORT',
  'HISTORY_GRPC_PORT',
  'HISTORY_MEMBERSHIP_PORT',
  'WORKER_GRPC_PORT',
  'WORKER_MEMBERSHIP_PORT',
] as const;

/**
 * Free ports under 32768: the SQL membership table stores a host's RPC port as a SMALLINT, and a port from the
 * kernel's ephemeral range (32768 and up) stops the server at start ("value ... is out of range for type smallint").
 */
async function serverPorts(frontend?: number): Promise<Record<(typeof PORT_VARS)[number], string>> {
  const ports: Record<string, string> = {};
  const taken = new Set<number>(frontend ? [frontend] : []);
  for (const name of PORT_VARS) {
    const port = name === 'FRONTEND_GRPC_PORT' && frontend ? frontend : await freeLowPort(taken);
    taken.add(port);
    ports[name] = String(port);
  }
  return ports as Record<(typeof PORT_VARS)[number], string>;
}

async function freeLowPort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 10_000 + Math.floor(Math.random() * 22_000);
    if (!taken.has(port) && (await canBind(port))) return port;
  }
  throw new Error('no free port under 32768 found');
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ host: '127.0.0.1', port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

/** The compose stack's dynamic config: search attributes usable as soon as temporal-setup.sh registers them. */
const DYNAMIC_CONFIG = path.join(ROOT, 'deploy/temporal-dynamicconfig.yaml');

async function waitForFrontend(address: string, server: WatchedProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) throw new Error(`the Temporal server exited:\n${server.output()}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 2_000 });
      try {
        await connection.workflowService.getSystemInfo({});
        return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  throw new Error(
    `the Temporal frontend at ${address} did not answer in ${timeoutMs} ms: ${String(last)}\n${server.output()}`,
  );
}

export interface ClusterOptions {
  /** The frontend's gRPC port; a free one when absent. */
  port?: number;
  namespace?: string;
  /** Namespace retention (RETENTION_MAX_AGE_SEC of temporal-setup.sh; Temporal's floor is 1 h). */
  retentionSec?: number;
  log?: Log;
}

export interface Cluster {
  address: string;
  /** The frontend's HTTP API (`/api/v1/...`), which the compose file's healthcheck asks. */
  httpAddress: string;
  /** The server's own Prometheus metrics (PROMETHEUS_ENDPOINT), e.g. for `npm run load-sim -- --temporal-metrics`. */
  metricsUrl: string;
  /** The server's process id (`npm run load-sim -- --temporal-pid`). */
  serverPid: number;
  namespace: string;
  postgres: { port: number; version: string };
  build: ServerBuild;
  /** Where PostgreSQL keeps its data; removed by stop(). */
  dir: string;
  pids(): number[];
  /** Stops the server, then PostgreSQL, and removes the data directory. */
  stop(): Promise<void>;
}

/** Builds (once), starts and prepares a cluster; on any failure whatever started is stopped again. */
export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const log = opts.log ?? (() => {});
  const namespace = opts.namespace ?? 'default';
  const build = await ensureServerBuild(log);
  const dir = mkdtempSync(path.join(tmpdir(), 'guard-cluster-'));
  const started: WatchedProcess[] = [];
  const stop = async () => {
    for (const p of started.reverse()) await stopProcess(p);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const pg = await startPostgres(dir, log);
    started.push(pg.process);
    const db = { host: '127.0.0.1', port: pg.port, user: 'temporal', password: 'temporal' };
    await run('sh', [path.join(ROOT, 'deploy/temporal-schema.sh')], {
      env: {
        ...process.env,
        SQL_TOOL: build.sqlTool,
        SQL_HOST: db.host,
        SQL_PORT: String(db.port),
        SQL_USER: db.user,
        SQL_PASSWORD: db.password,
        SCHEMA_DIR: build.schemaDir,
        VISIBILITY_SCHEMA_VERSION: VERSIONS.visibilitySchemaVersion,
      },
      log,
      quiet: true,
    });
    log('schema applied (deploy/temporal-schema.sh)');
    const ports = await serverPorts(opts.port);
    const address = `127.0.0.1:${ports.FRONTEND_GRPC_PORT}`;
    const metricsEndpoint = `127.0.0.1:${await freeLowPort(new Set(Object.values(ports).map(Number)))}`;
    const server = spawnWatched('temporal-server', build.server, ['start'], {
      cwd: dir,
      env: {
        ...process.env,
        ...serverDatabaseEnv(db),
        ...ports,
        BIND_ON_IP: '127.0.0.1',
        TEMPORAL_BROADCAST_ADDRESS: '127.0.0.1',
        DYNAMIC_CONFIG_FILE_PATH: DYNAMIC_CONFIG,
        LOG_LEVEL: 'warn',
        NUM_HISTORY_SHARDS: '4',
        PROMETHEUS_ENDPOINT: metricsEndpoint,
      },
      outputTail: 400,
    });
    started.push(server);
    await waitForFrontend(address, server, 120_000);
    log(`Temporal server ${VERSIONS.server} at ${address}`);
    const cli = temporalCliPath();
    if (!cli) throw new Error('the temporal CLI is missing: run `npm run setup`');
    await run('sh', [path.join(ROOT, 'deploy/k8s/temporal-setup.sh')], {
      env: {
        ...process.env,
        PATH: `${path.dirname(cli)}${path.delimiter}${process.env.PATH ?? ''}`,
        TEMPORAL_ADDRESS: address,
        TEMPORAL_NAMESPACE: namespace,
        RETENTION_MAX_AGE_SEC: String(opts.retentionSec ?? 86_400),
      },
      log,
      quiet: true,
    });
    log(`namespace ${namespace}: search attributes and retention set (deploy/k8s/temporal-setup.sh)`);
    return {
      address,
      httpAddress: `127.0.0.1:${ports.FRONTEND_HTTP_PORT}`,
      metricsUrl: `http://${metricsEndpoint}/metrics`,
      serverPid: server.pid,
      namespace,
      postgres: { port: pg.port, version: pg.version },
      build,
      dir,
      pids: () => started.filter((p) => p.child.exitCode === null && p.child.signalCode === null).map((p) => p.pid),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** SIGINT (PostgreSQL's fast shutdown; the server stops on it too), SIGKILL after 20 s. */
async function stopProcess(p: WatchedProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGINT');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 20_000);
  await p.exited;
  clearTimeout(timer);
}
