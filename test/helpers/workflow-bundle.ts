import { bundleWorkflowCode, type WorkflowBundleOption } from '@temporalio/worker';
import { workflowsPath } from '../../worker/worker.js';
import { WORKFLOW_BUNDLE_ENV } from './run-bundle.js';

const noop = () => {};
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: console.error, log: noop };

let own: Promise<WorkflowBundleOption> | null = null;
/**
 * The workflow code: the run's bundle when a global setup made one (test/helpers/run-bundle.ts), else bundled once
 * per test file (`npm run test:cluster` has no such setup).
 */
export function workflowBundle(): Promise<WorkflowBundleOption> {
  const codePath = process.env[WORKFLOW_BUNDLE_ENV];
  if (codePath) return Promise.resolve({ codePath });
  own ??= bundleWorkflowCode({ workflowsPath, logger: quietLogger });
  return own;
}
