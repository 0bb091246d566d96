import { rmSync } from 'node:fs';
import type { DevServerHandle } from './global-setup.js';

// Same key as global-setup.ts; a value import of it would be resolved natively by Node, which cannot load `.ts`.
const DEV_SERVER_HANDLE = Symbol.for('approval-service.integration.dev-server');

export default async function globalTeardown(): Promise<void> {
  const store = globalThis as Record<symbol, unknown>;
  const handle = store[DEV_SERVER_HANDLE] as DevServerHandle | undefined;
  if (!handle) return;
  delete store[DEV_SERVER_HANDLE];
  await handle.server.stop();
  delete process.env.TEMPORAL_TEST_ADDRESS;
  delete process.env.TEMPORAL_TEST_DB;
  rmSync(handle.tmpDir, { recursive: true, force: true });
}
