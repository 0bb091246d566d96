import { allHandlersFinished, condition, setHandler } from '@temporalio/workflow';
import type { SignalDefinition, UpdateDefinition } from '@temporalio/common';
import type { Command } from '../domain/request-state.js';
import { run } from './activities.js';
import * as msg from './messages.js';
import { ApprovalRequest } from './request.js';
import { syncSlackMessage } from './slack-message.js';
import { runTimers } from './timers.js';

export type { GuardSinks } from './request.js';

/**
 * One approval request (workflow id = request id). The policy's plan is frozen in the input; timers drive
 * escalation and expiry; Updates and Signals carry persona acks and decisions through one reducer, held by
 * `ApprovalRequest`; the Slack message follows the state.
 */
export async function approvalWorkflow(input: msg.ApprovalInput): Promise<msg.RequestView> {
  const req = new ApprovalRequest(input);
  req.report([{ type: 'request_created', actor: input.agent ?? input.request.meta.requester.id }]);
  // Before anything awaits: an Update that arrived with the start is applied as soon as its handler is set.
  const bind = <I>(
    update: UpdateDefinition<msg.RequestView, [msg.Addressed<I>]>,
    signal: SignalDefinition<[msg.Clicked<I>]>,
    toCommand: (i: I) => Command,
  ) => {
    setHandler(
      update,
      ({ requestId, ...i }: msg.Addressed<I>) => {
        req.checkAddress(requestId);
        return req.apply(toCommand(i as I));
      },
      {
        validator: ({ requestId, ...i }: msg.Addressed<I>) => {
          req.checkAddress(requestId);
          req.validate(toCommand(i as I));
        },
      },
    );
    setHandler(signal, ({ clickId, replyTo, requestId, ...i }: msg.Clicked<I>) =>
      req.click(toCommand(i as I), { clickId, replyTo, requestId }),
    );
  };
  bind(msg.personaAckUpdate, msg.personaAckSignal, (i) => ({ type: 'persona_ack', ...i }));
  bind(msg.approveUpdate, msg.approveSignal, (i) => ({ type: 'approve', ...i }));
  bind(msg.denyUpdate, msg.denySignal, (i) => ({ type: 'deny', ...i }));
  bind(msg.approveWithEditsUpdate, msg.approveWithEditsSignal, (i) => ({ type: 'override', ...i }));
  bind(msg.cancelUpdate, msg.cancelSignal, (i) => ({ type: 'cancel', ...i }));
  bind(msg.adminDecisionUpdate, msg.adminDecisionSignal, (i) => ({ type: 'admin_decision', ...i }));
  setHandler(msg.stateQuery, () => req.view());

  const slackDone = syncSlackMessage(req);
  await runTimers(req);
  // The archive needs the message's address, not its final render: both go out in the deciding task, or in the one
  // after it on a slow Slack.
  if (!req.postSettled) await condition(() => req.postSettled);
  if (req.splitsDecision) await req.afterDecisionRecorded();
  // Completing is what says "archived": the run cannot complete before its line is written, and the purge sweeper
  // deletes completed runs only (activities/purge.ts). A search attribute for it cost a visibility write per request.
  await Promise.all([slackDone, run('archiveRequest', { input, final: req.view() })]);
  const done = () => req.idle && allHandlersFinished();
  if (!done()) await condition(done);
  return req.view();
}
