#!/usr/bin/env node
// `npm test`'s static checks: the type check, ESLint and Prettier, side by side. Each is single-threaded and they share
// nothing (ESLint builds its own TypeScript program for the type-aware rules), so on two cores they take as long as the
// slowest one instead of their sum. Each one's output is printed whole when it ends, never interleaved with another's;
// the exit code is non-zero if any failed.
//
// `node scripts/checks.mjs -- COMMAND ARGS...` also runs COMMAND beside them, its output streamed as it comes (`npm
// test` runs Jest so: its integration suites spend much of their time waiting, which leaves the checks a core). The
// checks' results are then held and printed after COMMAND's output; the exit code is COMMAND's, or 1 if a check failed.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', '.bin');

const CHECKS = [
  ['typecheck', 'tsc', ['--noEmit']],
  ['eslint', 'eslint', ['.']],
  ['prettier', 'prettier', ['--check', '.', '--log-level', 'warn']],
];

const dash = process.argv.indexOf('--');
const command = dash === -1 ? null : process.argv.slice(dash + 1);
const report = [];
const print = (text) => (command ? report.push(text) : process.stdout.write(text));

function check([name, bin, args]) {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(path.join(BIN, bin), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (code, signal) => {
      const ok = code === 0;
      const took = ((Date.now() - started) / 1000).toFixed(1);
      print(`${ok ? 'ok  ' : 'FAIL'} ${name} (${took} s)${signal ? ` killed by ${signal}` : ''}\n`);
      if (!ok || output.trim()) print(output.endsWith('\n') ? output : `${output}\n`);
      resolve(ok);
    });
  });
}

function runCommand([bin, ...args]) {
  return new Promise((resolve) => {
    const child = spawn(bin, args, { stdio: 'inherit' });
    child.on('error', (err) => {
      console.error(`${bin}: ${err.message}`);
      resolve(1);
    });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const [commandCode, ...checks] = await Promise.all([command ? runCommand(command) : 0, ...CHECKS.map(check)]);
if (command) process.stdout.write(`\n${report.join('')}`);
process.exitCode = commandCode !== 0 ? commandCode : checks.every(Boolean) ? 0 : 1;
