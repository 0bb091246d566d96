// Starts a TypeScript entry point from a bundle of it built by esbuild, rebuilt whenever a source it was built from
// changed, and through tsx when no bundle can be had. Plain JavaScript: it runs before anything can load TypeScript.
//
// Why: the CLI is started once per command, and the Claude Code hook before every tool call. Through tsx, every module
// it loads is resolved and loaded by Node's module hooks on tsx's loader thread: `guard --help` took 0.8 s of CPU on
// two cores, 0.4 s from a bundle (docs/agents.md).
//
// A bundle is used only if every source it was built from still has the content it was built from (SHA-256 of each,
// taken from the very bytes esbuild bundled), so an edited checkout never runs old code: the hook is a security gate.
// The bundle's name carries that digest and the manifest names the bundle, so two processes building at once, or one
// starting while another builds, each load a complete bundle and its own manifest's.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const MANIFEST = 'manifest.json';
/** Old bundles are removed once they are older than this: a process that read the old manifest may still load one. */
const KEEP_OLD_MS = 60_000;

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/**
 * Imports `entry` (a `.ts` file) from a fresh bundle in `distDir`, building one if needed; through tsx if no bundle
 * can be built or written (no esbuild, a read-only checkout). `GUARD_NO_BUNDLE=1` always takes tsx.
 */
export async function startEntry(entry, distDir) {
  const bundle =
    process.env.GUARD_NO_BUNDLE === '1' ? null : (freshBundle(entry, distDir) ?? (await build(entry, distDir)));
  if (bundle) return import(pathToFileURL(bundle).href);
  const { register } = await import('tsx/esm/api');
  register();
  return import(pathToFileURL(entry).href);
}

/** The bundle the manifest names, if it was built from `entry` and every one of its sources is unchanged. */
export function freshBundle(entry, distDir) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(path.join(distDir, MANIFEST), 'utf8'));
  } catch {
    return null;
  }
  if (manifest?.entry !== path.resolve(entry) || !Array.isArray(manifest.inputs)) return null;
  for (const input of manifest.inputs) {
    try {
      if (sha256(readFileSync(input.path)) !== input.sha256) return null;
    } catch {
      return null;
    }
  }
  const bundle = path.join(distDir, manifest.bundle);
  try {
    statSync(bundle);
  } catch {
    return null;
  }
  return bundle;
}

/** Builds and writes a bundle and its manifest; null (and tsx takes over) if esbuild is missing or fails. */
async function build(entry, distDir) {
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    return null;
  }
  const inputs = new Map();
  // Records each source's digest from the bytes esbuild bundles, not from a second read that could see a later edit.
  const hashSources = {
    name: 'hash-sources',
    setup(b) {
      b.onLoad({ filter: /\.[cm]?[jt]s$/ }, async (args) => {
        const bytes = await readFile(args.path);
        inputs.set(args.path, sha256(bytes));
        return { contents: bytes, loader: /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js' };
      });
    },
  };
  let code;
  try {
    const result = await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      // Dependencies load from node_modules as they do through tsx; only our sources are bundled.
      packages: 'external',
      write: false,
      logLevel: 'silent',
      plugins: [hashSources],
    });
    code = result.outputFiles[0].contents;
  } catch {
    return null;
  }
  const digest = sha256(JSON.stringify([...inputs].sort())).slice(0, 16);
  const name = `bundle-${digest}.mjs`;
  try {
    mkdirSync(distDir, { recursive: true });
    writeAtomically(path.join(distDir, name), code);
    const manifest = {
      entry: path.resolve(entry),
      bundle: name,
      inputs: [...inputs].map(([p, h]) => ({ path: p, sha256: h })),
    };
    writeAtomically(path.join(distDir, MANIFEST), JSON.stringify(manifest, null, 1));
  } catch {
    return null;
  }
  removeOldBundles(distDir, name);
  return path.join(distDir, name);
}

function writeAtomically(file, contents) {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, file);
}

function removeOldBundles(distDir, keep) {
  try {
    for (const f of readdirSync(distDir)) {
      if (f === keep || f === MANIFEST) continue;
      const file = path.join(distDir, f);
      if (Date.now() - statSync(file).mtimeMs > KEEP_OLD_MS) rmSync(file, { force: true });
    }
  } catch {
    // Best effort: a leftover bundle costs only disk.
  }
}
