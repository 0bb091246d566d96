/**
 * Measurement only, never in the service: preloaded (`NODE_OPTIONS="--import ./bench/sdk-without-promise-hook.mjs"
 * npm run bench:replay`), it keeps the Temporal SDK from installing the promise hook and the Error.prepareStackTrace
 * override with which its workflow threads record a stack trace for every promise the workflow code creates (for the
 * stack-trace query). The difference from a plain run is what that bookkeeping costs our workflow code
 * (docs/performance.md, "What a workflow task costs in the worker"). Reaches into an SDK internal
 * (lib/workflow/vm-shared.js, SDK 1.24): it may break with another SDK version.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { globalHandlers } = require('@temporalio/worker/lib/workflow/vm-shared.js');

globalHandlers.setPromiseHook = () => undefined;
globalHandlers.overridePrepareStackTrace = () => undefined;
