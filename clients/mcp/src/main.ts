/**
 * `guard-mcp`: the Slack Guard MCP server (stdio), or with `proxy` the MCP gateway in front of another server
 * (gateway-main.ts). The server is configured by environment: GUARD_URL (the service), GUARD_AGENT_KEY (its
 * AGENT_API_KEYS entry, if set), GUARD_REPO and GUARD_REQUESTER (what requests say about their origin),
 * GUARD_MCP_WAIT_SEC / GUARD_MCP_MAX_WAIT_SEC (how long request_approval blocks by default / at most).
 * Stdout carries the protocol: everything else goes to stderr.
 */
import { readFileSync } from 'node:fs';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';
import { ClaimStore, defaultRepo, GateConfigError } from '../../gate/src/index.js';
import { GuardClient } from '../../typescript/src/index.js';
import { PROXY_USAGE, runGateway } from './gateway-main.js';
import { createGuardMcpServer } from './server.js';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const envSchema = z.object({
  GUARD_URL: z.url(),
  GUARD_AGENT_KEY: z.string().min(1).optional(),
  GUARD_REPO: z.string().min(1).default(defaultRepo(process.env, process.cwd())),
  GUARD_REQUESTER: z.string().min(1).default('mcp-agent'),
  // Under the 60 s the MCP SDK's client (and so most MCP clients) gives a tool call before giving up on it.
  GUARD_MCP_WAIT_SEC: z.coerce.number().int().min(0).default(50),
  GUARD_MCP_MAX_WAIT_SEC: z.coerce.number().int().min(1).default(50),
});

const USAGE = `Usage: guard-mcp          the Slack Guard MCP server on stdio (tools request_approval, get_approval_status,
                         cancel_approval); environment GUARD_URL, GUARD_AGENT_KEY, GUARD_REPO, GUARD_REQUESTER,
                         GUARD_MCP_WAIT_SEC, GUARD_MCP_MAX_WAIT_SEC

${PROXY_USAGE}`;

async function serve(): Promise<void> {
  // An MCP client's config often writes `"GUARD_REPO": ""` for "not set".
  const parsed = envSchema.safeParse(Object.fromEntries(Object.entries(process.env).filter((e) => Boolean(e[1]))));
  if (!parsed.success) {
    process.stderr.write(`guard-mcp: bad configuration\n${z.prettifyError(parsed.error)}\n`);
    process.exit(1);
  }
  const env = parsed.data;
  const server = createGuardMcpServer({
    client: new GuardClient({ baseUrl: env.GUARD_URL, agentKey: env.GUARD_AGENT_KEY }),
    version,
    repo: env.GUARD_REPO,
    requester: env.GUARD_REQUESTER,
    defaultWaitSec: Math.min(env.GUARD_MCP_WAIT_SEC, env.GUARD_MCP_MAX_WAIT_SEC),
    maxWaitSec: env.GUARD_MCP_MAX_WAIT_SEC,
    claims: ClaimStore.fromEnv(),
  });
  await server.connect(new StdioServerTransport());
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'proxy') {
  if (rest.includes('--help') && !rest.slice(0, rest.indexOf('--help')).includes('--')) {
    process.stdout.write(`${PROXY_USAGE}\n`);
  } else {
    await runGateway(rest, version).catch((err: unknown) => {
      const detail = err instanceof GateConfigError ? `${err.message}\n\n${PROXY_USAGE}` : (err as Error).message;
      process.stderr.write(`guard-mcp proxy: ${detail}\n`);
      process.exit(1);
    });
  }
} else if (command === undefined) {
  await serve();
} else if (command === '--help' || command === 'help') {
  process.stdout.write(`${USAGE}\n`);
} else {
  process.stderr.write(`guard-mcp: unknown command '${command}'\n\n${USAGE}\n`);
  process.exit(1);
}
