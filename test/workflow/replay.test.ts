/**
 * Determinism: histories of the approval workflow must replay against the current workflow code. A change
 * that alters the commands of requests in flight (without patching) fails here before it fails in production.
 */
import proto from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { eventRecorder, useSuite, withWorker } from './harness.js';
import { approveWithPersonas } from './scenarios.js';

type History = proto.temporal.api.history.v1.IHistory;

const FIXTURE = fileURLToPath(new URL('../fixtures/histories/approve-with-personas.json', import.meta.url));

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;

useSuite((s) => ({ env, bundle } = s));

/**
 * Recorded with `npx tsx test/fixtures/histories/record.ts`, in the format of protobufjs' `History.toJSON()`.
 * (The SDK's `historyFromJSON` would read Temporal's JSON export format, but it fails in this install: npm keeps
 * separate protobufjs@8 copies under @temporalio/common and @temporalio/proto, and protojson checks `instanceof`.)
 */
async function fixture(): Promise<History> {
  return proto.temporal.api.history.v1.History.fromObject(JSON.parse(await readFile(FIXTURE, 'utf8')));
}

const eventTypes = (history: History) =>
  (history.events ?? []).map((e) => proto.temporal.api.enums.v1.EventType[e.eventType ?? 0]);

/** Replays without sink side effects: the recorder proves sinks (audit, metrics) stay silent during replay. */
async function replay(history: History, workflowBundle = bundle): Promise<void> {
  const recorder = eventRecorder();
  await Worker.runReplayHistory({ workflowBundle, sinks: recorder.sinks }, history);
  expect(recorder.batches).toEqual([]);
}

test('a live persona-ack + two-approval run replays against the current code', async () => {
  const { handle, final } = await withWorker({ env, bundle }, (taskQueue) => approveWithPersonas(env, taskQueue));
  expect(final).toMatchObject({ status: 'approved', approvals: [{ userId: 'U_ALICE' }, { userId: 'U_BOB' }] });
  const history = await handle.fetchHistory();
  expect(eventTypes(history)).toEqual(
    expect.arrayContaining([
      'EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED',
      'EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED',
      'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED',
    ]),
  );
  await replay(history);
});

test('the recorded history fixture replays against the current code', async () => {
  const history = await fixture();
  const types = eventTypes(history);
  expect(types[0]).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_STARTED');
  expect(types.at(-1)).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED');
  expect(types.filter((t) => t === 'EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED')).toHaveLength(2);
  expect(types).toContain('EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED');
  await replay(history);
});

test('a determinism break fails the replay (the check above can fail)', async () => {
  const broken = await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('./nondeterministic-workflow.ts', import.meta.url)),
    logger: new DefaultLogger('ERROR'),
  });
  await expect(replay(await fixture(), broken)).rejects.toBeInstanceOf(DeterminismViolationError);
}, 60_000);
