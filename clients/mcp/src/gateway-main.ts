/**
 * `guard-mcp proxy [options] -- COMMAND [ARGS...]` (or `--url URL`, or `--config FILE`): the MCP gateway. It starts
 * the upstream MCP server, offers its tools, resources and prompts to the client unchanged, and lets a tool call the
 * policy's `tools` section gates run only once approved in Slack. Stdout carries the protocol; the rest goes to stderr.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import {
  ClaimStore,
  defaultRepo,
  GateConfigError,
  loadToolsSection,
  receiptKeyProvider,
} from '../../gate/src/index.js';
import { GuardClient } from '../../typescript/src/index.js';
import { createGateway } from './gateway.js';

export const PROXY_USAGE = `Usage: guard-mcp proxy [--policy FILE] [--name NAME] -- COMMAND [ARGS...]
       guard-mcp proxy [--policy FILE] [--name NAME] --url URL [--header 'Name: value']...
       guard-mcp proxy --config FILE

  Starts the upstream MCP server (over stdio, or Streamable HTTP at --url) and serves its tools, resources and
  prompts on stdio unchanged; each tools/call is decided by the policy's tools section first (rules match
  server: NAME, default the upstream's own name). A gated call runs only once approved in Slack.

  --config FILE   YAML or JSON: name, command, args, env, cwd | url, headers; policy (relative to the file)
  --policy FILE   a policy file with a tools section (default: GUARD_POLICY)

  Environment: GUARD_URL, GUARD_AGENT_KEY, GUARD_POLICY, GUARD_REPO, GUARD_REQUESTER (default mcp-gateway),
  GUARD_MCP_WAIT_SEC (default 50: under the 60 s MCP clients allow a call), GUARD_RECEIPT_KEY_FILE (a pinned
  receipt key; default: fetched from GUARD_URL), GUARD_STATE_DIR (which approvals were used).`;

const configSchema = z
  .strictObject({
    name: z.string().min(1).optional(),
    command: z.string().min(1).optional(),
    args: z.array(z.string()).default([]),
    env: z.record(z.string(), z.string()).default({}),
    cwd: z.string().optional(),
    url: z.url().optional(),
    headers: z.record(z.string(), z.string()).default({}),
    policy: z.string().min(1).optional(),
  })
  .refine((c) => !(c.command && c.url), { message: 'set command or url, not both' });
type ProxyConfig = z.infer<typeof configSchema>;

const envSchema = z.object({
  GUARD_URL: z.url().optional(),
  GUARD_AGENT_KEY: z.string().min(1).optional(),
  GUARD_POLICY: z.string().min(1).optional(),
  GUARD_REQUESTER: z.string().min(1).default('mcp-gateway'),
  GUARD_MCP_WAIT_SEC: z.coerce.number().int().min(0).max(3600).default(50),
  GUARD_RECEIPT_KEY_FILE: z.string().min(1).optional(),
});

/** Runs the gateway until the client or the upstream goes away. Throws GateConfigError for a bad set-up. */
export async function runGateway(argv: string[], version: string): Promise<void> {
  const config = await proxyConfig(argv);
  const parsedEnv = envSchema.safeParse(emptyAsUnset(process.env));
  if (!parsedEnv.success) throw new GateConfigError(`bad environment\n${z.prettifyError(parsedEnv.error)}`);
  const env = parsedEnv.data;
  const policyPath = config.policy ?? env.GUARD_POLICY;
  if (!policyPath) throw new GateConfigError('no policy: pass --policy FILE, set GUARD_POLICY, or policy: in --config');
  const tools = await loadToolsSection(policyPath);

  const upstream = new Client({ name: 'slack-guard-gateway', version });
  await upstream.connect(upstreamTransport(config));
  const serverName = config.name ?? upstream.getServerVersion()?.name ?? 'upstream';
  const client = env.GUARD_URL ? new GuardClient({ baseUrl: env.GUARD_URL, agentKey: env.GUARD_AGENT_KEY }) : null;
  const server = createGateway({
    upstream,
    serverName,
    tools,
    version,
    waitSec: env.GUARD_MCP_WAIT_SEC,
    gate: {
      client,
      receiptKey: receiptKeyProvider(client, env.GUARD_RECEIPT_KEY_FILE),
      claims: ClaimStore.fromEnv(),
      origin: { repo: defaultRepo(process.env, process.cwd()) },
      requester: env.GUARD_REQUESTER,
    },
  });
  if (!client) process.stderr.write('guard-mcp proxy: GUARD_URL is not set: gated tools are refused\n');

  let closing = false;
  const shutdown = async (code: number) => {
    if (closing) return;
    closing = true;
    await Promise.allSettled([server.close(), upstream.close()]);
    process.exit(code);
  };
  upstream.onclose = () => {
    if (!closing) process.stderr.write(`guard-mcp proxy: the upstream server ${serverName} went away\n`);
    void shutdown(1);
  };
  process.stdin.on('end', () => void shutdown(0));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void shutdown(0));
  await server.connect(new StdioServerTransport());
  process.stderr.write(`guard-mcp proxy: gating ${serverName} (policy ${policyPath})\n`);
}

async function proxyConfig(argv: string[]): Promise<ProxyConfig> {
  const split = argv.indexOf('--');
  const own = split < 0 ? argv : argv.slice(0, split);
  const command = split < 0 ? [] : argv.slice(split + 1);
  const { values, positionals } = parseArgs({
    args: own,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      policy: { type: 'string' },
      name: { type: 'string' },
      url: { type: 'string' },
      header: { type: 'string', multiple: true },
    },
  });
  if (positionals.length > 0) throw new GateConfigError(`unexpected '${positionals[0]}': put the command after --`);
  const fromFile = values.config ? await readConfigFile(values.config) : {};
  const headers = Object.fromEntries(
    (values.header ?? []).map((h) => {
      const colon = h.indexOf(':');
      if (colon < 1) throw new GateConfigError(`--header '${h}' is not 'Name: value'`);
      return [h.slice(0, colon).trim(), h.slice(colon + 1).trim()];
    }),
  );
  const merged = {
    ...fromFile,
    ...(values.name ? { name: values.name } : {}),
    ...(values.policy ? { policy: resolve(values.policy) } : {}),
    ...(values.url ? { url: values.url, command: undefined } : {}),
    ...(command.length > 0 ? { command: command[0], args: command.slice(1), url: undefined } : {}),
    headers: { ...(fromFile as { headers?: Record<string, string> }).headers, ...headers },
  };
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) throw new GateConfigError(`bad proxy configuration\n${z.prettifyError(parsed.error)}`);
  if (!parsed.data.command && !parsed.data.url) throw new GateConfigError('no upstream: -- COMMAND [ARGS...] or --url');
  return parsed.data;
}

async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let data: unknown;
  try {
    data = parseYaml(await readFile(path, 'utf8'));
  } catch (err) {
    throw new GateConfigError(`cannot read --config ${path}: ${(err as Error).message}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new GateConfigError(`--config ${path} must be a mapping`);
  }
  const config = data as Record<string, unknown>;
  // Paths in the file are relative to the file, wherever the gateway is started from.
  const here = dirname(resolve(path));
  if (typeof config.policy === 'string') config.policy = resolve(here, config.policy);
  if (typeof config.cwd === 'string') config.cwd = resolve(here, config.cwd);
  return config;
}

function upstreamTransport(config: ProxyConfig) {
  if (config.url) {
    return new StreamableHTTPClientTransport(new URL(config.url), { requestInit: { headers: config.headers } });
  }
  return new StdioClientTransport({
    command: config.command!,
    args: config.args,
    env: { ...upstreamEnv(process.env), ...config.env },
    ...(config.cwd ? { cwd: config.cwd } : {}),
    stderr: 'inherit',
  });
}

/** The gateway's environment minus its own settings: the upstream never sees the agent key. */
function upstreamEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && !e[0].startsWith('GUARD_')),
  );
}

/** An MCP client's config often writes `"GUARD_AGENT_KEY": ""` for "not set". */
function emptyAsUnset(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => Boolean(e[1])));
}
