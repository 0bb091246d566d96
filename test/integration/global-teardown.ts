import { rmSync } from 'node:fs';
import type { DevServerHandle } from './global-setup.js';

// Same key as global-setup.ts; a value import of it would be resolved natively by Node, which cannot load `.ts`.
const DEV_SERVER_HANDLE = Symbol.for('approval-service.integration.dev-server');

type RunBundleModule = typeof import('../helpers/run-bundle.js');

export default async function globalTeardown(): Promise<void> {
  // As in global-setup.ts: tsx's ES module build loads our `.ts` sources.
  const { tsImport } = await import('tsx/esm/api');
  const { removeRunBundle } = (await tsImport('../helpers/run-bundle.ts', import.meta.url)) as RunBundleModule;
  removeRunBundle();
  const store = globalThis as Record<symbol, unknown>;
  const handle = store[DEV_SERVER_HANDLE] as DevServerHandle | undefined;
  if (!handle) return;
  delete store[DEV_SERVER_HANDLE];
  await handle.server.stop();
  delete process.env.TEMPORAL_TEST_ADDRESS;
  delete process.env.TEMPORAL_TEST_DB;
  rmSync(handle.tmpDir, { recursive: true, force: true });
}
