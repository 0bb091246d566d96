/**
 * Runs `temporal server start-dev` as a child process (for `npm start` and the integration tests). Preparing a
 * server (search attributes, retention) lives in namespace.ts, which processes given TEMPORAL_ADDRESS use alone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { temporalCliPath } from './binaries.js';
import { diffSearchAttributes, listCustomSearchAttributes, type SearchAttributeSpec } from './namespace.js';

export interface DevServerOptions {
  /** SQLite file: state survives restarts. Its directory is created. */
  dbFile: string;
  port: number;
  /** undefined => headless (no Web UI). */
  uiPort?: number | undefined;
  namespace: string;
  searchAttributes: SearchAttributeSpec;
  logLevel?: string;
  /** Kill a leftover dev server from an earlier, killed run, but only one whose --db-filename is exactly `dbFile`. */
  killStale?: boolean;
  /** Gets every line the server prints; without it only the last lines are kept, for error messages. */
  onOutput?: (line: string) => void;
  startTimeoutMs?: number;
  /** Serve the server's own Prometheus metrics on this port (the load harness reads them). */
  metricsPort?: number;
  /** Restart the server whenever it exits without stop() being called: same port, same database file. */
  supervise?: Supervision;
  /** More `--dynamic-config-value KEY=VALUE` settings, after the defaults below (tests tune the server's pace). */
  dynamicConfig?: string[];
}

export interface Supervision {
  log: (msg: string) => void;
  /** The server exited unexpectedly (a restart follows). */
  onDown?: (reason: string) => void;
  /** A restarted server is ready again. */
  onUp?: () => void;
}

export interface DevServer {
  /** host:port of the gRPC frontend. */
  address: string;
  uiUrl?: string;
  /** The running server's process (a supervised server gets a new one at each restart). */
  readonly pid: number;
  /** SIGTERM, then SIGKILL after a grace period; a supervised server is not restarted after. Safe to call again. */
  stop(): Promise<void>;
}

// An explicit IPv4 address: "localhost" may resolve to ::1 on some hosts while clients dial 127.0.0.1.
const HOST = '127.0.0.1';
const DEFAULT_CLI_PORT = 7233;
const STOP_GRACE_MS = 10_000;
/** Waits before each restart attempt in a row; the last repeats. */
const RESTART_BACKOFF_MS = [100, 500, 1000, 2000, 5000];
/** A server that ran this long before dying starts the backoff over; one that dies sooner continues it. */
const STABLE_MS = 30_000;

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const cli = temporalCliPath();
  if (!cli) throw new Error('Temporal CLI not found: run `npm run setup` or set TEMPORAL_CLI_PATH');
  const dbFile = path.resolve(opts.dbFile);
  await ensureNoConflict(dbFile, opts);
  mkdirSync(path.dirname(dbFile), { recursive: true });
  const launch = () => launchServer(cli, dbFile, opts);
  const first = await launch();
  return opts.supervise ? keepRunning(first, launch, opts, opts.supervise) : first;
}

interface Launched extends DevServer {
  exited: Promise<Exit>;
}

async function launchServer(cli: string, dbFile: string, opts: DevServerOptions): Promise<Launched> {
  const child = spawn(cli, devServerArgs(dbFile, opts), { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = exitOf(child);
  const output = captureOutput(child, opts.onOutput);
  const server = await superviseChild(child, exited, opts);
  try {
    await waitUntilReady(server.address, opts, exited);
  } catch (err) {
    await server.stop();
    throw new Error(`Temporal dev server did not start: ${errorMessage(err)}\n--- server output ---\n${output.tail()}`);
  }
  return { ...server, exited };
}

/**
 * Restarts the server each time it exits unless stop() was called: on the same port and database file, so clients
 * (the worker, the API) reconnect by themselves and find every workflow where it was. Attempts back off while the
 * server keeps failing (RESTART_BACKOFF_MS) and every one is logged.
 */
function keepRunning(
  first: Launched,
  launch: () => Promise<Launched>,
  opts: DevServerOptions,
  sup: Supervision,
): DevServer {
  let current = first;
  let startedAt = Date.now();
  let failures = 0;
  let stopped = false;
  let restarting: Promise<void> = Promise.resolve();

  const restart = async (exit: Exit): Promise<void> => {
    const reason = `Temporal dev server (pid ${current.pid}) exited: ${describeExit(exit)}`;
    if (Date.now() - startedAt >= STABLE_MS) failures = 0;
    sup.onDown?.(reason);
    while (!stopped) {
      const delay = RESTART_BACKOFF_MS[Math.min(failures, RESTART_BACKOFF_MS.length - 1)]!;
      failures += 1;
      sup.log(`${reason}; restarting it on port ${opts.port} with ${opts.dbFile} in ${delay} ms (attempt ${failures})`);
      await sleep(delay);
      if (stopped) return;
      try {
        const next = await launch();
        if (stopped) {
          await next.stop();
          return;
        }
        current = next;
        startedAt = Date.now();
        follow(next);
        sup.log(`Temporal dev server restarted (pid ${next.pid}) on ${next.address}`);
        sup.onUp?.();
        return;
      } catch (err) {
        sup.log(`Temporal dev server restart failed: ${errorMessage(err).split('\n')[0]}`);
      }
    }
  };
  const follow = (server: Launched) =>
    void server.exited.then((exit) => {
      if (!stopped && server === current) restarting = restart(exit);
    });
  follow(first);

  return {
    address: first.address,
    ...(first.uiUrl ? { uiUrl: first.uiUrl } : {}),
    get pid() {
      return current.pid;
    },
    async stop() {
      stopped = true;
      await restarting;
      await current.stop();
    },
  };
}

function describeExit(exit: Exit): string {
  if (exit.error) return exit.error.message;
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}

function devServerArgs(dbFile: string, opts: DevServerOptions): string[] {
  const args = ['server', 'start-dev', '--db-filename', dbFile, '--ip', HOST, '--port', String(opts.port)];
  args.push(...(opts.uiPort === undefined ? ['--headless'] : ['--ui-port', String(opts.uiPort)]));
  args.push('--namespace', opts.namespace, '--log-level', opts.logLevel ?? 'warn');
  for (const [name, type] of Object.entries(opts.searchAttributes)) args.push('--search-attribute', `${name}=${type}`);
  if (opts.metricsPort !== undefined) args.push('--metrics-port', String(opts.metricsPort));
  // Updates are on by default in recent servers; explicit so an older CLI behaves the same. No search-attribute cache
  // refresh on read: ours are registered by `--search-attribute` before the server serves, and the refresh cost a
  // cluster-metadata and a namespace read (the latter under a server-wide lock) per search-attribute use, 25 of an
  // approval's 42 database operations (docs/performance.md). One task queue partition:
  // with the default four, a task written to a partition no poller of our one or few workers waits on is forwarded or
  // read back from the database, which added seconds to the tail of Updates and new workflows' first tasks
  // (docs/performance.md).
  for (const kv of [
    'frontend.enableUpdateWorkflowExecution=true',
    'frontend.enableUpdateWorkflowExecutionAsyncAccepted=true',
    'system.forceSearchAttributesCacheRefreshOnRead=false',
    'matching.numTaskqueueReadPartitions=1',
    'matching.numTaskqueueWritePartitions=1',
    ...(opts.dynamicConfig ?? []),
  ]) {
    args.push('--dynamic-config-value', kv);
  }
  // Write-ahead log: a commit appends (and syncs) the log instead of rewriting and syncing the database and its
  // rollback journal: several times faster on a real disk, and as durable (the synchronous pragma keeps its default).
  args.push('--sqlite-pragma', 'journal_mode=wal');
  return args;
}

type Exit = { code: number | null; signal: NodeJS.Signals | null; error?: Error };

function exitOf(child: ChildProcess): Promise<Exit> {
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    // A spawn failure (e.g. ENOENT) emits 'error' without 'exit'.
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
  });
}

function captureOutput(child: ChildProcess, onOutput?: (line: string) => void): { tail(): string } {
  const lines: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    // The server must not keep the parent's event loop alive by itself; the parent decides how long it runs.
    (stream as unknown as net.Socket).unref();
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      if (lines.length > 40) lines.shift();
      onOutput?.(line);
    });
  }
  return { tail: () => lines.join('\n') };
}

/**
 * Ties the server's life to ours. A kill of our whole process group takes it down already (it is not detached).
 * If we die alone (kill -9 of just this pid), nothing in Node can react, so a small watchdog process notices: its
 * stdin pipe from us reaches EOF when the kernel closes our fds, and it then terminates the server.
 */
async function superviseChild(child: ChildProcess, exited: Promise<Exit>, opts: DevServerOptions): Promise<DevServer> {
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn the Temporal CLI: ${errorMessage((await exited).error)}`);
  child.unref();
  const watchdog = startWatchdog(pid);
  const onExit = (): void => void child.kill('SIGTERM');
  process.on('exit', onExit);
  // However it ends (stop(), a crash), nothing of it is left to restart's next server.
  void exited.then(() => {
    watchdog.kill();
    process.off('exit', onExit);
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= terminate(child, exited));
  const uiUrl = opts.uiPort === undefined ? undefined : `http://${HOST}:${opts.uiPort}`;
  return { address: `${HOST}:${opts.port}`, pid, stop, ...(uiUrl ? { uiUrl } : {}) };
}

const WATCHDOG_SOURCE = `
const [serverPid, parentPid] = process.argv.slice(1).map(Number);
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
let killing = false;
const killServer = () => {
  if (killing) return;
  killing = true;
  try { process.kill(serverPid, 'SIGTERM'); } catch { process.exit(0); }
  const started = Date.now();
  setInterval(() => {
    if (!alive(serverPid)) process.exit(0);
    if (Date.now() - started < ${STOP_GRACE_MS}) return;
    try { process.kill(serverPid, 'SIGKILL'); } catch {}
    process.exit(0);
  }, 100);
};
process.stdin.on('end', killServer);
process.stdin.on('error', killServer);
process.stdin.resume();
setInterval(() => {
  if (!alive(serverPid)) process.exit(0);
  if (!alive(parentPid)) killServer();
}, 500);
`;

function startWatchdog(serverPid: number): ChildProcess {
  // Empty env: NODE_OPTIONS from tsx or Jest would load loaders this plain script does not need.
  const watchdog = spawn(process.execPath, ['-e', WATCHDOG_SOURCE, String(serverPid), String(process.pid)], {
    stdio: ['pipe', 'ignore', 'ignore'],
    env: {},
  });
  watchdog.on('error', () => undefined);
  watchdog.unref();
  (watchdog.stdin as unknown as net.Socket | null)?.unref();
  return watchdog;
}

async function terminate(child: ChildProcess, exited: Promise<Exit>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  // Keeps the loop alive until the exit is seen, or a script awaiting stop() could end before the server does.
  child.ref();
  child.kill('SIGTERM');
  const grace = new AbortController();
  const timedOut = sleep(STOP_GRACE_MS, true, { signal: grace.signal }).catch(() => false);
  const escalate = await Promise.race([exited.then(() => false), timedOut]);
  grace.abort();
  if (escalate) child.kill('SIGKILL');
  await exited;
}

async function waitUntilReady(address: string, opts: DevServerOptions, exited: Promise<Exit>): Promise<void> {
  const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
  let exit: Exit | undefined;
  void exited.then((e) => (exit = e));
  let lastError: unknown = 'timed out';
  while (Date.now() < deadline) {
    if (exit) throw new Error(`the process exited (code ${exit.code}, signal ${exit.signal})`);
    try {
      if (await canConnect(opts.port)) return await checkServing(address, opts);
      lastError = `nothing listens on ${address} yet`;
    } catch (err) {
      lastError = err;
    }
    await sleep(200);
  }
  throw new Error(`not ready after ${opts.startTimeoutMs ?? 30_000} ms: ${errorMessage(lastError)}`);
}

/** Ready means what callers rely on: the namespace answers and every search attribute is visible. */
async function checkServing(address: string, opts: DevServerOptions): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: 2000 });
  try {
    await connection.workflowService.describeNamespace({ namespace: opts.namespace });
    const missing = diffSearchAttributes(
      await listCustomSearchAttributes(connection, opts.namespace),
      opts.searchAttributes,
    );
    if (missing.length) throw new Error(`search attributes not registered yet: ${missing.join(', ')}`);
  } finally {
    await connection.close();
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(1000, () => done(false));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Port conflicts and stale servers

interface DevServerProcess {
  pid: number;
  port: number;
  dbFile: string | undefined;
}

async function ensureNoConflict(dbFile: string, opts: DevServerOptions): Promise<void> {
  if (opts.killStale) await killStaleServers(dbFile);
  const related = findDevServerProcesses().filter((p) => p.dbFile === dbFile || p.port === opts.port);
  for (const [port, what] of [
    [opts.port, 'gRPC'],
    [opts.uiPort, 'UI'],
  ] as const) {
    if (port !== undefined && (await isPortInUse(port))) throw new Error(portInUseMessage(port, what, dbFile, related));
  }
  const sameDb = related.find((p) => p.dbFile === dbFile);
  if (sameDb) {
    throw new Error(
      `Temporal dev server pid ${sameDb.pid} (port ${sameDb.port}) already uses ${dbFile}; ` +
        `stop it (kill ${sameDb.pid}) or pass killStale: true`,
    );
  }
}

function portInUseMessage(port: number, what: string, dbFile: string, related: DevServerProcess[]): string {
  const base = `Port ${port} (Temporal dev server ${what}) is already in use on ${HOST}.`;
  const holder = related.find((p) => p.port === port) ?? related.find((p) => p.dbFile === dbFile);
  if (!holder) return `${base} Stop whatever listens there or choose another port.`;
  const sameDb =
    holder.dbFile === dbFile ? ' with the same db file, probably left over from an earlier killed run' : '';
  return (
    `${base} A Temporal dev server is running there (pid ${holder.pid}, --db-filename ${holder.dbFile ?? '(none)'})` +
    `${sameDb}. Stop it (kill ${holder.pid})${sameDb ? ' or pass killStale: true' : ''}.`
  );
}

async function killStaleServers(dbFile: string): Promise<void> {
  for (const stale of findDevServerProcesses().filter((p) => p.dbFile === dbFile)) {
    signal(stale.pid, 'SIGTERM');
    const deadline = Date.now() + STOP_GRACE_MS;
    while (isAlive(stale.pid) && Date.now() < deadline) await sleep(100);
    if (isAlive(stale.pid)) signal(stale.pid, 'SIGKILL');
    while (isAlive(stale.pid)) await sleep(50);
  }
}

/** Linux only (reads /proc); elsewhere conflicts are still reported, just without naming the holder. */
function findDevServerProcesses(): DevServerProcess[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid);
  } catch {
    return [];
  }
  return entries.flatMap((pid) => readDevServerProcess(Number(pid)) ?? []);
}

function readDevServerProcess(pid: number): DevServerProcess | undefined {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
  const sub = argv.indexOf('start-dev');
  if (sub < 1 || argv[sub - 1] !== 'server') return undefined;
  const db = flagValue(argv, '--db-filename', '-f');
  const port = Number(flagValue(argv, '--port', '-p') ?? DEFAULT_CLI_PORT);
  return { pid, port, dbFile: db === undefined ? undefined : path.resolve(processCwd(pid), db) };
}

function flagValue(argv: string[], long: string, short: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === long || arg === short) return argv[i + 1];
    if (arg.startsWith(`${long}=`)) return arg.slice(long.length + 1);
  }
  return undefined;
}

function processCwd(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return '/';
  }
}

/** Asks the OS for a port nobody holds; another process could take it before the caller binds it, rarely. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen({ host: HOST, port: 0 }, () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

function isPortInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(true));
    probe.listen({ host: HOST, port, exclusive: true }, () => probe.close(() => resolve(false)));
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Search attributes and namespace settings, for any server

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
