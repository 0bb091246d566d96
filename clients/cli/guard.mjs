#!/usr/bin/env node
// Runs the TypeScript CLI from a checkout without a build step: from a bundle esbuild makes on first use (and again
// after any change to its sources) in clients/cli/dist/, or through tsx when none can be made (see start.mjs).
import { fileURLToPath } from 'node:url';
import { startEntry } from './start.mjs';

await startEntry(
  fileURLToPath(new URL('./src/main.ts', import.meta.url)),
  fileURLToPath(new URL('./dist/', import.meta.url)),
);
