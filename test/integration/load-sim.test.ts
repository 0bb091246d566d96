/**
 * Smoke test of `npm run load-sim` with tiny numbers against the run's dev server: it completes and writes a result
 * with every figure. Speed itself is the benchmark's business, not a test's: no timing is asserted.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WORKFLOW_BUNDLE_DIR_ENV } from '../helpers/run-bundle.js';
import { ROOT } from './procs.js';

const TIMEOUT_MS = 240_000;

function runLoadSim(args: string[]): Promise<{ code: number | null; output: string }> {
  // Jest's NODE_OPTIONS and a developer's Temporal or Slack settings must not reach the harness or its children.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(NODE_OPTIONS|TEMPORAL_|SLACK_)/.test(k)),
  );
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/load-sim.ts', ...args], { cwd: ROOT, env });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), TIMEOUT_MS - 10_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const summary = {
  count: expect.any(Number),
  p50: expect.any(Number),
  p95: expect.any(Number),
  p99: expect.any(Number),
};
const row = { latency: expect.objectContaining(summary), perSec: expect.any(Number) };
/** The service's workers load the run's prebuilt workflow code, as the image's do (the floor's worker bundles its own). */
const prebuilt = ['--env', `WORKFLOW_BUNDLE_DIR=${process.env[WORKFLOW_BUNDLE_DIR_ENV]}`];

test(
  'load-sim runs the scenarios and the floor, and writes every figure',
  async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'guard-load-sim-'));
    const out = path.join(dir, 'result.json');
    try {
      const address = process.env.TEMPORAL_TEST_ADDRESS!;
      const args = [
        '--requests',
        '20',
        '--concurrency',
        '4',
        '--timers',
        '4',
        '--pending',
        '10',
        '--temporal',
        address,
      ];
      const run = await runLoadSim([...args, ...prebuilt, '--out', out, '--label', 'smoke']);
      expect({ code: run.code, output: run.code === 0 ? '' : run.output }).toEqual({ code: 0, output: '' });
      expect(run.output).toContain('create p99 / floor start p99');

      const result = JSON.parse(await readFile(out, 'utf8'));
      expect(result).toMatchObject({
        version: 1,
        label: 'smoke',
        options: { requests: 20, concurrency: 4, pending: 10, timers: 4 },
        create: { atZero: row, atPending: row },
        slackAck: expect.objectContaining(summary),
        notification: {
          longPoll: { notify: expect.objectContaining(summary), clickToNotify: expect.objectContaining(summary) },
          sse: { notify: expect.objectContaining(summary), clickToNotify: expect.objectContaining(summary) },
        },
        approvalLoop: { latency: expect.objectContaining(summary), approvalsPerSec: expect.any(Number) },
        timers: {
          count: 4,
          escalationLateness: expect.objectContaining(summary),
          expiryLateness: expect.objectContaining(summary),
        },
        pending: { count: 10, rssMB: expect.objectContaining({ api: expect.any(Number), worker: expect.any(Number) }) },
        floor: { start: row, signal: row, update: row, loop: row, startAtPending: row },
        cpuMsPerApproval: { service: expect.any(Number), floor: expect.any(Number) },
      });
      expect(Object.keys(result.ratios)).toHaveLength(6);
      expect(result.ratios.slackAckP99ToFloorSignalP99).toEqual(expect.any(Number));
      expect(result.targets).toHaveLength(5);
      for (const phase of ['create', 'approvalLoop', 'floorLoop']) {
        expect(result.resources[phase]).toMatchObject({ api: expect.any(Object), worker: expect.any(Object) });
      }
      // Every request of every phase completed: the figures describe all of them.
      expect(result.create.atZero.latency.count).toBe(20);
      expect(result.approvalLoop.latency.count).toBe(20);
      expect(result.floor.loop.latency.count).toBe(20);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
  TIMEOUT_MS,
);

test(
  'load-sim --find-knee steps both loops at Poisson rates, measures at 80 % of the knee, with requests held open',
  async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'guard-load-sim-'));
    const out = path.join(dir, 'open.json');
    try {
      const knee = [
        '--find-knee',
        '--knee-start',
        '4',
        '--knee-factor',
        '2',
        '--knee-step',
        '1',
        '--knee-max-steps',
        '2',
      ];
      const rest = ['--knee-p99', '60000', '--warmup', '1', '--duration', '2', '--timer-rate', '4'];
      const pending = ['--pending', '5', '--pending-rate', '10'];
      const temporal = ['--temporal', process.env.TEMPORAL_TEST_ADDRESS!];
      const run = await runLoadSim([
        ...knee,
        ...rest,
        ...pending,
        ...temporal,
        ...prebuilt,
        '--out',
        out,
        '--label',
        'open',
      ]);
      expect({ code: run.code, output: run.code === 0 ? '' : run.output }).toEqual({ code: 0, output: '' });
      expect(run.output).toContain('max sustainable: approvals 8/s, floor loops 8/s, ratio 1');
      const result = JSON.parse(await readFile(out, 'utf8'));
      // Two steps each (4/s, 8/s), both held under a generous p99: the knee is the last, 80 % of it is measured.
      expect(result.knee.floor.steps.map((s: { rate: number; held: boolean }) => [s.rate, s.held])).toEqual([
        [4, true],
        [8, true],
      ]);
      expect(result.knee.service.maxRate).toBe(8);
      expect(result.measuredAt).toBe(6.4);
      expect(result.atZero.service).toMatchObject({
        create: expect.objectContaining(summary),
        ack: expect.objectContaining(summary),
        loop: expect.objectContaining(summary),
      });
      expect(result.atZero.service.arrivals.failed).toBe(0);
      // What the host did meanwhile, which the load average does not show: steal time and a fixed CPU task timed.
      expect(result.machine.cpu).toEqual({
        stealPct: expect.any(Number),
        speedCheckMs: { start: expect.any(Number), end: expect.any(Number) },
      });
      expect(result.machine.cpu.speedCheckMs.start).toBeGreaterThan(0);
      expect(run.output).toMatch(/cpu: [\d.]+ % stolen by the host, speed check [\d.]+ → [\d.]+ ms/);
      expect(result.atZero.timers.count).toBeGreaterThan(0);
      expect(result.floor).toMatchObject({
        loop: expect.objectContaining(summary),
        signal: expect.objectContaining(summary),
      });
      expect(result.atZero.perApproval.cpuMs).toEqual(expect.any(Number));
      expect(result.pending).toMatchObject({ count: 5, at: { service: { create: expect.objectContaining(summary) } } });
      expect(result.targets.map((t: { name: string }) => t.name)).toHaveLength(9);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
  TIMEOUT_MS,
);
