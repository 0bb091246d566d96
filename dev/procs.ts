/**
 * A child process whose output is watched line by line: the load harness and the integration tests run the
 * service's entry points this way, wait for the line that says a process is ready, and quote its last lines when
 * it is not.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface WatchedProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  /** Resolves with the exit once the process has gone. */
  exited: Promise<ExitStatus>;
  /** The last lines the process printed (stdout and stderr), for failure messages. */
  output(): string;
  /** Resolves with the first line (past or future) matching `pattern`; rejects on exit or after `timeoutMs`. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface WatchOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Its own process group, so that the whole group can be signalled. */
  detached?: boolean;
  /** How many of the last lines `output()` keeps. */
  outputTail?: number;
}

export function spawnWatched(name: string, command: string, args: string[], opts: WatchOptions): WatchedProcess {
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env,
    detached: opts.detached ?? false,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not spawn ${name}: ${command} ${args.join(' ')}`);
  const tail = opts.outputTail ?? 200;
  const lines: string[] = [];
  const watchers = new Set<(line: string) => void>();
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream! }).on('line', (line) => {
      lines.push(line);
      if (lines.length > tail) lines.shift();
      for (const w of watchers) w(line);
    });
  }
  const exited = new Promise<ExitStatus>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
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
  const stop = async (graceMs = 10_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return { name, pid: child.pid, child, exited, output, waitForLine, stop };
}
