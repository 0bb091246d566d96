import type { App, BlockAction, ButtonAction, ViewSubmitAction } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import { z } from 'zod';
import { NotFoundError, type RequestGateway } from '../gateway/types.js';
import type { Plan } from '../domain/plan.js';
import type { RequestState } from '../domain/request-state.js';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';
import {
  buildOverrideModal,
  editRefusal,
  judgeOverride,
  modalErrors,
  OVERRIDE_BLOCK_PREFIX,
  OVERRIDE_CALLBACK_ID,
  readOverrideChanges,
  type ModalView,
  type SubmittedValues,
} from './modal.js';
import { isRateLimited, refusalText, UNAVAILABLE_TEXT, type SlackCall, type Tell } from './replies.js';

/** Slack's trigger ids expire 3 s after the click; past this, retrying views.open cannot succeed. */
const TRIGGER_BUDGET_MS = 2500;

const metadataSchema = z.object({ request_id: z.string().min(1) });

export interface EditDeps {
  gateway: RequestGateway;
  botToken: string | undefined;
  metrics: Metrics;
  audit: AuditLog;
  slackCall: SlackCall;
  tell: Tell;
}

/** Approve with edits (SPEC section 4): the `approve_edit` button opens the modal, `override_submit` judges it. */
export function registerEditHandlers(app: App, deps: EditDeps): void {
  const load = requestLoader(deps.gateway);

  app.action<BlockAction<ButtonAction>>('approve_edit', async ({ ack, body, action, client }) => {
    const clickedAt = Date.now();
    // Acked at once: Slack wants the answer within 3 s, and views.open must use the trigger within 3 s too.
    await ack();
    if (!deps.botToken) return;
    const say = (text: string) => deps.tell(client, body, text);
    try {
      const loaded = action.value ? await load(action.value) : null;
      if (!loaded || !action.value) return say(refusalText('not_found'));
      const [state, plan] = loaded;
      const refused = editRefusal(state, plan, body.user.id, new Date().toISOString());
      if (refused) return say(refusalText(refused.reason, refused.message));
      const view = buildOverrideModal(action.value, plan, state);
      if (!(await openView(deps.slackCall, client, body.trigger_id, view, clickedAt))) {
        say('Slack did not open the edit form in time; click again.');
      }
    } catch {
      say(UNAVAILABLE_TEXT);
    }
  });

  app.view<ViewSubmitAction>(OVERRIDE_CALLBACK_ID, async ({ ack, body, view }) => {
    const values = (view.state?.values ?? {}) as SubmittedValues;
    const firstInput = Object.keys(values).find((b) => b.startsWith(OVERRIDE_BLOCK_PREFIX)) ?? 'ov_value';
    const refuseWhole = (text: string) => ack({ response_action: 'errors', errors: { [firstInput]: text } });
    try {
      const requestId = parseMetadata(view.private_metadata);
      const loaded = requestId ? await load(requestId) : null;
      if (!requestId || !loaded) return await refuseWhole(refusalText('not_found'));
      const errors = await applyEdit(deps, requestId, body.user.id, values, ...loaded);
      // An empty answer closes the modal; the message then updates with the edited values.
      return await (errors ? ack({ response_action: 'errors', errors }) : ack());
    } catch {
      // Closing the modal here would look like success: keep it open with the reason instead.
      return refuseWhole(UNAVAILABLE_TEXT);
    }
  });
}

/**
 * Judges the submitted edit, then sends it to the workflow (which re-checks everything but the JSON Schema against
 * the state it has then). Returns the modal's field errors, or null when the edit was applied.
 */
async function applyEdit(
  deps: EditDeps,
  requestId: string,
  userId: string,
  values: SubmittedValues,
  state: RequestState,
  plan: Plan,
): Promise<Record<string, string> | null> {
  const changes = readOverrideChanges(values, plan, state);
  const verdict = judgeOverride(state, plan, userId, changes, new Date().toISOString());
  const outcome = verdict.ok ? await deps.gateway.command(requestId, 'approveWithEdits', { userId, changes }) : verdict;
  if (outcome.ok) return null;
  const message = refusalText(outcome.reason, outcome.message);
  recordRejection(deps, { requestId, action: plan.action, actor: userId, reason: outcome.reason, message });
  return modalErrors(plan, changes, { message, fieldErrors: verdict.ok ? {} : verdict.fieldErrors });
}

/**
 * The request's latest state and its plan (frozen at creation: the first event of its history). Read each time, not
 * cached: edits are rare, and this process must keep nothing of a request past its purge.
 */
function requestLoader(gateway: RequestGateway) {
  const planOf = async (requestId: string): Promise<Plan> => (await gateway.input(requestId)).plan;
  return (requestId: string): Promise<[RequestState, Plan] | null> =>
    Promise.all([gateway.view(requestId), planOf(requestId)]).catch((err: unknown) => {
      if (err instanceof NotFoundError) return null;
      throw err;
    });
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
  { metrics, audit }: EditDeps,
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

/** Rate limits and Slack's own outages are worth another try while the trigger id is still valid. */
function isTransient(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return isRateLimited(err) || code === 'slack_webapi_http_error' || code === 'slack_webapi_request_error';
}

async function openView(
  slackCall: SlackCall,
  client: WebClient,
  triggerId: string,
  view: ModalView,
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
