/**
 * `npm run bench:replay -- [--runs N] [name ...]`: the worker CPU our workflow code costs, without a server: each
 * recorded history of test/fixtures/histories/ (all by default) replayed N times (default 200) by one replay worker,
 * after 100 unmeasured replays, printing per replay the process CPU (ms), the wall time and the promises the workflow
 * code created (each pays the SDK's stack-trace promise hook: docs/performance.md, "What a workflow task costs in the
 * worker"). Run it before and after a change to the workflow code, back to back.
 */
import proto from '@temporalio/proto';
import { DefaultLogger, Runtime, Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promiseHooks } from 'node:v8';
import { parseArgs } from 'node:util';
import { workflowBundle } from '../test/helpers/workflow-bundle.js';
import { ROOT } from './service.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/histories');
const WARMUP = 100;

/**
 * The promises the workflow sandbox creates in `replay` (another realm's Promise: the SDK's bookkeeping out here is
 * not counted), in a pass of its own: a second promise hook would cost the measured pass its CPU.
 */
async function countPromises(replay: () => Promise<void>): Promise<number> {
  let n = 0;
  const stop = promiseHooks.onInit((p) => void (p.constructor !== Promise && n++));
  try {
    await replay();
  } finally {
    stop();
  }
  return n;
}

type History = proto.temporal.api.history.v1.IHistory;

async function measure(bundle: WorkflowBundleOption, name: string, runs: number) {
  const json: unknown = JSON.parse(readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8'));
  const history: History = proto.temporal.api.history.v1.History.fromObject(json as object);
  const sinks = { guard: { events: { fn: () => undefined, callDuringReplay: false } } };
  const replay = async (n: number) => {
    async function* histories() {
      for (let i = 0; i < n; i++) yield { workflowId: `${name}-${i}`, history };
    }
    for await (const r of Worker.runReplayHistories({ workflowBundle: bundle, sinks }, histories())) {
      if (r.error) throw r.error;
    }
  };
  await replay(WARMUP);
  const [cpu0, wall0] = [process.cpuUsage(), Date.now()];
  await replay(runs);
  const cpu = process.cpuUsage(cpu0);
  const wall = Date.now() - wall0;
  const promises = await countPromises(() => replay(10));
  return {
    name,
    events: history.events?.length ?? 0,
    cpuMs: +((cpu.user + cpu.system) / 1000 / runs).toFixed(2),
    wallMs: +(wall / runs).toFixed(2),
    promises: Math.round(promises / 10),
  };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { runs: { type: 'string' } }, allowPositionals: true });
  const runs = Number(values.runs ?? 200);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
  const names = positionals.length
    ? positionals
    : readdirSync(FIXTURES)
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.replace(/\.json$/, ''));
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const bundle = await workflowBundle();
  console.log(`history                 events  CPU ms  wall ms  promises   (per replay, ${runs} replays each)`);
  for (const name of names) {
    const r = await measure(bundle, name, runs);
    console.log(
      `${r.name.padEnd(22)}  ${String(r.events).padStart(6)}  ${r.cpuMs.toFixed(2).padStart(6)}  ` +
        `${r.wallMs.toFixed(2).padStart(7)}  ${String(r.promises).padStart(8)}`,
    );
  }
}

main().catch((err: unknown) => {
  console.error((err as Error).stack ?? String(err));
  process.exit(1);
});
