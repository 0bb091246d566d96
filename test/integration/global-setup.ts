/**
 * Starts one headless dev server for the whole integration run, and bundles the workflow code once for it
 * (test/helpers/run-bundle.ts). Test files run in other module registries (or
 * processes), so they only get env vars; the handle stays on globalThis for global-teardown.ts (same process).
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DevServer } from '../../temporal/dev-server.js';

/** Read back by global-teardown.ts (same process, but the two files share no module instance). */
export const DEV_SERVER_HANDLE = Symbol.for('approval-service.integration.dev-server');

export interface DevServerHandle {
  server: DevServer;
  tmpDir: string;
}

type DevServerModule = typeof import('../../temporal/dev-server.js');
type NamespaceModule = typeof import('../../temporal/namespace.js');
type SearchAttributesModule = typeof import('../../temporal/search-attributes.js');
type RunBundleModule = typeof import('../helpers/run-bundle.js');
type BundlesModule = typeof import('../../worker/workflow-bundles.js');
type NativeAddonModule = typeof import('../helpers/native-addon.js');

/**
 * The server refuses to delete a closed run until its queues have checkpointed past the run's close tasks, which they
 * do every 30 s (history.*ProcessorUpdateAckInterval): each purge a test waits for took 20 to 40 s. Every second here,
 * so a purge lands within a sweep or two; what the tests check of purges is the same either way.
 */
const QUICK_DELETES = [
  'history.transferProcessorUpdateAckInterval="1s"',
  'history.visibilityProcessorUpdateAckInterval="1s"',
];

export default async function globalSetup(): Promise<void> {
  // Jest loads this file outside its module system, so Node resolves its imports natively and cannot load our `.ts`
  // sources: tsx does that here. Jest's transform makes this file CommonJS, and tsx's CommonJS build of this API
  // registers its loader at a path that does not exist: a dynamic import (kept as one) loads the ES module build.
  const { tsImport } = await import('tsx/esm/api');
  const devServer = (await tsImport('../../temporal/dev-server.ts', import.meta.url)) as DevServerModule;
  const namespace = (await tsImport('../../temporal/namespace.ts', import.meta.url)) as NamespaceModule;
  const { GUARD_SEARCH_ATTRIBUTES } = (await tsImport(
    '../../temporal/search-attributes.ts',
    import.meta.url,
  )) as SearchAttributesModule;
  const { bundleForRun } = (await tsImport('../helpers/run-bundle.ts', import.meta.url)) as RunBundleModule;
  const { buildWorkflowBundles } = (await tsImport(
    '../../worker/workflow-bundles.ts',
    import.meta.url,
  )) as BundlesModule;
  const { openNativeAddonChannels } = (await tsImport(
    '../helpers/native-addon.ts',
    import.meta.url,
  )) as NativeAddonModule;
  await openNativeAddonChannels();
  const external = process.env.TEMPORAL_TEST_ADDRESS;
  if (external) {
    // A server someone else runs: only make sure it knows our search attributes.
    await Promise.all([
      bundleForRun(buildWorkflowBundles),
      namespace.registerSearchAttributes(external, 'default', GUARD_SEARCH_ATTRIBUTES),
    ]);
    return;
  }
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'guard-it-'));
  const dbFile = path.join(tmpDir, 'temporal.db');
  const [server] = await Promise.all([
    devServer.startDevServer({
      dbFile,
      port: await devServer.freePort(),
      namespace: 'default',
      searchAttributes: GUARD_SEARCH_ATTRIBUTES,
      dynamicConfig: QUICK_DELETES,
    }),
    bundleForRun(buildWorkflowBundles),
  ]);
  process.env.TEMPORAL_TEST_ADDRESS = server.address;
  process.env.TEMPORAL_TEST_DB = dbFile;
  const handle: DevServerHandle = { server, tmpDir };
  (globalThis as Record<symbol, unknown>)[DEV_SERVER_HANDLE] = handle;
}
