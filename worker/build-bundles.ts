/**
 * `npm run build:workflows -- [DIR]`: bundles the workflow code ahead of the worker's start into DIR (default
 * dist/workflows); a worker with WORKFLOW_BUNDLE_DIR=DIR then loads it instead of bundling at start
 * (worker/workflow-bundles.ts). The Docker image runs it at build time.
 */
import path from 'node:path';
import { buildWorkflowBundles } from './workflow-bundles.js';

const args = process.argv.slice(2);
if (args.length > 1 || args.some((a) => a.startsWith('-'))) {
  console.error('usage: npm run build:workflows -- [DIR]   (default dist/workflows)');
  process.exit(2);
}
const dir = path.resolve(args[0] ?? 'dist/workflows');
const started = Date.now();
const manifest = await buildWorkflowBundles(dir);
console.error(
  `workflow bundles in ${dir} (${manifest.sources.length} source files, ${((Date.now() - started) / 1000).toFixed(1)} s); run the worker with WORKFLOW_BUNDLE_DIR=${dir}`,
);
