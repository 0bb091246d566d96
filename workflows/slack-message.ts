import { ActivityFailure, condition, log } from '@temporalio/workflow';
import type { Notification, RequestState } from '../domain/request-state.js';
import { run } from './activities.js';
import type { PostOutcome, SlackRef, UpdateHint } from './messages.js';
import { SLOW_SLACK_MS, type ApprovalRequest } from './request.js';

/**
 * Keeps the Slack message equal to the state: posts it once (the outcome becomes the request's `notification`),
 * then renders the latest state whenever the version moved. A burst of changes becomes one update, and Slack
 * being down never blocks a decision.
 */
export async function syncSlackMessage(req: ApprovalRequest): Promise<void> {
  const shown = req.state;
  const posted = await post(req, shown);
  const before = req.state.version;
  req.notify(notificationOf(posted));
  if (posted.slack !== 'posted') return;
  const ref: SlackRef = { channel: posted.channel, ts: posted.ts };
  // The post shows the state it was given; anything that changed while Slack answered is rendered next (the
  // notification itself changes nothing on screen).
  let rendered = before === shown.version ? req.state.version : shown.version;
  let hint: UpdateHint = posted;
  // Each `await` and `condition()` costs promises, and each promise a stack trace in the SDK (docs/performance.md,
  // "Fewer promises per approval"): none is made for what is already true.
  if (threadDue(req, shown, hint)) await threadParams(req, shown, ref);
  while (!(req.decided && rendered === req.state.version)) {
    if (req.state.version === rendered) await condition(() => req.state.version !== rendered);
    // The worker's update queue asks for a pause so a burst becomes one update; a decision goes out at once.
    if (hint.coalesceMs && !req.decided) await condition(() => req.decided, hint.coalesceMs);
    // On a slow Slack, the decision reaches the waiting agent before Slack is asked to show it.
    if (req.decided && req.splitsDecision) await req.afterDecisionRecorded();
    const snapshot = req.state;
    hint = await update(req, snapshot, ref);
    if (threadDue(req, snapshot, hint)) await threadParams(req, snapshot, ref);
    rendered = snapshot.version;
  }
}

/** The escalation notice, in the request's thread once the post settled (or alone when there is no message). */
export async function postEscalationNotice(req: ApprovalRequest): Promise<void> {
  if (!req.postSettled) await condition(() => req.postSettled);
  const { request, plan } = req.input;
  await run('postEscalationNotice', { request, plan, state: req.state, ref: req.slackRef });
}

function post(req: ApprovalRequest, state: RequestState): Promise<PostOutcome> {
  const { request, plan } = req.input;
  return run('postRequestMessage', { request, plan, state }).then(
    (outcome) => {
      // The address first: the view recorded with the notification then says where the message is.
      if (outcome.slack === 'posted') {
        req.slackRef = { channel: outcome.channel, ts: outcome.ts };
        req.splitsDecision = (outcome.postMs ?? 0) >= SLOW_SLACK_MS;
      }
      return outcome;
    },
    (err: unknown) => {
      // Retries ran out (Slack down for the whole hour) or a refusal the activity did not turn into an outcome.
      const error = failureMessage(err);
      log.error('posting the Slack message failed', { error });
      return { slack: 'failed', error };
    },
  );
}

function update(req: ApprovalRequest, state: RequestState, ref: SlackRef): Promise<UpdateHint> {
  const { request, plan } = req.input;
  return run('updateRequestMessage', { request, plan, state, ref }).then(
    (hint) => hint ?? {},
    (err: unknown) => {
      log.error('updating the Slack message failed', { error: failureMessage(err) });
      return {};
    },
  );
}

/** The full params go to the message's thread when the message could not show them: once per payload hash. */
function threadDue(req: ApprovalRequest, state: RequestState, hint: UpdateHint): boolean {
  return Boolean(hint.paramsCut) && !req.paramsThreaded.has(state.payloadHash);
}

function threadParams(req: ApprovalRequest, state: RequestState, ref: SlackRef): Promise<void> {
  req.paramsThreaded.add(state.payloadHash);
  const { request, plan } = req.input;
  return run('postParamsThread', { request, plan, state, ref }).then(
    () => undefined,
    (err: unknown) => {
      log.error('posting the params thread failed', { error: failureMessage(err) });
    },
  );
}

function notificationOf(outcome: PostOutcome): Notification {
  if (outcome.slack !== 'posted') return outcome;
  return {
    slack: 'posted',
    ...(outcome.permalink ? { permalink: outcome.permalink } : {}),
    ...(outcome.fallback ? { fallback: outcome.fallback } : {}),
  };
}

/** An activity's own failure message (`slack_channel_not_found: ...`), not the SDK's wrapper around it. */
function failureMessage(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}
