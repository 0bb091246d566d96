/**
 * Child processes for the durability tests: the service's real entry points run as separate processes so a test can
 * kill them with SIGKILL, then inspect what is left (processes of a group, held ports) and start them again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { blockActionPayload, sendInteraction } from '../helpers/slack.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const HOST = '127.0.0.1';
const OUTPUT_TAIL = 200;

export interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Resolves with the exit once the process has gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last lines the process printed (stdout and stderr), for failure messages. */
  output(): string;
  /** Resolves with the first line (past or future) matching `pattern`; rejects on exit or after `timeoutMs`. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string>;
}

/**
 * Variables the parent's environment must not leak into a child: a Temporal address or Slack settings from the
 * developer's shell would point the child elsewhere, and Jest's NODE_OPTIONS would load its hooks into it.
 */
const LEAKY =
  /^(TEMPORAL_|SLACK_|POLICY_PATH$|TOKEN_SECRET$|ADMIN_TOKEN$|AGENT_API_KEYS$|AUDIT_FILE$|PORT$|NODE_OPTIONS$)/;

export function childEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !LEAKY.test(k)));
  return { ...base, NODE_ENV: 'test', LOG_LEVEL: 'warn', ...vars };
}

export function startProc(
  name: string,
  command: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; detached?: boolean },
): Proc {
  const child = spawn(command, args, {
    cwd: ROOT,
    env: opts.env,
    detached: opts.detached ?? false,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not spawn ${name}: ${command} ${args.join(' ')}`);
  const pid = child.pid;
  const lines: string[] = [];
  const watchers = new Set<(line: string) => void>();
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream! }).on('line', (line) => {
      lines.push(line);
      if (lines.length > OUTPUT_TAIL) lines.shift();
      for (const w of watchers) w(line);
    });
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const output = () => lines.join('\n');
  const waitForLine = (pattern: RegExp, timeoutMs: number) =>
    new Promise<string>((resolve, reject) => {
      const seen = lines.find((l) => pattern.test(l));
      if (seen !== undefined) return resolve(seen);
      const done = (fn: () => void) => {
        clearTimeout(timer);
        watchers.delete(watcher);
        fn();
      };
      const watcher = (line: string) => {
        if (pattern.test(line)) done(() => resolve(line));
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`${name}: no line matching ${pattern} in ${timeoutMs} ms\n${output()}`))),
        timeoutMs,
      );
      watchers.add(watcher);
      void exited.then((e) =>
        done(() =>
          reject(new Error(`${name} exited (code ${e.code}, signal ${e.signal}) before ${pattern}\n${output()}`)),
        ),
      );
    });
  return { name, child, pid, exited, output, waitForLine };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Live pids whose process group is `pgid` (Linux: field 5 of /proc/<pid>/stat). Zombies are left out: they hold no
 * port or file, and whether one lingers depends on how the machine's init reaps orphans, not on the service.
 */
export function processesInGroup(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // The command name (field 2) may hold spaces and parentheses: parse after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') pids.push(Number(entry));
  }
  return pids;
}

/** Kills what is left of a group, for cleanup after a failed test. */
export function killGroup(pgid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // Already gone.
  }
}

/** True when nothing holds `port` on loopback: we can bind it ourselves. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ host: HOST, port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

/** Calls `probe` until it returns a value other than undefined, or throws after `timeoutMs` naming `what`. */
export async function pollUntil<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs, intervalMs = 250 }: { timeoutMs: number; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

export interface HttpAnswer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

/** A thin JSON client for a service's HTTP API. */
export function apiClient(baseUrl: string, signingSecret: string) {
  const call = async (method: string, route: string, body?: unknown): Promise<HttpAnswer> => {
    const res = await fetch(`${baseUrl}${route}`, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    const text = await res.text();
    try {
      return { status: res.status, body: JSON.parse(text) as unknown };
    } catch {
      return { status: res.status, body: text };
    }
  };
  return {
    get: (route: string) => call('GET', route),
    post: (route: string, body: unknown) => call('POST', route, body),
    status: (requestId: string) => call('GET', `/api/guard/status?requestId=${encodeURIComponent(requestId)}`),
    wait: (token: string, timeoutSec: number) =>
      call('GET', `/api/guard/wait?token=${encodeURIComponent(token)}&timeoutSec=${timeoutSec}`),
    /** A signed Slack button click, as Slack would deliver it; answers the JSON the clicker's ack carried. */
    async click(actionId: string, requestId: string, userId: string): Promise<HttpAnswer> {
      const payload = blockActionPayload({ actionId, value: requestId, userId, channelId: 'C_APPROVALS' });
      const res = await sendInteraction(baseUrl, signingSecret, payload);
      return { status: res.status, body: res.json ?? res.body };
    },
  };
}

export type ApiClient = ReturnType<typeof apiClient>;
