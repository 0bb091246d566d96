// scratch: A/B of dev server settings with the floor loop (deleted after use)
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { temporalCliPath } from '../temporal/binaries.js';
import { freePort } from '../temporal/dev-server.js';
import { Floor } from './floor.js';
import { spawnChild } from './procs.js';
import { ROOT } from './service.js';

const variants: Record<string, string[]> = {
  base: [],
  wal: ['--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal'],
  part1: ['--dynamic-config-value', 'matching.numTaskqueueReadPartitions=1', '--dynamic-config-value', 'matching.numTaskqueueWritePartitions=1'],
};
const pick = (process.env.VARIANTS ?? 'base,wal,part1').split(',');
const n = Number(process.env.N ?? 200), c = Number(process.env.C ?? 16), rounds = Number(process.env.ROUNDS ?? 3);
const servers: Array<{ name: string; floor: Floor; stop: () => void }> = [];
for (const name of pick) {
  const dir = mkdtempSync(path.join(tmpdir(), 'ab-'));
  const port = await freePort();
  const args = ['server', 'start-dev', '--db-filename', path.join(dir, 't.db'), '--ip', '127.0.0.1', '--port', String(port), '--headless', '--log-level', 'error', ...variants[name]!];
  const srv = spawn(temporalCliPath()!, args, { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) { try { const cn = await Connection.connect({ address: `127.0.0.1:${port}`, connectTimeout: 1000 }); await cn.workflowService.describeNamespace({ namespace: 'default' }); await cn.close(); break; } catch { await sleep(300); } }
  const tq = `ab-${name}`;
  const w = spawnChild('floor', process.execPath, ['--import', 'tsx', 'bench/floor-worker.ts'], { ...process.env, FLOOR_TEMPORAL_ADDRESS: `127.0.0.1:${port}`, FLOOR_TASK_QUEUE: tq }, ROOT);
  await w.waitForLine(/polling/, 120000);
  servers.push({ name, floor: await Floor.connect(`127.0.0.1:${port}`, tq), stop: () => { void w.stop(); srv.kill(); } });
}
for (const s of servers) await s.floor.loops(20, 4, 60000); // warm-up
for (let r = 0; r < rounds; r++) {
  for (const s of servers) {
    const st = await s.floor.starts(n, c, 120000);
    const up = await s.floor.updates(st.ids, c, 120000);
    const lp = await s.floor.loops(n, c, 120000);
    console.log(`round ${r} ${s.name.padEnd(6)} start p50 ${st.latency?.p50} p99 ${st.latency?.p99} ${st.perSec}/s | update p50 ${up.latency?.p50} p99 ${up.latency?.p99} | loop p50 ${lp.latency?.p50} p99 ${lp.latency?.p99} ${lp.perSec}/s | load ${(await import('node:os')).loadavg()[0]!.toFixed(1)}`);
  }
}
for (const s of servers) { await s.floor.close(); s.stop(); }
process.exit(0);
