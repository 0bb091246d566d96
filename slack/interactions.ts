import { App, LogLevel, type BlockAction, type ButtonAction, type ViewSubmitAction } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import { z } from 'zod';
import type { Plan } from '../domain/plan.js';
import type { RequestState } from '../domain/request-state.js';
import { DECISION_BLOCK_PREFIX } from '../domain/slack-message.js';
import { NotFoundError, type CommandOutcome, type RequestGateway } from '../api/requests.js';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';
import * as msg from '../workflows/messages.js';
import {
  buildOverrideModal,
  editRefusal,
  judgeOverride,
  modalErrors,
  OVERRIDE_BLOCK_PREFIX,
  OVERRIDE_CALLBACK_ID,
  readOverrideChanges,
  type SubmittedValues,
} from './modal.js';
import { FastifyReceiver, type AckResult } from './receiver.js';

/** The parts of an interaction payload we rely on; anything else Slack sends passes through untouched. */
export const interactionSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('block_actions'),
      user: z.object({ id: z.string().min(1) }).loose(),
      actions: z
        .array(
          z
            .object({ action_id: z.string().min(1), value: z.string().optional(), block_id: z.string().optional() })
            .loose(),
        )
        .min(1),
    })
    .loose(),
  z
    .object({
      type: z.literal('view_submission'),
      user: z.object({ id: z.string().min(1) }).loose(),
      view: z.object({ callback_id: z.string(), private_metadata: z.string().optional() }).loose(),
    })
    .loose(),
]);

const metadataSchema = z.object({ request_id: z.string().min(1) });

const REFUSAL_TEXT: Record<string, string> = {
  not_authorized: 'You are not authorized to do that on this request.',
  duplicate: 'You have already approved this request.',
  self_approval: 'You cannot approve your own request.',
  not_ready: 'Required personas must acknowledge before a decision.',
  already_decided: 'This request has already been decided.',
  already_acked: 'That persona has already been acknowledged.',
  stale_payload: 'The parameters changed since this message was shown; look again before approving.',
  overrides_not_allowed: 'This action does not allow edits.',
  not_found: 'This request no longer exists.',
};

const UNAVAILABLE_TEXT = 'The approval service is briefly unavailable; try again in a moment.';

/** Slack's trigger ids expire 3 s after the click; past this, retrying views.open cannot succeed. */
const TRIGGER_BUDGET_MS = 2500;
const INPUT_CACHE_SIZE = 1000;

export interface SlackInteractionsDeps {
  gateway: RequestGateway;
  botToken: string | undefined;
  apiUrl: string | undefined;
  metrics: Metrics;
  audit: AuditLog;
}

export interface SlackInteractions {
  dispatch(payload: Record<string, unknown>): Promise<AckResult>;
  client: WebClient;
}

type SlackCall = <T>(method: string, fn: () => Promise<T>) => Promise<T>;

/** The Bolt app behind `/api/slack/interactions`: clicks and modal submissions become workflow Updates. */
export function createSlackInteractions(deps: SlackInteractionsDeps): SlackInteractions {
  const { gateway, botToken, apiUrl, metrics } = deps;
  const receiver = new FastifyReceiver();
  const app = new App({
    receiver,
    authorize: async () => ({ botToken: botToken ?? '', botId: 'B_GUARD', botUserId: 'U_GUARD' }),
    logLevel: LogLevel.ERROR,
    // A click must be answered within 3 s: the client gives up at once instead of retrying for minutes.
    clientOptions: {
      ...(apiUrl ? { slackApiUrl: apiUrl } : {}),
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
    },
  });
  const slackCall: SlackCall = async (method, fn) => {
    try {
      const result = await fn();
      metrics.slackApiCalls.inc({ method, outcome: 'ok' });
      return result;
    } catch (err) {
      metrics.slackApiCalls.inc({ method, outcome: isRateLimited(err) ? 'rate_limited' : 'error' });
      throw err;
    }
  };
  const tell = (client: WebClient, channel: string | undefined, user: string, text: string) =>
    botToken && channel ? tellClicker(slackCall, client, channel, user, text) : undefined;

  const decide =
    (run: (requestId: string, userId: string, action: ButtonAction) => Promise<CommandOutcome>) =>
    async ({
      ack,
      body,
      action,
      client,
    }: {
      ack: (r?: unknown) => Promise<void>;
      body: BlockAction;
      action: ButtonAction;
      client: WebClient;
    }) => {
      const requestId = action.value;
      const outcome = requestId
        ? await run(requestId, body.user.id, action)
        : ({ ok: false, reason: 'not_found', message: 'button without a request id' } as const);
      const text = describe(outcome);
      await ack(
        outcome.ok
          ? { ok: true, status: outcome.view?.status ?? 'queued', text }
          : { ok: false, error: outcome.reason, text },
      );
      if (!outcome.ok) void tell(client, channelOf(body), body.user.id, text);
    };

  app.action<BlockAction<ButtonAction>>(
    'approve',
    decide((requestId, userId, action) => {
      const seen = action.block_id?.startsWith(DECISION_BLOCK_PREFIX)
        ? action.block_id.slice(DECISION_BLOCK_PREFIX.length)
        : undefined;
      return gateway.command(requestId, msg.approveUpdate, msg.approveSignal, {
        userId,
        ...(seen ? { seenPayloadHash: seen } : {}),
      });
    }) as never,
  );
  app.action<BlockAction<ButtonAction>>(
    'deny',
    decide((requestId, userId) => gateway.command(requestId, msg.denyUpdate, msg.denySignal, { userId })) as never,
  );
  app.action<BlockAction<ButtonAction>>(
    /^persona_ack:.+$/,
    decide((requestId, userId, action) => {
      const persona = action.action_id.slice('persona_ack:'.length);
      return gateway.command(requestId, msg.personaAckUpdate, msg.personaAckSignal, { persona, userId });
    }) as never,
  );

  const plans = new Map<string, Plan>();
  /** Plans are frozen at creation, so one history read per request is enough. */
  const planOf = async (requestId: string): Promise<Plan> => {
    const known = plans.get(requestId);
    if (known) return known;
    const { plan } = await gateway.input(requestId);
    if (plans.size >= INPUT_CACHE_SIZE) plans.delete(plans.keys().next().value as string);
    plans.set(requestId, plan);
    return plan;
  };
  const load = (requestId: string): Promise<[RequestState, Plan] | null> =>
    Promise.all([gateway.view(requestId), planOf(requestId)]).catch((err: unknown) => {
      if (err instanceof NotFoundError) return null;
      throw err;
    });

  app.action<BlockAction<ButtonAction>>('approve_edit', async ({ ack, body, action, client }) => {
    const clickedAt = Date.now();
    // Acked at once: Slack wants the answer within 3 s, and views.open must use the trigger within 3 s too.
    await ack();
    const user = body.user.id;
    const say = (text: string) => void tell(client, channelOf(body), user, text);
    try {
      const loaded = action.value ? await load(action.value) : null;
      if (!loaded || !action.value) return say(REFUSAL_TEXT.not_found ?? '');
      const [state, plan] = loaded;
      const refused = editRefusal(state, plan, user, new Date().toISOString());
      if (refused) return say(refusalText(refused.reason, refused.message));
      const opened = await openView(
        slackCall,
        client,
        body.trigger_id,
        buildOverrideModal(action.value, plan, state),
        clickedAt,
      );
      if (!opened) say('Slack did not open the edit form in time; click again.');
    } catch {
      say(UNAVAILABLE_TEXT);
    }
  });

  app.view<ViewSubmitAction>(OVERRIDE_CALLBACK_ID, async ({ ack, body, view }) => {
    const values = (view.state?.values ?? {}) as SubmittedValues;
    const fallbackBlock = Object.keys(values).find((b) => b.startsWith(OVERRIDE_BLOCK_PREFIX)) ?? 'ov_value';
    const refuseWhole = (text: string) => ack({ response_action: 'errors', errors: { [fallbackBlock]: text } });
    try {
      const requestId = parseMetadata(view.private_metadata);
      const loaded = requestId ? await load(requestId) : null;
      if (!requestId || !loaded) return await refuseWhole(REFUSAL_TEXT.not_found ?? 'not found');
      const [state, plan] = loaded;
      const userId = body.user.id;
      const changes = readOverrideChanges(values, plan, state);
      const verdict = judgeOverride(state, plan, userId, changes, new Date().toISOString());
      const outcome = verdict.ok
        ? await gateway.command(requestId, msg.approveWithEditsUpdate, msg.approveWithEditsSignal, { userId, changes })
        : verdict;
      // An empty answer closes the modal; the message updates with the edited values.
      if (outcome.ok) return await ack();
      const message = refusalText(outcome.reason, outcome.message);
      recordRejection(deps, { requestId, action: plan.action, actor: userId, reason: outcome.reason, message });
      const fieldErrors = verdict.ok ? {} : verdict.fieldErrors;
      return await ack({ response_action: 'errors', errors: modalErrors(plan, changes, { message, fieldErrors }) });
    } catch {
      // Closing the modal here would look like success: keep it open with the reason instead.
      return refuseWhole(UNAVAILABLE_TEXT);
    }
  });

  return { dispatch: (payload) => receiver.dispatch(payload), client: app.client };
}

function parseMetadata(raw: string | undefined): string | null {
  try {
    const parsed = metadataSchema.safeParse(JSON.parse(raw ?? ''));
    return parsed.success ? parsed.data.request_id : null;
  } catch {
    return null;
  }
}

function recordRejection(
  { metrics, audit }: SlackInteractionsDeps,
  r: { requestId: string; action: string; actor: string; reason: string; message: string },
): void {
  metrics.paramOverrides.inc({ action: r.action, outcome: 'rejected' });
  metrics.overrideRejections.inc({ action: r.action, reason: r.reason });
  audit.emit({
    event: 'override_rejected',
    requestId: r.requestId,
    action: r.action,
    actor: r.actor,
    reason: r.reason,
    detail: r.message,
  });
}

function refusalText(reason: string, message: string): string {
  const text = REFUSAL_TEXT[reason] ?? message;
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function describe(outcome: CommandOutcome): string {
  if (!outcome.ok) return refusalText(outcome.reason, outcome.message);
  if (!outcome.view) return 'Received; the request will update in a moment.';
  const v = outcome.view;
  return `Recorded. Request is ${v.status} (${v.approvals.length} of ${v.minApprovals} approvals).`;
}

function channelOf(body: BlockAction): string | undefined {
  return body.channel?.id ?? body.container?.channel_id;
}

function isRateLimited(err: unknown): boolean {
  return (err as { code?: string }).code === 'slack_webapi_rate_limited_error';
}

/** Rate limits and Slack's own outages are worth one more try while the trigger id is still valid. */
function isTransient(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return isRateLimited(err) || code === 'slack_webapi_http_error' || code === 'slack_webapi_request_error';
}

async function openView(
  slackCall: SlackCall,
  client: WebClient,
  triggerId: string,
  view: Record<string, unknown>,
  clickedAt: number,
): Promise<boolean> {
  for (;;) {
    try {
      await slackCall('views.open', () => client.views.open({ trigger_id: triggerId, view: view as never }));
      return true;
    } catch (err) {
      if (!isTransient(err) || Date.now() - clickedAt > TRIGGER_BUDGET_MS) return false;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function tellClicker(
  slackCall: SlackCall,
  client: WebClient,
  channel: string,
  user: string,
  text: string,
): Promise<void> {
  try {
    await slackCall('chat.postEphemeral', () => client.chat.postEphemeral({ channel, user, text }));
  } catch {
    // The refusal already went back in the HTTP answer; an ephemeral that fails is not worth a retry.
  }
}
