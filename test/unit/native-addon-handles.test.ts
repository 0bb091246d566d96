/**
 * Why the global setups call openNativeAddonChannels() (test/helpers/native-addon.ts): the handles the Temporal
 * native addon keeps open are two per process, opened by its first asynchronous call and never again, and they do
 * not keep the process alive. Run in a child process, so this suite's own process is not the one measured.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const ROOT = path.resolve(import.meta.dirname, '../..');

test('the native addon opens two threadsafe functions once per process, and they do not hold it open', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'test/fixtures/native-addon-channels.ts')],
    { cwd: ROOT, timeout: 30_000 },
  );
  // Ended on its own (execFile resolves on exit code 0; a held process would have hit the timeout instead).
  expect(JSON.parse(stdout.trim())).toEqual({ counts: [2, 2, 2] });
});
