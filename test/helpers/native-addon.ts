/**
 * The Temporal native addon (core-bridge, built with Neon) opens two threadsafe functions on its first asynchronous
 * call in a process and keeps them for the life of the process, unreferenced, so they never hold it open
 * (test/unit/native-addon-handles.test.ts shows both). Jest's `--detectOpenHandles` skips the same kind of handle
 * from napi-rs addons ('CustomGC') but not Neon's, and would blame whichever suite made that first call. The global
 * setups make it instead, outside any test, so the detector reports only handles a test opened and left open.
 */
import { NativeConnection, Runtime } from '@temporalio/worker';

/** A refused connection: the cheapest asynchronous native call. Its runtime shuts down with it (no other users). */
export async function openNativeAddonChannels(): Promise<void> {
  // Before any Runtime exists, so the suites' own Runtime.install still comes first for them.
  Runtime.install({ telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
  await NativeConnection.connect({ address: '127.0.0.1:1' }).then(
    (connection) => connection.close(),
    () => undefined,
  );
}
