#!/usr/bin/env node
// Runs the TypeScript sources from a checkout, from any cwd, without a build step: from a bundle esbuild makes on
// first use (and again after any change to its sources) in clients/mcp/dist/, or through tsx when none can be made
// (clients/cli/start.mjs). The bundle sits beside src/, so `new URL('../package.json', import.meta.url)` still finds
// this package's package.json.
import { fileURLToPath } from 'node:url';
import { startEntry } from '../cli/start.mjs';

await startEntry(
  fileURLToPath(new URL('./src/main.ts', import.meta.url)),
  fileURLToPath(new URL('./dist/', import.meta.url)),
);
