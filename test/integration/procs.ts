/**
 * Child processes for the durability tests: the service's real entry points run as separate processes so a test can
 * kill them with SIGKILL, then inspect what is left (processes of a group, held ports) and start them again.
 */
import { eventually } from '../helpers/eventually.js';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnWatched, type WatchedProcess } from '../../dev/procs.js';
import { blockActionPayload, sendInteraction } from '../helpers/slack.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const HOST = '127.0.0.1';
const OUTPUT_TAIL = 200;

/** A service process a test can kill and restart; see WatchedProcess. */
export type Proc = WatchedProcess;

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
  return spawnWatched(name, command, args, { ...opts, cwd: ROOT, outputTail: OUTPUT_TAIL });
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

/** `eventually` under the name and argument order the process tests use. */
export function pollUntil<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs, intervalMs = 250 }: { timeoutMs: number; intervalMs?: number },
): Promise<T> {
  return eventually(probe, { timeoutMs, intervalMs, what });
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
    /**
     * An approval names the params it saw, as the message's decision block does: `payloadHash` when given (a request
     * no worker has run yet has no readable state), else the current ones.
     */
    async click(actionId: string, requestId: string, userId: string, payloadHash?: string): Promise<HttpAnswer> {
      const current =
        actionId === 'approve' && !payloadHash ? await call('GET', `/api/guard/status?requestId=${requestId}`) : null;
      const hash = payloadHash ?? (current?.body as { payloadHash?: string } | undefined)?.payloadHash;
      const payload = blockActionPayload({
        actionId,
        value: requestId,
        userId,
        channelId: 'C_APPROVALS',
        ...(hash ? { blockId: `decide:${hash}` } : {}),
      });
      const res = await sendInteraction(baseUrl, signingSecret, payload);
      return { status: res.status, body: res.json ?? res.body };
    },
  };
}

export type ApiClient = ReturnType<typeof apiClient>;
