#!/usr/bin/env node
// Runs the TypeScript sources through tsx, so an MCP client can start the server from a checkout, from any cwd.
import { register } from 'tsx/esm/api';

register();
await import('./src/main.ts');
