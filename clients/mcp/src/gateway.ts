import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  CallToolResultSchema,
  CompleteRequestSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CallToolRequest,
  type CallToolResult,
  type ServerCapabilities,
  type ServerNotification,
} from '@modelcontextprotocol/sdk/types.js';
import type { ToolsSection } from '../../../domain/policy-schema.js';
import { decideToolCall, type ToolCall } from '../../../domain/tool-gate.js';
import { runGate, type GateOptions, type GateOutcome } from '../../gate/src/index.js';

export interface GatewayOptions {
  /** The upstream MCP server, connected. */
  upstream: Client;
  /** The upstream's name in the policy's tool rules (`server:`). */
  serverName: string;
  tools: ToolsSection;
  gate: GateOptions;
  /** How long a gated call waits for the human before answering "pending, call again". */
  waitSec: number;
  version: string;
  /** Bound of one forwarded call (reset by the upstream's progress notifications). */
  upstreamTimeoutMs?: number;
}

/** Where the gate says what it did, for clients and tests that read more than the text. */
export const GATE_META_KEY = 'slack-guard/gate';

type Extra = Parameters<Parameters<Server['setRequestHandler']>[1]>[1];

/**
 * An MCP server that stands in for another: the upstream's tools, resources and prompts, unchanged, with every
 * `tools/call` decided by the policy's `tools` section first. A gated call runs upstream only once approved in Slack,
 * with the approvers' edits, and only if the receipt verifies for exactly those arguments; anything else comes back as
 * a tool error telling the model what happened.
 */
export function createGateway(opts: GatewayOptions): Server {
  const { upstream } = opts;
  const upstreamCaps = upstream.getServerCapabilities() ?? {};
  const capabilities = mirroredCapabilities(upstreamCaps);
  const info = upstream.getServerVersion();
  const instructions = upstream.getInstructions();
  const server = new Server(
    { name: `slack-guard-gateway/${info?.name ?? opts.serverName}`, version: opts.version },
    { capabilities, ...(instructions ? { instructions } : {}) },
  );
  // A client's cancellation of a relayed request cancels it upstream too.
  const relay = (extra: Extra): RequestOptions => ({ signal: extra.signal });

  if (capabilities.tools) {
    server.setRequestHandler(ListToolsRequestSchema, (req, extra) => upstream.listTools(req.params, relay(extra)));
    server.setRequestHandler(CallToolRequestSchema, (req, extra) => callTool(opts, req, extra));
  }
  if (capabilities.resources) {
    server.setRequestHandler(ListResourcesRequestSchema, (req, extra) =>
      upstream.listResources(req.params, relay(extra)),
    );
    server.setRequestHandler(ListResourceTemplatesRequestSchema, (req, extra) =>
      upstream.listResourceTemplates(req.params, relay(extra)),
    );
    server.setRequestHandler(ReadResourceRequestSchema, (req, extra) =>
      upstream.readResource(req.params, relay(extra)),
    );
    if (capabilities.resources.subscribe) {
      server.setRequestHandler(SubscribeRequestSchema, (req, extra) =>
        upstream.subscribeResource(req.params, relay(extra)),
      );
      server.setRequestHandler(UnsubscribeRequestSchema, (req, extra) =>
        upstream.unsubscribeResource(req.params, relay(extra)),
      );
    }
  }
  if (capabilities.prompts) {
    server.setRequestHandler(ListPromptsRequestSchema, (req, extra) => upstream.listPrompts(req.params, relay(extra)));
    server.setRequestHandler(GetPromptRequestSchema, (req, extra) => upstream.getPrompt(req.params, relay(extra)));
  }
  if (capabilities.completions) {
    server.setRequestHandler(CompleteRequestSchema, (req, extra) => upstream.complete(req.params, relay(extra)));
  }
  if (capabilities.logging) {
    server.setRequestHandler(SetLevelRequestSchema, (req, extra) =>
      upstream.setLoggingLevel(req.params.level, relay(extra)),
    );
  }
  // List changes, resource updates and log messages of the upstream reach the client as they come.
  upstream.fallbackNotificationHandler = async (notification) => {
    if (notification.method === 'notifications/cancelled') return;
    await server.notification(notification as ServerNotification).catch(() => {});
  };
  return server;
}

/** What the gateway can relay of the upstream's capabilities (experimental and task extensions are not). */
function mirroredCapabilities(caps: ServerCapabilities): ServerCapabilities {
  const out: ServerCapabilities = {};
  for (const key of ['tools', 'resources', 'prompts', 'logging', 'completions'] as const) {
    if (caps[key]) Object.assign(out, { [key]: structuredClone(caps[key]) });
  }
  return out;
}

async function callTool(opts: GatewayOptions, req: CallToolRequest, extra: Extra): Promise<CallToolResult> {
  const { name } = req.params;
  const call: ToolCall = { server: opts.serverName, tool: name, arguments: req.params.arguments ?? {} };
  const label = `${opts.serverName}/${name}`;
  const decision = decideToolCall(opts.tools, call);
  const progress = progressOf(extra);
  if (decision.kind === 'allow') return forward(opts, req, call.arguments, extra, progress);
  if (decision.kind !== 'action') {
    const why = decision.rule === 'default' ? 'tools.default' : `tools.rules[${decision.rule}]`;
    const message =
      `${label} was not run: the Slack Guard policy does not allow this tool here (${why}: ${decision.kind}` +
      `${decision.kind === 'ask' ? ', which needs a person at the keyboard, and an MCP gateway cannot ask' : ''}).`;
    return gateError(message, { outcome: 'refused_by_policy', rule: decision.rule });
  }
  const outcome = await runGate(opts.gate, {
    call,
    decision,
    label,
    justification: `The agent called the MCP tool ${label} through the Slack Guard gateway.`,
    waitMs: opts.waitSec * 1000,
    signal: extra.signal,
    onState: (s) =>
      progress(`waiting for approval in Slack: request ${s.requestId}, ${s.approvalsCount} of ${s.minApprovals}`),
  });
  if (outcome.kind === 'approved') {
    progress(outcome.message);
    return forward(opts, req, outcome.arguments, extra, progress);
  }
  if (outcome.kind === 'unreachable' && outcome.fallback === 'allow') {
    return forward(opts, req, call.arguments, extra, progress);
  }
  return gateError(outcome.message, metaOf(outcome));
}

function metaOf(outcome: Exclude<GateOutcome, { kind: 'approved' }>): Record<string, unknown> {
  if (outcome.kind === 'refused') {
    const { status, requestId, decidedBy, reason } = outcome.state;
    return { outcome: status, requestId, decidedBy, reason };
  }
  if (outcome.kind === 'pending') return { outcome: 'pending', requestId: outcome.requestId };
  return { outcome: outcome.kind };
}

function forward(
  opts: GatewayOptions,
  req: CallToolRequest,
  args: Record<string, unknown>,
  extra: Extra,
  progress: (message: string) => void,
): Promise<CallToolResult> {
  const params = { ...req.params, arguments: args };
  return opts.upstream.request({ method: 'tools/call', params }, CallToolResultSchema, {
    signal: extra.signal,
    timeout: opts.upstreamTimeoutMs ?? 10 * 60_000,
    resetTimeoutOnProgress: true,
    onprogress: (p) => progress(p.message ?? `${opts.serverName}/${req.params.name}: ${p.progress}`),
  }) as Promise<CallToolResult>;
}

/** Progress notifications to the client, if it asked for them: one increasing counter for the wait and the call. */
function progressOf(extra: Extra): (message: string) => void {
  const progressToken = extra._meta?.progressToken;
  let progress = 0;
  return (message) => {
    if (progressToken === undefined) return;
    progress += 1;
    extra
      .sendNotification({ method: 'notifications/progress', params: { progressToken, progress, message } })
      .catch(() => {});
  };
}

function gateError(message: string, meta: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true, _meta: { [GATE_META_KEY]: meta } };
}
