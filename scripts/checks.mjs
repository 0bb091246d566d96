#!/usr/bin/env node
// `npm test`'s static checks: the type check, ESLint and Prettier, side by side. Each is single-threaded and they share
// nothing (ESLint builds its own TypeScript program for the type-aware rules), so on two cores they take as long as the
// slowest one instead of their sum. Each one's output is printed whole when it ends, never interleaved with another's;
// the exit code is non-zero if any failed.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', '.bin');

const CHECKS = [
  ['typecheck', 'tsc', ['--noEmit']],
  ['eslint', 'eslint', ['.']],
  ['prettier', 'prettier', ['--check', '.', '--log-level', 'warn']],
];

function run([name, bin, args]) {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(path.join(BIN, bin), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (code, signal) => {
      const ok = code === 0;
      const took = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${name} (${took} s)${signal ? ` killed by ${signal}` : ''}\n`);
      if (!ok || output.trim()) process.stdout.write(output.endsWith('\n') ? output : `${output}\n`);
      resolve(ok);
    });
  });
}

const results = await Promise.all(CHECKS.map(run));
process.exitCode = results.every(Boolean) ? 0 : 1;
