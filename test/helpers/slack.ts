/**
 * Act as Slack towards our interactivity endpoint: build block_actions / view_submission payloads shaped like the
 * ones Slack sends, encode them the way Slack does (`payload=<JSON>` form body) and sign them with the v0 scheme.
 * They live in dev/ (the load harness and the dev walkthrough use them too) and are re-exported here.
 */
import type { FakeSlack } from '../../dev/fake-slack.js';

export {
  blockActionPayload,
  formBody,
  INTERACTIONS_PATH,
  newTriggerId,
  signSlackRequest,
  type BlockActionOptions,
  type BlockActionPayload,
  type ButtonAction,
  type SlackSignedHeaders,
  type SlackUser,
} from '../../dev/slack-signing.js';
export {
  sendInteraction,
  viewSubmissionPayload,
  type InputValues,
  type InteractionResponse,
  type SendInteractionOptions,
  type ViewSubmissionOptions,
  type ViewSubmissionPayload,
} from '../../dev/slack-interactions.js';

/**
 * Fails when the service sent the fake Slack something it refused that no test asked for (a fault injected, a channel
 * declared missing): a refusal Slack would give too, so a real workspace would miss that message.
 */
export function expectNoUnexpectedRefusals(fake: FakeSlack): void {
  const refused = fake.unexpectedRefusals();
  if (refused.length === 0) return;
  const lines = refused.map((c) => `  ${c.method} (${c.status}): ${JSON.stringify(c.response)}`);
  throw new Error(`Slack refused ${refused.length} call(s) no test asked for:\n${lines.join('\n')}`);
}
