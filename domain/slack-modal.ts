/**
 * The approve-with-edits modal of SPEC section 4 (its identifiers are part of the Slack contract), rendered within
 * Slack's view limits (domain/slack-limits.ts) for any policy `policy:check` accepts: at most 100 blocks, every key it
 * cannot offer named in the modal itself, values too long to prefill said so.
 */
import type { Plan } from './plan.js';
import { redactParams, REDACTED } from './redaction.js';
import type { RequestState } from './request-state.js';
import { LIMITS } from './slack-limits.js';
import { characters, escapeMrkdwn, fitText, slackLength } from './text-cut.js';

export const OVERRIDE_CALLBACK_ID = 'override_submit';
export const OVERRIDE_BLOCK_PREFIX = 'ov_';
export const OVERRIDE_ACTION_ID = 'value';

export type ModalView = Record<string, unknown>;

/** The intro, the inputs and one note about what is not editable here. */
const MAX_INPUTS = LIMITS.modalBlocks - 2;

const plain = (text: string, max: number) => ({ type: 'plain_text', text: fitText(text, max).text, emoji: true });

/** `ov_<key>`, or null when the key makes it longer than Slack takes for a block id. */
export function overrideBlockId(key: string): string | null {
  const id = `${OVERRIDE_BLOCK_PREFIX}${key}`;
  return slackLength(id) <= LIMITS.blockId ? id : null;
}

/** One input per override key, prefilled with the current effective value (never with a redacted one). */
export function buildOverrideModal(requestId: string, plan: Plan, state: RequestState): ModalView {
  const shown = redactParams(state.effectiveParams, plan.redaction);
  const offerable = plan.overrides.keys.filter((key) => overrideBlockId(key) !== null);
  const offered = offerable.slice(0, MAX_INPUTS);
  const left = plan.overrides.keys.filter((key) => !offered.includes(key));
  const intro =
    `*${fitText(escapeMrkdwn(plan.action), 300).text}* · \`${escapeMrkdwn(requestId)}\`\nChange the values to run ` +
    `with. Submitting approves the edited request; approvals given to the current values stop counting.`;
  return {
    type: 'modal',
    callback_id: OVERRIDE_CALLBACK_ID,
    private_metadata: JSON.stringify({ request_id: requestId }),
    title: plain('Approve with edits', LIMITS.viewButton),
    submit: plain('Approve', LIMITS.viewButton),
    close: plain('Cancel', LIMITS.viewButton),
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: fitText(intro, LIMITS.sectionText).text } },
      ...offered.map((key) => inputBlock(key, state.effectiveParams[key], shown[key] === REDACTED, plan)),
      ...notEditableHere(left, offerable.length - offered.length),
    ],
  };
}

/** The keys this modal cannot offer, by name, so nobody thinks they were never editable. */
function notEditableHere(keys: string[], overflow: number): Array<Record<string, unknown>> {
  if (keys.length === 0) return [];
  const names = keys.map((k) => `\`${fitText(escapeMrkdwn(k), 60, { note: () => '…' }).text}\``).join(', ');
  const why =
    overflow > 0
      ? `A Slack modal holds ${MAX_INPUTS} fields`
      : 'Their names are longer than Slack allows for a field id';
  const text =
    `*Not editable here* (${keys.length} key${keys.length === 1 ? '' : 's'}): ${why}. They keep their current ` +
    `values; to change them, deny and ask for a new request. ${names}`;
  return [{ type: 'context', elements: [{ type: 'mrkdwn', text: fitText(text, LIMITS.textObject).text }] }];
}

function inputBlock(key: string, current: unknown, hidden: boolean, plan: Plan) {
  const initial = hidden ? undefined : asText(current);
  const prefilled = initial !== undefined && initial !== '' && slackLength(initial) <= LIMITS.inputValue;
  const description = propertySchema(plan, key)?.description;
  const hint = hidden
    ? 'The current value is hidden; leave empty to keep it.'
    : initial !== undefined && initial !== '' && !prefilled
      ? `The current value (${characters(Array.from(initial).length)}) is too long to show here; leave empty to ` +
        `keep it, or type the whole new value (at most ${characters(LIMITS.inputValue)}).`
      : typeof description === 'string' && description.trim() !== ''
        ? description
        : undefined;
  return {
    type: 'input',
    block_id: overrideBlockId(key),
    optional: true,
    label: plain(key, LIMITS.inputLabel),
    element: {
      type: 'plain_text_input',
      action_id: OVERRIDE_ACTION_ID,
      ...(prefilled ? { initial_value: initial } : {}),
      ...((initial ?? '').length > 60 || (initial ?? '').includes('\n') ? { multiline: true } : {}),
    },
    ...(hint ? { hint: plain(hint, LIMITS.inputHint) } : {}),
  };
}

export function asText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  return typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value);
}

export function propertySchema(plan: Plan, key: string): Record<string, unknown> | undefined {
  const properties = plan.overrides.schema?.properties;
  if (!properties || typeof properties !== 'object') return undefined;
  const property = (properties as Record<string, unknown>)[key];
  return property && typeof property === 'object' ? (property as Record<string, unknown>) : undefined;
}
