import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The Jest run's own temporary directory: the global setup points TMPDIR (which `os.tmpdir()` reads on every call) at a
 * fresh directory, so every temporary file of the run (the suites', the Jest workers' and their child processes',
 * which inherit the environment) lands in it, and the global teardown removes it whole, the run failed or not. A
 * suite that forgets to remove its own files then leaves nothing behind on the developer's machine.
 */
const KEY = 'GUARD_TEST_RUN_TMPDIR';
const BEFORE = 'GUARD_TEST_RUN_TMPDIR_BEFORE';

export function setup() {
  if (process.env[KEY]) return;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'guard-test-run-'));
  process.env[KEY] = dir;
  process.env[BEFORE] = process.env.TMPDIR ?? '';
  process.env.TMPDIR = dir;
}

export function teardown() {
  const dir = process.env[KEY];
  if (!dir) return;
  delete process.env[KEY];
  if (process.env[BEFORE]) process.env.TMPDIR = process.env[BEFORE];
  else delete process.env.TMPDIR;
  delete process.env[BEFORE];
  rmSync(dir, { recursive: true, force: true });
}
