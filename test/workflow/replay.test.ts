/**
 * Determinism: histories of the approval workflow must replay against the current workflow code. A change
 * that alters the commands of requests in flight (without patching) fails here before it fails in production
 * (docs/workflow-versioning.md). One recorded history per scenario of ./scenarios.ts.
 */
import proto from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { eventRecorder, useSuite, withWorker } from './harness.js';
import { mismatches, runScenario, SCENARIOS } from './scenarios.js';

type History = proto.temporal.api.history.v1.IHistory;

const FIXTURES = fileURLToPath(new URL('../fixtures/histories/', import.meta.url));

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleOption;

useSuite((s) => ({ env, bundle } = s));

/**
 * Recorded with `npx tsx test/fixtures/histories/record.ts`, in the format of protobufjs' `History.toJSON()`.
 * (The SDK's `historyFromJSON` would read Temporal's JSON export format, but it fails in this install: npm keeps
 * separate protobufjs@8 copies under @temporalio/common and @temporalio/proto, and protojson checks `instanceof`.)
 */
async function fixture(name: string): Promise<History> {
  const json = JSON.parse(await readFile(`${FIXTURES}${name}.json`, 'utf8'));
  return proto.temporal.api.history.v1.History.fromObject(json);
}

const eventTypes = (history: History) =>
  (history.events ?? []).map((e) => proto.temporal.api.enums.v1.EventType[e.eventType ?? 0]);

/** Replays without sink side effects: the recorder proves sinks (audit, metrics) stay silent during replay. */
async function replay(history: History, workflowBundle = bundle): Promise<void> {
  const recorder = eventRecorder();
  await Worker.runReplayHistory({ workflowBundle, sinks: recorder.sinks }, history);
  expect(recorder.batches).toEqual([]);
}

test('every recorded history belongs to a scenario, and every scenario has one', async () => {
  const files = (await readdir(FIXTURES)).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, ''));
  expect(files.sort()).toEqual(SCENARIOS.map((s) => s.name).sort());
});

describe.each(SCENARIOS.map((s) => [s.name, s] as const))('%s', (_name, scenario) => {
  test('the recorded history replays against the current code', async () => {
    const history = await fixture(scenario.name);
    const types = eventTypes(history);
    expect(types[0]).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_STARTED');
    expect(types.at(-1)).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED');
    expect(types).toEqual(expect.arrayContaining(scenario.covers));
    await replay(history);
  });

  test('a live run ends as expected and replays against the current code', async () => {
    const mocks = scenario.mocks?.();
    const { handle, final } = await withWorker({ env, bundle, ...(mocks ? { mocks } : {}) }, (taskQueue) =>
      runScenario(env, scenario, taskQueue),
    );
    expect(mismatches(scenario, final)).toEqual([]);
    await replay(await handle.fetchHistory());
  });
});

test('a determinism break fails the replay (the checks above can fail)', async () => {
  const broken = await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('./nondeterministic-workflow.ts', import.meta.url)),
    logger: new DefaultLogger('ERROR'),
  });
  await expect(replay(await fixture('approve-with-personas'), broken)).rejects.toBeInstanceOf(
    DeterminismViolationError,
  );
}, 60_000);
