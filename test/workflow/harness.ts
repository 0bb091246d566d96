/**
 * Shared pieces of the workflow suites: activity mocks typed as the real activities (so a signature change
 * breaks the tests at compile time), a worker per test on its own task queue, and the workflow's sink events.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker, type InjectedSinks, type WorkflowBundleOption } from '@temporalio/worker';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { randomUUID } from 'node:crypto';
import type { ArchiveActivities } from '../../activities/archive.js';
import type { SlackActivities } from '../../activities/slack.js';
import type { GuardSinks } from '../../workflows/approval.js';
import type { ApprovalInput, GuardEventBatch, RequestView } from '../../workflows/messages.js';
import { makePlan, makeRequest } from '../fixtures/plans.js';
import { eventually as untilDefined } from '../helpers/eventually.js';
import { workflowBundle } from '../helpers/workflow-bundle.js';
import { createTimeSkippingEnv } from './helpers.js';

/**
 * The time-skipping server and the workflow bundle for one suite, with the SDK's own logs (worker INFO lines,
 * activity failures a test provokes) turned down to errors. The Runtime must be installed before anything else.
 */
export async function setUpSuite(): Promise<{ env: TestWorkflowEnvironment; bundle: WorkflowBundleOption }> {
  const logger = new DefaultLogger('ERROR');
  Runtime.install({ logger, telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
  const [env, bundle] = await Promise.all([createTimeSkippingEnv(), workflowBundle()]);
  return { env, bundle };
}

/** Sets the suite up before its tests (handing `env` and `bundle` to `set`) and tears the environment down after. */
export function useSuite(set: (suite: { env: TestWorkflowEnvironment; bundle: WorkflowBundleOption }) => void) {
  let env: TestWorkflowEnvironment | undefined;
  beforeAll(async () => {
    const suite = await setUpSuite();
    env = suite.env;
    set(suite);
  }, 120_000);
  afterAll(async () => {
    await env?.teardown();
  });
}

export type GuardActivities = SlackActivities & ArchiveActivities;
type CallLog = { [K in keyof GuardActivities]: Parameters<GuardActivities[K]>[0][] };

export const SLACK_REF = { channel: 'C_APPROVALS', ts: '1700000000.000100' };

export interface ActivityMocks {
  activities: GuardActivities;
  calls: CallLog;
  /**
   * Holds `archiveRequest` open until `releaseArchive()`, keeping a decided workflow running: its local attempt
   * fails at once (a held local activity would hold the workflow task), the normal activity after it waits.
   */
  holdArchive(): void;
  releaseArchive(): void;
}

export function mockActivities(overrides: Partial<GuardActivities> = {}): ActivityMocks {
  const calls: CallLog = {
    postRequestMessage: [],
    updateRequestMessage: [],
    postParamsThread: [],
    postEscalationNotice: [],
    tellRefusal: [],
    archiveRequest: [],
  };
  let gate: Promise<void> | null = null;
  let release: () => void = () => undefined;
  const activities: GuardActivities = {
    async postRequestMessage(input) {
      calls.postRequestMessage.push(input);
      return { slack: 'posted', ...SLACK_REF };
    },
    async updateRequestMessage(input) {
      calls.updateRequestMessage.push(input);
      return {};
    },
    async postParamsThread(input) {
      calls.postParamsThread.push(input);
    },
    async postEscalationNotice(input) {
      calls.postEscalationNotice.push(input);
    },
    async tellRefusal(input) {
      calls.tellRefusal.push(input);
    },
    async archiveRequest(input) {
      if (gate && Context.current().info.isLocal) throw ApplicationFailure.retryable('held', 'archive_held');
      calls.archiveRequest.push(input);
      await gate;
      return { file: '/archive/requests.jsonl' };
    },
    ...overrides,
  };
  return {
    activities,
    calls,
    holdArchive: () => {
      gate = new Promise((resolve) => (release = resolve));
    },
    releaseArchive: () => {
      release();
      gate = null;
    },
  };
}

/** Collects what the workflow reports through its sink: the facts behind audit lines and metrics. */
export function eventRecorder() {
  const batches: GuardEventBatch[] = [];
  const sinks: InjectedSinks<GuardSinks> = {
    guard: { events: { fn: (_info, batch) => void batches.push(batch), callDuringReplay: false } },
  };
  const types = () => batches.flatMap((b) => b.events.map((e) => e.type));
  return { sinks, batches, types };
}

export interface RunOptions {
  env: TestWorkflowEnvironment;
  bundle: WorkflowBundleOption;
  mocks?: ActivityMocks;
  sinks?: InjectedSinks<GuardSinks>;
  /** 0 makes every workflow task a full replay from history (and turns sticky queues off). */
  maxCachedWorkflows?: number;
  taskQueue?: string;
}

/** Runs `fn` while a fresh worker polls a task queue of its own. */
export async function withWorker<T>(
  {
    env,
    bundle,
    mocks = mockActivities(),
    sinks = eventRecorder().sinks,
    maxCachedWorkflows,
    taskQueue = `tq-${randomUUID()}`,
  }: RunOptions,
  fn: (taskQueue: string) => Promise<T>,
): Promise<T> {
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities: mocks.activities,
    sinks,
    ...(maxCachedWorkflows === undefined ? {} : { maxCachedWorkflows }),
  });
  return worker.runUntil(() => fn(taskQueue));
}

/** Times come from the test server's clock, which earlier tests have skipped ahead. */
export async function approvalInput(
  env: TestWorkflowEnvironment,
  { timeoutSec = 3600, ...overrides }: Partial<ApprovalInput> & { timeoutSec?: number } = {},
): Promise<ApprovalInput> {
  const now = await env.currentTimeMs();
  return {
    requestId: `req_${randomUUID()}`,
    request: makeRequest(),
    plan: makePlan({ timeoutSec }),
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + timeoutSec * 1000).toISOString(),
    lineageId: null,
    agent: null,
    ...overrides,
  };
}

/** The refusal reason of a rejected Update: validators throw an ApplicationFailure typed with the reason. */
export async function refusalOf(promise: Promise<unknown>): Promise<string> {
  const err: unknown = await promise.then(
    () => {
      throw new Error('expected the update to be refused');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
  const cause = (err as WorkflowUpdateFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return (cause as ApplicationFailure).type ?? '';
}

/** Polls a query until `done` holds; for effects that arrive asynchronously (signals, timers after a sleep). */
export function eventually(
  read: () => Promise<RequestView>,
  done: (view: RequestView) => boolean,
  timeoutMs = 15_000,
): Promise<RequestView> {
  let last: RequestView | null = null;
  const probe = async () => {
    last = await read();
    return done(last) ? last : undefined;
  };
  return untilDefined(probe, { timeoutMs, intervalMs: 20, what: 'the workflow state' }).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; last state: ${JSON.stringify(last)}`);
  });
}
