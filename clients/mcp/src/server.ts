import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { createRequestSchema, idempotencyKeySchema } from '../../../domain/api-schemas.js';
import {
  GuardError,
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
  /** How long `request_approval` blocks by default, and at most. */
  defaultWaitSec: number;
  maxWaitSec: number;
}

const meta = createRequestSchema.shape.meta.shape;

/**
 * The MCP tools an agent asks for approval with. `request_approval` blocks until the decision or a time bound; an
 * undecided request is resumed by calling it again with the same idempotency key (the service finds the same
 * request), so a long human decision never needs one very long tool call.
 */
export function createGuardMcpServer(opts: GuardMcpOptions): McpServer {
  const server = new McpServer({ name: 'slack-guard', version: opts.version });
  // Cancelling needs the request's token; requests made through this server are cancelled by id alone.
  const tokens = new Map<string, string>();

  server.registerTool(
    'request_approval',
    {
      title: 'Ask a human to approve an action',
      description:
        'Ask the approval service (humans in Slack) before a risky action: a migration, a secret rotation, a ' +
        'production change. Blocks until decided or wait_sec. Only run the action if status is "approved", and ' +
        'then with exactly effectiveParams (approvers may have edited them). If decided is false, call again with ' +
        'the same idempotency_key to keep waiting for the same request.',
      inputSchema: {
        action: createRequestSchema.shape.action.describe('The action name the policy knows, e.g. "db_migration"'),
        params: z.record(z.string(), z.unknown()).default({}).describe('The exact parameters you intend to run'),
        justification: meta.justification.describe('Why the action is needed, for the approvers'),
        origin: meta.origin.optional().describe(`Where the request comes from (default: repo ${opts.repo})`),
        links: meta.links.describe('Links that help approvers decide (PR, ticket, run)'),
        idempotency_key: idempotencyKeySchema.optional().describe('Returned by an earlier call: resume waiting'),
        wait_sec: z
          .number()
          .int()
          .min(0)
          .max(opts.maxWaitSec)
          .optional()
          .describe(`How long to block for the decision (default ${opts.defaultWaitSec})`),
      },
    },
    async (args, extra) => {
      const idempotencyKey = args.idempotency_key ?? randomUUID();
      let created: CreatedRequest | null = null;
      try {
        created = await opts.client.createRequest(
          {
            action: args.action,
            params: args.params,
            meta: {
              origin: args.origin ?? { repo: opts.repo },
              requester: { id: opts.requester, source: 'agent' },
              justification: args.justification,
              ...(args.links ? { links: args.links } : {}),
            },
          },
          { idempotencyKey, signal: extra.signal },
        );
        tokens.set(created.requestId, created.token);
        const progressToken = extra._meta?.progressToken;
        let progress = 0;
        const state = await opts.client.waitForDecision(created.token, {
          timeoutMs: (args.wait_sec ?? opts.defaultWaitSec) * 1000,
          signal: extra.signal,
          // Every undecided answer of the long-poll (at least one per 25 s) tells the client the call is alive and
          // how far it got. The decision itself is the result: a progress note sent just before it may be dropped.
          onState: (s) => {
            if (progressToken === undefined || s.terminal) return;
            progress += 1;
            const message = `request ${s.requestId}: ${s.status}, ${s.approvalsCount} of ${s.minApprovals} approvals`;
            const params = { progressToken, progress, message };
            extra.sendNotification({ method: 'notifications/progress', params }).catch(() => {});
          },
        });
        return result(decided(state, idempotencyKey));
      } catch (err) {
        if (err instanceof WaitTimeoutError && created) return result(pending(created, err.last, idempotencyKey));
        return failure(err);
      }
    },
  );

  server.registerTool(
    'get_approval_status',
    {
      title: 'Status of an approval request',
      description: 'The current state of a request: status, approvals so far, and once decided the receipt.',
      inputSchema: { request_id: z.string().min(1).describe('The requestId returned by request_approval') },
    },
    async ({ request_id }) => {
      try {
        return result(statusSummary(await opts.client.status(request_id)));
      } catch (err) {
        return failure(err);
      }
    },
  );

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
    },
    async ({ request_id, token, reason }) => {
      const capability = token ?? (request_id ? tokens.get(request_id) : undefined);
      if (!capability) return failure(new Error('pass the token of a request this server did not create'));
      try {
        const answer = await opts.client.cancel(capability, reason);
        if ('queued' in answer) return result({ requestId: answer.requestId, status: 'cancelling', queued: true });
        return result({ requestId: answer.requestId, status: answer.status });
      } catch (err) {
        return failure(err);
      }
    },
  );

  return server;
}

function decided(state: StateResponse, idempotencyKey: string) {
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
    effectiveParams: state.effectiveParams ?? {},
    overridden: state.overridden ?? false,
    payloadHash: state.payloadHash,
    receipt: state.receipt ?? null,
    decidedBy: state.decidedBy,
    reason: state.reason,
    idempotency_key: idempotencyKey,
    message,
  };
}

function pending(created: CreatedRequest, last: StateResponse | null, idempotencyKey: string) {
  return {
    decided: false,
    approved: false,
    status: last?.status ?? created.status,
    requestId: created.requestId,
    expiresAt: created.expiresAt,
    idempotency_key: idempotencyKey,
    message:
      'Not decided yet. Do not run the action. Call request_approval again with the same idempotency_key to keep ' +
      'waiting, or cancel_approval if it is no longer needed.',
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
function failure(err: unknown): CallToolResult {
  const text = err instanceof GuardError ? `${err.code}: ${err.message}` : (err as Error).message;
  return { content: [{ type: 'text', text }], isError: true };
}
