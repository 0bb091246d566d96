/**
 * Workflow code bundled ahead of the worker's start (`npm run build:workflows`, WORKFLOW_BUNDLE_DIR): the run's own
 * build (the global setup makes it with the same function) lists what it was built from, a worker refuses it once a
 * source changed, and the worker's real entry point runs requests from it.
 */
import { randomUUID } from 'node:crypto';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { prebuiltBundle, StaleBundleError, type BundleManifest } from '../../worker/workflow-bundles.js';
import { WORKFLOW_BUNDLE_DIR_ENV } from '../helpers/run-bundle.js';
import { approvedBy, perTest, policyYaml, ROUTING } from './fixtures.js';
import { requestBody } from './harness.js';
import { childEnv } from './procs.js';

const runDir = () => process.env[WORKFLOW_BUNDLE_DIR_ENV]!;
const { workspace, workerProc, apiServer } = perTest('workflow-bundles');

async function manifestOf(dir: string): Promise<BundleManifest> {
  return JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as BundleManifest;
}

/** A copy of the run's build whose manifest says `path` had other content. */
async function staleCopy(dir: string, path: string): Promise<string> {
  const copy = join(dir, 'bundles');
  await cp(runDir(), copy, { recursive: true });
  const manifest = await manifestOf(copy);
  const entry = manifest.sources.find((s) => s.path === path)!;
  entry.sha256 = '0'.repeat(64);
  await writeFile(join(copy, 'manifest.json'), JSON.stringify(manifest));
  return copy;
}

test('the build lists every file of ours and of the SDK it bundled, and no test or dev code', async () => {
  const { sources } = await manifestOf(runDir());
  const paths = sources.map((s) => s.path);
  expect(paths).toEqual(
    expect.arrayContaining(['workflows/approval.ts', 'workflows/index.ts', 'domain/request-state.ts']),
  );
  expect(paths.some((p) => p.startsWith('node_modules/@temporalio/workflow/'))).toBe(true);
  // The traced bundle's interceptors are in the manifest too: both bundles come from one build.
  expect(paths.some((p) => p.startsWith('node_modules/@temporalio/interceptors-opentelemetry/'))).toBe(true);
  expect(paths.filter((p) => /^(test|dev|bench|scripts)\//.test(p))).toEqual([]);
  expect(sources.every((s) => /^[0-9a-f]{64}$/.test(s.sha256))).toBe(true);
  expect(prebuiltBundle(runDir(), { traced: false }).bundle).toEqual({ codePath: join(runDir(), 'workflows.js') });
  expect(prebuiltBundle(runDir(), { traced: true }).bundle).toEqual({
    codePath: join(runDir(), 'workflows-traced.js'),
  });
});

test('a source changed since the build, or no build at all, is refused with what to run', async () => {
  const { dir } = await workspace();
  const stale = await staleCopy(dir, 'workflows/approval.ts');
  expect(() => prebuiltBundle(stale, { traced: false })).toThrow(StaleBundleError);
  expect(() => prebuiltBundle(stale, { traced: true })).toThrow(
    /workflows\/approval\.ts changed\); run npm run build:workflows -- .*bundles again/,
  );
  await rm(join(stale, 'manifest.json'));
  expect(() => prebuiltBundle(stale, { traced: false })).toThrow(/no bundle manifest .*run npm run build:workflows/);
});

test('the worker runs requests from the build, and will not start from a stale one', async () => {
  const { dir, policyPath } = await workspace(
    policyYaml({
      routing: ROUTING,
      defaults: { unknownAction: 'deny' },
      actions: { simple: approvedBy(['U_ALICE'], 1) },
    }),
  );
  const shared = {
    TEMPORAL_ADDRESS: process.env.TEMPORAL_TEST_ADDRESS!,
    TEMPORAL_TASK_QUEUE: `bundles-${randomUUID()}`,
    POLICY_PATH: policyPath,
    TOKEN_SECRET: 'bundles-token-secret',
    RETENTION_ARCHIVE_DIR: join(dir, 'archive'),
  };

  const stale = workerProc(
    childEnv({ ...shared, WORKFLOW_BUNDLE_DIR: await staleCopy(dir, 'domain/request-state.ts') }),
  );
  expect(await stale.exited).toEqual({ code: 1, signal: null });
  expect(stale.output()).toMatch(/domain\/request-state\.ts changed/);

  const { api } = await apiServer(shared);
  const worker = workerProc(childEnv({ ...shared, WORKFLOW_BUNDLE_DIR: runDir() }));
  await worker.waitForLine(/polling task queue/, 60_000);
  expect(worker.output()).toContain(`workflow code from ${join(runDir(), 'workflows.js')}`);
  const created = await api.post('/api/guard/request', requestBody('simple'));
  expect(created.status).toBe(200);
  const { requestId, token } = created.body as { requestId: string; token: string };
  expect(await api.click('approve', requestId, 'U_ALICE')).toMatchObject({ status: 200, body: { ok: true } });
  const decided = await api.wait(token, 20);
  expect(decided).toMatchObject({ status: 200, body: { status: 'approved', decidedBy: 'U_ALICE' } });
});
