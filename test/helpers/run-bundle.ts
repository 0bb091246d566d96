/**
 * The workflow code bundled once for the whole Jest run, by the global setups of the projects whose suites run
 * workflows (webpack costs seconds of CPU, which every suite would otherwise pay). Loaded through tsx by those
 * setups, and by the suites (test/helpers/workflow-bundle.ts) through Jest: it imports no code of ours.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The bundle file's path, for the suites (Jest workers inherit the environment the global setups leave). */
export const WORKFLOW_BUNDLE_ENV = 'GUARD_TEST_WORKFLOW_BUNDLE';

/** Bundles the workflows into a temp file named by GUARD_TEST_WORKFLOW_BUNDLE, unless another project's setup did. */
export async function bundleForRun(workflowsPath: string): Promise<void> {
  if (process.env[WORKFLOW_BUNDLE_ENV]) return;
  const { bundleWorkflowCode } = await import('@temporalio/worker');
  const noop = () => {};
  const logger = { trace: noop, debug: noop, info: noop, warn: noop, error: console.error, log: noop };
  const { code } = await bundleWorkflowCode({ workflowsPath, logger });
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'guard-bundle-')), 'workflows.js');
  writeFileSync(file, code);
  process.env[WORKFLOW_BUNDLE_ENV] = file;
}

/** Removes the run's bundle (every suite is done when a global teardown runs). */
export function removeRunBundle(): void {
  const file = process.env[WORKFLOW_BUNDLE_ENV];
  if (!file) return;
  delete process.env[WORKFLOW_BUNDLE_ENV];
  rmSync(path.dirname(file), { recursive: true, force: true });
}
