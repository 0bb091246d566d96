/**
 * Stdio MCP server for Slack Guard. Configured by environment: GUARD_URL (the service), GUARD_AGENT_KEY (its
 * AGENT_API_KEYS entry, if set), GUARD_REPO and GUARD_REQUESTER (what requests say about their origin),
 * GUARD_MCP_WAIT_SEC / GUARD_MCP_MAX_WAIT_SEC (how long request_approval blocks by default / at most).
 * Stdout carries the protocol: everything else goes to stderr.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';
import { GuardClient } from '../../typescript/src/index.js';
import { createGuardMcpServer } from './server.js';

const envSchema = z.object({
  GUARD_URL: z.url(),
  GUARD_AGENT_KEY: z.string().min(1).optional(),
  GUARD_REPO: z.string().min(1).default(basename(process.cwd())),
  GUARD_REQUESTER: z.string().min(1).default('mcp-agent'),
  // Under the 60 s request timeout MCP clients commonly apply to a tool call.
  GUARD_MCP_WAIT_SEC: z.coerce.number().int().min(0).default(50),
  GUARD_MCP_MAX_WAIT_SEC: z.coerce.number().int().min(1).default(3600),
});

const parsed = envSchema.safeParse(process.env);
if (!parsed.success) {
  process.stderr.write(`guard-mcp: bad configuration\n${z.prettifyError(parsed.error)}\n`);
  process.exit(1);
}
const env = parsed.data;
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const server = createGuardMcpServer({
  client: new GuardClient({ baseUrl: env.GUARD_URL, agentKey: env.GUARD_AGENT_KEY }),
  version,
  repo: env.GUARD_REPO,
  requester: env.GUARD_REQUESTER,
  defaultWaitSec: Math.min(env.GUARD_MCP_WAIT_SEC, env.GUARD_MCP_MAX_WAIT_SEC),
  maxWaitSec: env.GUARD_MCP_MAX_WAIT_SEC,
});
await server.connect(new StdioServerTransport());
