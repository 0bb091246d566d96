/**
 * `npm run cluster` as a person runs it in a terminal: it prints the address of a cluster that answers, and Ctrl-C
 * (SIGINT to the whole foreground process group) stops everything it started and removes its data.
 */
import { Connection } from '@temporalio/client';
import { VERSIONS } from '../../scripts/cluster-lib.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  childEnv,
  killGroup,
  pollUntil,
  portIsFree,
  processesInGroup,
  startProc,
  type Proc,
} from '../integration/procs.js';

let proc: Proc | null = null;

afterAll(async () => {
  if (proc && processesInGroup(proc.pid).length) {
    killGroup(proc.pid);
    await proc.exited;
  }
});

test('prints the address of a cluster that answers; Ctrl-C leaves nothing running and no data behind', async () => {
  proc = startProc('npm run cluster', 'npm', ['run', '-s', 'cluster'], { env: childEnv({}), detached: true });
  const line = await proc.waitForLine(/^TEMPORAL_ADDRESS=127\.0\.0\.1:\d+$/, 2_400_000);
  const address = line.split('=')[1]!;
  const dataLine = await proc.waitForLine(/PostgreSQL \d+ on 127\.0\.0\.1:\d+ \(data in (\S+)\)/, 1_000);
  const dataDir = /data in (\S+)\)/.exec(dataLine)![1]!;
  const pgPort = Number(/127\.0\.0\.1:(\d+)/.exec(dataLine)![1]);

  const connection = await Connection.connect({ address });
  const info = await connection.workflowService.getSystemInfo({});
  await connection.close();
  expect(info.serverVersion).toBeTruthy();
  // The URL the compose file's healthcheck asks (the server image has no temporal CLI).
  const httpLine = await proc.waitForLine(/HTTP API at (http:\S+)/, 1_000);
  const systemInfo = await fetch(/HTTP API at (http:\S+)/.exec(httpLine)![1]!);
  expect([systemInfo.status, ((await systemInfo.json()) as { serverVersion?: string }).serverVersion]).toEqual([
    200,
    VERSIONS.server,
  ]);
  // npm, node, PostgreSQL (with its own helper processes) and the server share the group the terminal signals.
  const running = processesInGroup(proc.pid);
  expect(running.length).toBeGreaterThanOrEqual(4);
  expect(existsSync(dataDir)).toBe(true);

  process.kill(-proc.pid, 'SIGINT');
  // npm itself dies of the SIGINT as a shell's foreground job does; the cluster script stops what it started.
  expect(await proc.exited).toEqual(expect.objectContaining({ signal: 'SIGINT' }));
  const group = proc.pid;
  await pollUntil('the process group to empty', async () => (processesInGroup(group).length ? undefined : true), {
    timeoutMs: 60_000,
  });
  expect(proc.output()).toMatch(/SIGINT: stopping\n.*stopped; nothing left running/);
  expect(existsSync(path.dirname(dataDir))).toBe(false);
  expect(await portIsFree(Number(address.split(':')[1]))).toBe(true);
  expect(await portIsFree(pgPort)).toBe(true);
}, 2_700_000);
