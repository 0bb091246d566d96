/**
 * The workflow code bundled once for the whole Jest run, by the global setups of the projects whose suites run
 * workflows (webpack costs seconds of CPU, which every suite would otherwise pay). It is the build of
 * `npm run build:workflows` (worker/workflow-bundles.ts): both bundles and their manifest, so child workers can load
 * it with WORKFLOW_BUNDLE_DIR. Loaded through tsx by those setups, and by the suites
 * (test/helpers/workflow-bundle.ts) through Jest: it imports no code of ours (the setups pass the builder in).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The plain bundle's path, for the suites (Jest workers inherit the environment the global setups leave). */
export const WORKFLOW_BUNDLE_ENV = 'GUARD_TEST_WORKFLOW_BUNDLE';
/** The directory of the whole build (both bundles and the manifest): a child worker's WORKFLOW_BUNDLE_DIR. */
export const WORKFLOW_BUNDLE_DIR_ENV = 'GUARD_TEST_WORKFLOW_BUNDLE_DIR';

/** Builds the workflow bundles into a temp directory, unless another project's setup did. */
export async function bundleForRun(build: (dir: string) => Promise<unknown>): Promise<void> {
  if (process.env[WORKFLOW_BUNDLE_ENV]) return;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'guard-bundle-'));
  await build(dir);
  process.env[WORKFLOW_BUNDLE_ENV] = path.join(dir, 'workflows.js');
  process.env[WORKFLOW_BUNDLE_DIR_ENV] = dir;
}

/** Removes the run's bundles (every suite is done when a global teardown runs). */
export function removeRunBundle(): void {
  const dir = process.env[WORKFLOW_BUNDLE_DIR_ENV];
  if (!dir) return;
  delete process.env[WORKFLOW_BUNDLE_ENV];
  delete process.env[WORKFLOW_BUNDLE_DIR_ENV];
  rmSync(dir, { recursive: true, force: true });
}
