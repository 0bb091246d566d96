import { createHash } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { createRequestSchema, idempotencyKeySchema, statusSchema } from '../../../domain/api-schemas.js';
import { canonicalJson } from '../../../domain/payload-hash.js';
import type { ClaimStore } from '../../gate/src/index.js';
import {
  GuardError,
  IdempotencyConflictError,
  InvalidRequestError,
  NotFoundError,
  PolicyDeniedError,
  RateLimitedError,
  UnauthorizedError,
  UnavailableError,
  WaitTimeoutError,
  type CreatedRequest,
  type GuardClient,
  type StateResponse,
  type StatusResponse,
} from '../../typescript/src/index.js';

export interface GuardMcpOptions {
  client: GuardClient;
  version: string;
  /** `meta.origin.repo` when a call names none. */
  repo: string;
  /** `meta.requester.id` of every request this server makes. */
  requester: string;
  /** How long `request_approval` blocks by default, and at most (under the client's own limit). */
  defaultWaitSec: number;
  maxWaitSec: number;
  /** Which decisions were already told, so the same call without a key asks anew once it has its answer. */
  claims: ClaimStore;
}

const meta = createRequestSchema.shape.meta.shape;
const params = z.record(z.string(), z.unknown());

const decisionOutput = {
  decided: z.boolean().describe('false: still waiting for the humans; call again with idempotency_key'),
  approved: z.boolean().describe('Run the action only when true'),
  status: statusSchema,
  requestId: z.string(),
  idempotency_key: z.string().describe('Pass it to request_approval again to keep waiting for this same request'),
  effectiveParams: params.optional().describe('Decided: the params to run with, approvers’ edits applied'),
  overridden: z.boolean().optional().describe('Decided: whether an approver edited the params'),
  payloadHash: z.string().optional(),
  receipt: z.string().nullable().optional().describe('Decided: the signed decision receipt'),
  decidedBy: z.string().nullable().optional(),
  reason: z.string().nullable().optional(),
  approvalsCount: z.number().int().optional(),
  minApprovals: z.number().int().optional(),
  expiresAt: z.string().optional(),
  message: z.string().describe('What to do next, in words'),
};
type DecisionOutput = z.infer<z.ZodObject<typeof decisionOutput>>;

const personaAck = z.object({ acked: z.boolean(), by: z.string().nullable(), at: z.string().nullable() });
const statusOutput = {
  requestId: z.string(),
  action: z.string(),
  status: statusSchema,
  approvalsCount: z.number().int(),
  minApprovals: z.number().int(),
  approvers: z.array(z.string()),
  personaState: z.record(z.string(), personaAck),
  expiresAt: z.string(),
  decidedAt: z.string().nullable(),
  decidedBy: z.string().nullable(),
  payloadHash: z.string(),
  receipt: z.string().nullable(),
};

const actionsOutput = {
  actions: z.array(
    z.object({
      name: z.string(),
      description: z.string().nullable(),
      approverCount: z.number().int(),
      minApprovals: z.number().int(),
      personas: z.array(z.string()),
      timeoutSec: z.number().int(),
      editsAllowed: z.boolean(),
      editableParams: z.array(z.string()),
      paramsSchema: z.record(z.string(), z.unknown()).optional(),
    }),
  ),
  unknownAction: z.enum(['deny', 'manual']),
};

/**
 * The MCP tools an agent asks for approval with. `request_approval` never leaves a request nobody waits for: its
 * idempotency key is the caller's, or derived from the request itself, so the same call finds the same request; it
 * blocks at most `maxWaitSec` (under the 60 s MCP clients give a call) and then answers with the key to call again
 * with. Every refusal is a tool error that says what to do next.
 */
export function createGuardMcpServer(opts: GuardMcpOptions): McpServer {
  const server = new McpServer({ name: 'slack-guard', version: opts.version });
  // Cancelling needs the request's token; requests made through this server are cancelled by id alone.
  const tokens = new Map<string, string>();
  listActionsTool(server, opts);
  requestApprovalTool(server, opts, tokens);
  statusTool(server, opts);
  cancelTool(server, opts, tokens);
  return server;
}

/** `list_actions`: what may be asked, from the service's policy. */
function listActionsTool(server: McpServer, opts: GuardMcpOptions): void {
  server.registerTool(
    'list_actions',
    {
      title: 'Actions you may ask approval for',
      description:
        'The actions the approval policy knows: who approves (how many, quorum), required personas, timeout, ' +
        'whether approvers may edit the params, and the JSON Schema the params must pass. Call it before ' +
        'request_approval to pick the action and its params.',
      inputSchema: {},
      outputSchema: actionsOutput,
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    async () => {
      try {
        return result(await opts.client.actions());
      } catch (err) {
        return failure(describe(err, 'list the actions'));
      }
    },
  );
}

/** The arguments of `request_approval`. */
function requestInput(opts: GuardMcpOptions) {
  return {
    action: createRequestSchema.shape.action.describe('An action of list_actions, e.g. "deploy"'),
    params: params.default({}).describe('The exact parameters you intend to run'),
    justification: meta.justification.describe('Why the action is needed, for the approvers'),
    origin: meta.origin.optional().describe(`Where the request comes from (default: repo ${opts.repo})`),
    links: meta.links.describe('Links that help approvers decide (PR, ticket, run)'),
    idempotency_key: idempotencyKeySchema
      .optional()
      .describe('Returned by an earlier call: keep waiting for that request (same action and params)'),
    wait_sec: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .optional()
      .describe(`How long to block for the decision (default ${opts.defaultWaitSec}, at most ${opts.maxWaitSec})`),
  };
}

/**
 * Every undecided answer of the long-poll (at least one per 25 s) tells the client the call is alive and how far it
 * got. The decision itself is the result: a progress note sent just before it may be dropped.
 */
function progressNotifier(extra: {
  _meta?: { progressToken?: string | number };
  sendNotification: (n: {
    method: 'notifications/progress';
    params: { progressToken: string | number; progress: number; message: string };
  }) => Promise<void>;
}): (s: StateResponse) => void {
  const progressToken = extra._meta?.progressToken;
  let progress = 0;
  return (s) => {
    if (progressToken === undefined || s.terminal) return;
    progress += 1;
    const message = `request ${s.requestId}: ${s.status}, ${s.approvalsCount} of ${s.minApprovals} approvals`;
    extra
      .sendNotification({ method: 'notifications/progress', params: { progressToken, progress, message } })
      .catch(() => {});
  };
}

/** `request_approval`: ask, wait (bounded), and answer the decision or the key to call again with. */
function requestApprovalTool(server: McpServer, opts: GuardMcpOptions, tokens: Map<string, string>): void {
  server.registerTool(
    'request_approval',
    {
      title: 'Ask a human to approve an action',
      description:
        'Ask the approval service (humans in Slack) before a risky action: a migration, a secret rotation, a ' +
        `production change (see list_actions). Blocks until decided, at most ${opts.maxWaitSec} s per call. Only run ` +
        'the action if approved is true, and then with exactly effectiveParams (approvers may have edited them). ' +
        'If decided is false, call again with the returned idempotency_key to keep waiting for the same request.',
      inputSchema: requestInput(opts),
      outputSchema: decisionOutput,
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
    },
    async (args, extra) => {
      const origin = args.origin ?? { repo: opts.repo };
      const input = {
        action: args.action,
        params: args.params,
        meta: {
          origin,
          requester: { id: opts.requester, source: 'agent' as const },
          justification: args.justification,
          ...(args.links ? { links: args.links } : {}),
        },
      };
      // Chosen before anything is sent: whatever happens next, the answer can name the key to resume with.
      const { key, derived } = await keyOf(opts, args.action, args.params, origin, args.idempotency_key);
      const waitSec = Math.min(args.wait_sec ?? opts.defaultWaitSec, opts.maxWaitSec);
      let created: CreatedRequest | null = null;
      try {
        created = await opts.client.createRequest(input, { idempotencyKey: key, signal: extra.signal });
        tokens.set(created.requestId, created.token);
        const state = await opts.client.waitForDecision(created.token, {
          timeoutMs: waitSec * 1000,
          signal: extra.signal,
          onState: progressNotifier(extra),
        });
        // Told: the same call without a key is a new question from now on.
        if (derived) await opts.claims.claim(derived.base, derived.generation, `${state.status} ${state.requestId}`);
        return result(decided(state, key));
      } catch (err) {
        if (err instanceof WaitTimeoutError && created) {
          return result(pending(created, err.last, key, waitSec, opts.maxWaitSec, args.wait_sec));
        }
        const resume = created ? ` Request ${created.requestId} exists: call again with idempotency_key "${key}".` : '';
        return failure(`${describe(err, 'ask for the approval', key)}${resume}`);
      }
    },
  );
}

/** `get_approval_status`: a request's state, and its receipt once decided. */
function statusTool(server: McpServer, opts: GuardMcpOptions): void {
  server.registerTool(
    'get_approval_status',
    {
      title: 'Status of an approval request',
      description: 'The current state of a request: status, approvals so far, and once decided the receipt.',
      inputSchema: { request_id: z.string().min(1).describe('The requestId returned by request_approval') },
      outputSchema: statusOutput,
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    async ({ request_id }) => {
      try {
        return result(statusSummary(await opts.client.status(request_id)));
      } catch (err) {
        return failure(describe(err, `read request ${request_id}`));
      }
    },
  );
}

/** `cancel_approval`: withdraw an open request. */
function cancelTool(server: McpServer, opts: GuardMcpOptions, tokens: Map<string, string>): void {
  server.registerTool(
    'cancel_approval',
    {
      title: 'Cancel an approval request',
      description: 'Withdraw an open request (no longer needed). Requests made through this server need only the id.',
      inputSchema: {
        request_id: z.string().min(1).optional().describe('A requestId returned by request_approval'),
        token: z.string().min(1).optional().describe("The request's token, for a request made elsewhere"),
        reason: z.string().max(2000).optional(),
      },
      outputSchema: { requestId: z.string(), status: z.string(), queued: z.boolean().optional() },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true },
    },
    async ({ request_id, token, reason }) => {
      const capability = token ?? (request_id ? tokens.get(request_id) : undefined);
      if (!capability) {
        return failure(
          request_id
            ? `Request ${request_id} was not made through this server (or it restarted since): pass its token instead.`
            : 'Pass request_id (of a request made through this server) or token.',
        );
      }
      try {
        const answer = await opts.client.cancel(capability, reason);
        if ('queued' in answer) return result({ requestId: answer.requestId, status: 'cancelling', queued: true });
        return result({ requestId: answer.requestId, status: answer.status });
      } catch (err) {
        return failure(describe(err, 'cancel the request'));
      }
    },
  );
}

/**
 * The request's idempotency key: the caller's, or derived from the request (the same call finds the same request).
 * A key this server derived is its own (`derived`): once its decision is told, the same call is a new question.
 */
async function keyOf(
  opts: GuardMcpOptions,
  action: string,
  params: Record<string, unknown>,
  origin: unknown,
  given: string | undefined,
): Promise<{ key: string; derived: { base: string; generation: number } | null }> {
  const base = baseKey(action, params, origin, opts.requester);
  if (given) {
    const ours = new RegExp(`^mcp-${base}-(\\d+)$`).exec(given);
    return { key: given, derived: ours ? { base, generation: Number(ours[1]) } : null };
  }
  const generation = await opts.claims.current(base);
  return { key: `mcp-${base}-${generation}`, derived: { base, generation } };
}

/** The same action, params, origin and requester → the same key, so a call cut off by the client finds its request. */
function baseKey(action: string, params: Record<string, unknown>, origin: unknown, requester: string): string {
  const identity = canonicalJson({ v: 1, action, params, origin, requester });
  return createHash('sha256').update(identity).digest('hex').slice(0, 40);
}

function decided(state: StateResponse, idempotencyKey: string): DecisionOutput {
  const by = state.decidedBy ? ` by ${state.decidedBy}` : '';
  const message =
    state.status === 'approved'
      ? `Approved${by}. Run the action with exactly effectiveParams${state.overridden ? ' (edited by an approver)' : ''}.`
      : `${state.status[0]!.toUpperCase()}${state.status.slice(1)}${by}${state.reason ? `: ${state.reason}` : ''}. ` +
        'Do not run the action.';
  return {
    decided: true,
    approved: state.status === 'approved',
    status: state.status,
    requestId: state.requestId,
    idempotency_key: idempotencyKey,
    effectiveParams: state.effectiveParams ?? {},
    overridden: state.overridden ?? false,
    payloadHash: state.payloadHash,
    receipt: state.receipt ?? null,
    decidedBy: state.decidedBy,
    reason: state.reason,
    message,
  };
}

function pending(
  created: CreatedRequest,
  last: StateResponse | null,
  idempotencyKey: string,
  waitedSec: number,
  maxWaitSec: number,
  askedSec: number | undefined,
): DecisionOutput {
  const capped =
    askedSec !== undefined && askedSec > maxWaitSec
      ? ` (one call waits at most ${maxWaitSec} s: MCP clients give up on a call after 60 s)`
      : '';
  return {
    decided: false,
    approved: false,
    status: last?.status ?? created.status,
    requestId: created.requestId,
    idempotency_key: idempotencyKey,
    ...(last ? { approvalsCount: last.approvalsCount, minApprovals: last.minApprovals } : {}),
    expiresAt: created.expiresAt,
    message:
      `Not decided after ${waitedSec} s${capped}. Do not run the action. Call request_approval again with ` +
      `idempotency_key "${idempotencyKey}" (same action and params) to keep waiting for request ${created.requestId}, ` +
      'or cancel_approval if it is no longer needed.',
  };
}

function statusSummary(s: StatusResponse) {
  return {
    requestId: s.requestId,
    action: s.action,
    status: s.status,
    approvalsCount: s.approvalsCount,
    minApprovals: s.minApprovals,
    approvers: s.approvers,
    personaState: s.personaState,
    expiresAt: s.expiresAt,
    decidedAt: s.decidedAt,
    decidedBy: s.decidedBy,
    payloadHash: s.payloadHash,
    receipt: s.receipt ?? null,
  };
}

function result(content: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(content, null, 2) }], structuredContent: content };
}

/** Errors the model should read and act on, as a tool result (not a protocol error). */
function failure(text: string): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true };
}

/** What went wrong, once, and what to do about it. */
function describe(err: unknown, doing: string, idempotencyKey?: string): string {
  if (!(err instanceof GuardError)) return `Could not ${doing}: ${(err as Error).message}`;
  const detail = err.body?.detail ?? err.body?.message;
  const said = detail ? `: ${detail}` : '';
  if (err instanceof PolicyDeniedError) {
    return `The approval policy refuses this action${said}. Call list_actions for the actions you may request.`;
  }
  if (err instanceof IdempotencyConflictError) {
    return (
      `idempotency_key "${idempotencyKey}" belongs to a request with another action, params or origin${said}. ` +
      'Call again without idempotency_key to ask for this one, or with the params of that request to resume it.'
    );
  }
  if (err instanceof InvalidRequestError) {
    const details = (err.body?.details ?? []).flatMap((d) => {
      const { path, message } = (d ?? {}) as { path?: unknown; message?: unknown };
      return path === undefined ? [] : [`${String(path)}: ${String(message)}`];
    });
    const what = details.length > 0 ? details.join('; ') : (detail ?? err.message);
    return `The request is invalid (${what}). Fix the arguments (list_actions shows each action's params schema) and call again.`;
  }
  if (err instanceof UnauthorizedError) {
    return 'The approval service refused this MCP server’s agent key: set GUARD_AGENT_KEY in its environment.';
  }
  if (err instanceof RateLimitedError) {
    const after = err.retryAfterSec === null ? 'a moment' : `${err.retryAfterSec} s`;
    return `Too many requests to the approval service: wait ${after}, then call again.`;
  }
  if (err instanceof NotFoundError) return `Could not ${doing}: no such request (a wrong id, or purged since).`;
  if (err instanceof UnavailableError) {
    return `Could not ${doing}: the approval service is unavailable (${err.message}). Nothing ran; try again later.`;
  }
  return `Could not ${doing}: ${err.code}${said}.`;
}
