/**
 * clients/cli/start.mjs, which starts the CLI (and the Claude Code hook) from a bundle of its TypeScript: the bundle
 * is used only while every source it was built from is unchanged, and tsx takes over when no bundle can be had. Each
 * case starts a real Node process, as the shim does.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const START = new URL('../../clients/cli/start.mjs', import.meta.url).href;

let dir: string;
let entry: string;
let dist: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cli-start-'));
  entry = join(dir, 'main.ts');
  dist = join(dir, 'dist');
  // ES modules, as in the repository (its package.json says so).
  await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n');
  // TypeScript syntax in both files: the bundle and tsx must each compile it.
  await writeFile(
    entry,
    `import { greeting } from './dep.js';\nconst who: string = process.argv[2] ?? 'nobody';\nconsole.log(greeting(who));\n`,
  );
  await setDep('v1');
  const shim = `import { startEntry } from ${JSON.stringify(START)};\nawait startEntry(${JSON.stringify(entry)}, ${JSON.stringify(dist)});\n`;
  await writeFile(join(dir, 'shim.mjs'), shim);
});

afterEach(() => rm(dir, { recursive: true, force: true }));

const setDep = (version: string) =>
  writeFile(join(dir, 'dep.ts'), `export const greeting = (who: string): string => \`${version} \${who}\`;\n`);

/** Runs the entry as the shim does (a script that hands it to startEntry), with `arg` as its argument; its stdout. */
async function start(arg: string, env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await exec(process.execPath, [join(dir, 'shim.mjs'), arg], {
    env: { ...process.env, NODE_OPTIONS: '', ...env },
  });
  return stdout.trim();
}

async function manifest(): Promise<{ bundle: string; entry: string; inputs: Array<{ path: string; sha256: string }> }> {
  return JSON.parse(await readFile(join(dist, 'manifest.json'), 'utf8'));
}

test('the first start builds a bundle of the entry and its sources; the next ones run it without building', async () => {
  expect(await start('alice')).toBe('v1 alice');
  const built = await manifest();
  expect(built.entry).toBe(entry);
  expect(built.inputs.map((i) => i.path).sort()).toEqual([join(dir, 'dep.ts'), entry]);
  expect((await readdir(dist)).sort()).toEqual([built.bundle, 'manifest.json'].sort());

  // Proof that the bundle itself runs: a bundle altered behind the manifest's back is what the next start runs.
  const bundle = join(dist, built.bundle);
  await writeFile(bundle, (await readFile(bundle, 'utf8')).replace('v1', 'from the bundle'));
  expect(await start('bob')).toBe('from the bundle bob');
  expect(await manifest()).toEqual(built);
});

test('a changed source is never run from the old bundle: the next start rebuilds', async () => {
  expect(await start('alice')).toBe('v1 alice');
  const before = await manifest();
  await setDep('v2');
  expect(await start('alice')).toBe('v2 alice');
  const after = await manifest();
  expect(after.bundle).not.toBe(before.bundle);
  // The same content again is the first bundle again (its name is the digest of its sources).
  await setDep('v1');
  expect(await start('carol')).toBe('v1 carol');
  expect((await manifest()).bundle).toBe(before.bundle);
});

test('a removed source or a manifest for another entry means a rebuild, not a stale run', async () => {
  expect(await start('alice')).toBe('v1 alice');
  const built = await manifest();
  await writeFile(join(dist, 'manifest.json'), JSON.stringify({ ...built, entry: join(dir, 'other.ts') }));
  expect(await start('bob')).toBe('v1 bob');
  expect((await manifest()).entry).toBe(entry);
  await rm(join(dist, built.bundle));
  expect(await start('carol')).toBe('v1 carol');
  expect((await readdir(dist)).includes(built.bundle)).toBe(true);
});

test('no place to write the bundle: tsx runs the sources, and the answer is the same', async () => {
  await writeFile(dist, 'a file where the bundle directory should be');
  expect(await start('alice')).toBe('v1 alice');
  await setDep('v2');
  expect(await start('alice')).toBe('v2 alice');
  expect((await stat(dist)).isFile()).toBe(true);
});

test('GUARD_NO_BUNDLE=1 always takes tsx and writes nothing', async () => {
  expect(await start('alice', { GUARD_NO_BUNDLE: '1' })).toBe('v1 alice');
  await expect(stat(dist)).rejects.toThrow(/ENOENT/);
});

test('starts at once with no bundle yet each run the right code and leave one complete bundle', async () => {
  const outputs = await Promise.all(['a', 'b', 'c', 'd'].map((who) => start(who)));
  expect(outputs).toEqual(['v1 a', 'v1 b', 'v1 c', 'v1 d']);
  const built = await manifest();
  expect((await readdir(dist)).sort()).toEqual([built.bundle, 'manifest.json'].sort());
  expect(await start('e')).toBe('v1 e');
});
