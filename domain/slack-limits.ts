/**
 * Slack's documented Block Kit limits, as one pure checker: the fake Slack refuses what it flags (as Slack does, the
 * whole message or view), and the renderers' property tests assert it flags nothing they produce. Slack enforces
 * these on its side only: neither the SDK nor its TypeScript types check them.
 *
 * Sources (each limit below names its page):
 * - blocks:       https://api.slack.com/reference/block-kit/blocks (docs.slack.dev/reference/block-kit/blocks/*)
 * - text objects: https://api.slack.com/reference/block-kit/composition-objects#text
 * - elements:     https://api.slack.com/reference/block-kit/block-elements#button, #input (plain-text input)
 * - views:        https://api.slack.com/reference/surfaces/views (docs.slack.dev/reference/views/modal-views)
 * Violations read like Slack's own answers: `must be less than 3001 characters [json-pointer:/blocks/2/text/text]`.
 * Lengths count UTF-16 code units (see text-cut.ts `slackLength`).
 */
import { slackLength } from './text-cut.js';

export const LIMITS = {
  /** blocks: "You can include up to 50 blocks in each message, and 100 blocks in modals or Home tabs." */
  messageBlocks: 50,
  modalBlocks: 100,
  /** blocks#header: text, plain_text only, "Maximum length for the text in this field is 150 characters." */
  headerText: 150,
  /** blocks#section: text "Maximum length ... is 3000 characters"; fields "Maximum number of items is 10.
   * Maximum length for the text in each item is 2000 characters." */
  sectionText: 3000,
  sectionFields: 10,
  sectionFieldText: 2000,
  /** composition-objects#text: text "minimum of 1 and maximum of 3000 characters". */
  textObject: 3000,
  /** blocks#context: elements "Maximum number of items is 10." */
  contextElements: 10,
  /** blocks#actions: elements "There is a maximum of 25 elements in each action block." */
  actionsElements: 25,
  /** blocks (every block): block_id "Maximum length for this field is 255 characters", unique in a message/view. */
  blockId: 255,
  /** block-elements: action_id "Maximum length for this field is 255 characters." */
  actionId: 255,
  /** block-elements#button: text plain_text "maximum length ... 75 characters"; value 2000; url 3000;
   * accessibility_label 75. */
  buttonText: 75,
  buttonValue: 2000,
  buttonUrl: 3000,
  buttonLabel: 75,
  /** blocks#input: label plain_text "Maximum length ... 2000 characters"; hint plain_text 2000. */
  inputLabel: 2000,
  inputHint: 2000,
  /** block-elements#input: initial_value, min_length and max_length at most 3000; placeholder 150. */
  inputValue: 3000,
  inputPlaceholder: 150,
  /** surfaces/views: title, close and submit plain_text, "max length of 24 characters"; private_metadata 3000;
   * callback_id 255. */
  viewButton: 24,
  privateMetadata: 3000,
  callbackId: 255,
  /** block-elements#image and blocks#image: alt_text "Maximum length ... 2000 characters"; image_url 3000. */
  imageAlt: 2000,
  imageUrl: 3000,
  /**
   * Not documented: Slack refuses a message whose blocks carry more than about 12,000 characters of text in all
   * (`msg_blocks_too_long`; measured at ~13,200 with containers counted, slackapi/bolt-js#2509 and #2867, where
   * Slack's team gives "12,000 text characters with a buffer for block containers"). The fake refuses above 12,000;
   * our renderers keep below MESSAGE_TEXT_BUDGET.
   */
  messageBlocksText: 12_000,
} as const;

/** What our renderers allow themselves in one message, safely under Slack's undocumented cumulative limit. */
export const MESSAGE_TEXT_BUDGET = 10_000;

export interface Violation {
  /** JSON pointer into the call's arguments, as Slack reports it (`/blocks/0/text/text`, `/view/title/text`). */
  pointer: string;
  message: string;
}

export const describeViolation = (v: Violation): string => `${v.message} [json-pointer:${v.pointer}]`;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Block types Slack knows (https://api.slack.com/reference/block-kit/blocks); the ones we send are checked deeply. */
const KNOWN_BLOCKS = new Set([
  'actions',
  'context',
  'divider',
  'file',
  'header',
  'image',
  'input',
  'markdown',
  'rich_text',
  'section',
  'video',
]);
const INTERACTIVE_ELEMENTS = new Set([
  'button',
  'checkboxes',
  'datepicker',
  'datetimepicker',
  'email_text_input',
  'file_input',
  'multi_static_select',
  'multi_external_select',
  'multi_users_select',
  'multi_conversations_select',
  'multi_channels_select',
  'number_input',
  'overflow',
  'plain_text_input',
  'radio_buttons',
  'rich_text_input',
  'static_select',
  'external_select',
  'users_select',
  'conversations_select',
  'channels_select',
  'timepicker',
  'url_text_input',
  'workflow_button',
]);

class Checker {
  readonly out: Violation[] = [];
  private readonly blockIds = new Map<string, string>();

  fail(pointer: string, message: string): void {
    this.out.push({ pointer, message });
  }

  maxLength(value: unknown, pointer: string, max: number, required = false): void {
    if (value === undefined || value === null) {
      if (required) this.fail(pointer, `missing required field: ${pointer.split('/').pop() ?? ''}`);
      return;
    }
    if (typeof value !== 'string') return this.fail(pointer, 'must be a string');
    if (required && value.length === 0) return this.fail(pointer, 'must be more than 0 characters');
    if (slackLength(value) > max) this.fail(pointer, `must be less than ${max + 1} characters`);
  }

  /** composition-objects#text: a `plain_text` or `mrkdwn` object with 1 to `max` characters (3000 at most). */
  text(value: unknown, pointer: string, max: number, plainOnly: boolean): void {
    if (!isObject(value))
      return this.fail(pointer, value === undefined ? 'missing required field' : 'must be an object');
    const allowed = plainOnly ? ['plain_text'] : ['plain_text', 'mrkdwn'];
    if (!allowed.includes(value.type as string)) this.fail(`${pointer}/type`, 'must be a valid enum value');
    if (value.type === 'mrkdwn' && value.emoji !== undefined) this.fail(`${pointer}/emoji`, 'not allowed for mrkdwn');
    this.maxLength(value.text, `${pointer}/text`, Math.min(max, LIMITS.textObject), true);
  }

  /** `required`: the array must be there; `min`: how many items at least. */
  items(value: unknown, pointer: string, max: number, required: boolean, min = 0): unknown[] {
    if (value === undefined) {
      if (required) this.fail(pointer, `missing required field: ${pointer.split('/').pop() ?? ''}`);
      return [];
    }
    if (!Array.isArray(value)) {
      this.fail(pointer, 'must be an array');
      return [];
    }
    if (value.length < min) this.fail(pointer, `must provide at least ${min} items`);
    if (value.length > max) this.fail(pointer, `no more than ${max} items allowed`);
    return value;
  }

  blocks(value: unknown, pointer: string, max: number, surface: 'message' | 'modal'): void {
    const blocks = this.items(value, pointer, max, surface === 'modal');
    blocks.forEach((block, i) => this.block(block, `${pointer}/${i}`));
  }

  private block(block: unknown, pointer: string): void {
    if (!isObject(block)) return this.fail(pointer, 'must be an object');
    if (typeof block.type !== 'string') return this.fail(`${pointer}/type`, 'missing required field: type');
    if (!KNOWN_BLOCKS.has(block.type)) return this.fail(`${pointer}/type`, `unsupported type: ${block.type}`);
    this.blockId(block.block_id, `${pointer}/block_id`);
    switch (block.type) {
      case 'header':
        return this.text(block.text, `${pointer}/text`, LIMITS.headerText, true);
      case 'section':
        return this.section(block, pointer);
      case 'context':
        return this.context(block, pointer);
      case 'actions':
        return this.actions(block, pointer);
      case 'input':
        return this.input(block, pointer);
      case 'image':
        this.maxLength(block.alt_text, `${pointer}/alt_text`, LIMITS.imageAlt, true);
        return this.maxLength(block.image_url, `${pointer}/image_url`, LIMITS.imageUrl);
    }
  }

  private blockId(id: unknown, pointer: string): void {
    if (id === undefined) return;
    this.maxLength(id, pointer, LIMITS.blockId, true);
    if (typeof id !== 'string') return;
    const first = this.blockIds.get(id);
    if (first !== undefined) this.fail(pointer, `must be unique: already used at ${first}`);
    else this.blockIds.set(id, pointer);
  }

  private section(block: Json, pointer: string): void {
    if (block.text === undefined && block.fields === undefined) {
      return this.fail(pointer, 'must define either `text` or `fields`');
    }
    if (block.text !== undefined) this.text(block.text, `${pointer}/text`, LIMITS.sectionText, false);
    const fields = this.items(block.fields, `${pointer}/fields`, LIMITS.sectionFields, false);
    fields.forEach((f, i) => this.text(f, `${pointer}/fields/${i}`, LIMITS.sectionFieldText, false));
    if (block.accessory !== undefined) this.element(block.accessory, `${pointer}/accessory`, new Set());
  }

  private context(block: Json, pointer: string): void {
    const elements = this.items(block.elements, `${pointer}/elements`, LIMITS.contextElements, true, 1);
    elements.forEach((e, i) => {
      const at = `${pointer}/elements/${i}`;
      if (isObject(e) && e.type === 'image') return this.maxLength(e.alt_text, `${at}/alt_text`, LIMITS.imageAlt, true);
      this.text(e, at, LIMITS.textObject, false);
    });
  }

  private actions(block: Json, pointer: string): void {
    const elements = this.items(block.elements, `${pointer}/elements`, LIMITS.actionsElements, true, 1);
    const actionIds = new Set<string>();
    elements.forEach((e, i) => this.element(e, `${pointer}/elements/${i}`, actionIds));
  }

  private input(block: Json, pointer: string): void {
    this.text(block.label, `${pointer}/label`, LIMITS.inputLabel, true);
    if (block.hint !== undefined) this.text(block.hint, `${pointer}/hint`, LIMITS.inputHint, true);
    if (block.element === undefined) return this.fail(`${pointer}/element`, 'missing required field: element');
    this.element(block.element, `${pointer}/element`, new Set());
  }

  /** An interactive element; action ids are unique within their block (block-elements: "unique among ... block"). */
  private element(element: unknown, pointer: string, actionIds: Set<string>): void {
    if (!isObject(element)) return this.fail(pointer, 'must be an object');
    const type = element.type;
    if (typeof type !== 'string' || !INTERACTIVE_ELEMENTS.has(type)) {
      if (type === 'image') return this.maxLength(element.alt_text, `${pointer}/alt_text`, LIMITS.imageAlt, true);
      return this.fail(`${pointer}/type`, `unsupported type: ${String(type)}`);
    }
    if (element.action_id !== undefined) {
      this.maxLength(element.action_id, `${pointer}/action_id`, LIMITS.actionId, true);
      if (typeof element.action_id === 'string') {
        if (actionIds.has(element.action_id)) this.fail(`${pointer}/action_id`, 'must be unique within the block');
        actionIds.add(element.action_id);
      }
    }
    if (type === 'button') return this.button(element, pointer);
    if (type === 'plain_text_input') return this.plainTextInput(element, pointer);
  }

  private button(button: Json, pointer: string): void {
    this.text(button.text, `${pointer}/text`, LIMITS.buttonText, true);
    this.maxLength(button.value, `${pointer}/value`, LIMITS.buttonValue);
    this.maxLength(button.url, `${pointer}/url`, LIMITS.buttonUrl);
    this.maxLength(button.accessibility_label, `${pointer}/accessibility_label`, LIMITS.buttonLabel);
    if (button.style !== undefined && button.style !== 'primary' && button.style !== 'danger') {
      this.fail(`${pointer}/style`, 'must be a valid enum value');
    }
  }

  private plainTextInput(input: Json, pointer: string): void {
    this.maxLength(input.initial_value, `${pointer}/initial_value`, LIMITS.inputValue);
    if (input.placeholder !== undefined) {
      this.text(input.placeholder, `${pointer}/placeholder`, LIMITS.inputPlaceholder, true);
    }
    for (const key of ['min_length', 'max_length'] as const) {
      const n = input[key];
      if (n === undefined) continue;
      const low = key === 'max_length' ? 1 : 0;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < low || n > LIMITS.inputValue) {
        this.fail(`${pointer}/${key}`, `must be an integer from ${low} to ${LIMITS.inputValue}`);
      }
    }
  }
}

/** Every text string the blocks carry, summed: what Slack's cumulative `msg_blocks_too_long` limit measures. */
export function blocksTextLength(value: unknown): number {
  if (typeof value === 'string') return 0;
  if (Array.isArray(value)) return value.reduce((sum: number, v) => sum + blocksTextLength(v), 0);
  if (!isObject(value)) return 0;
  return Object.entries(value).reduce(
    (sum, [key, v]) => sum + (key === 'text' && typeof v === 'string' ? slackLength(v) : blocksTextLength(v)),
    0,
  );
}

/** What Slack would refuse in a message's `blocks` (chat.postMessage, chat.update, chat.postEphemeral). */
export function messageViolations(blocks: unknown): Violation[] {
  const check = new Checker();
  check.blocks(blocks, '/blocks', LIMITS.messageBlocks, 'message');
  return check.out;
}

/** What Slack would refuse in a modal `view` (views.open, views.update, views.push). */
export function viewViolations(view: unknown): Violation[] {
  const check = new Checker();
  if (!isObject(view)) {
    check.fail('/view', 'must be an object');
    return check.out;
  }
  if (view.type !== 'modal') check.fail('/view/type', 'must be a valid enum value');
  check.text(view.title, '/view/title', LIMITS.viewButton, true);
  for (const key of ['close', 'submit'] as const) {
    if (view[key] !== undefined) check.text(view[key], `/view/${key}`, LIMITS.viewButton, true);
  }
  check.maxLength(view.private_metadata, '/view/private_metadata', LIMITS.privateMetadata);
  check.maxLength(view.callback_id, '/view/callback_id', LIMITS.callbackId);
  check.maxLength(view.external_id, '/view/external_id', LIMITS.callbackId);
  check.blocks(view.blocks, '/view/blocks', LIMITS.modalBlocks, 'modal');
  const blocks = Array.isArray(view.blocks) ? view.blocks : [];
  const firstInput = blocks.findIndex((b) => isObject(b) && b.type === 'input');
  // surfaces/views: "submit is required when an input block is within the blocks array".
  if (firstInput >= 0 && view.submit === undefined) {
    check.fail(`/view/blocks/${firstInput}/input`, 'must define `submit` to use an `input` block in modals');
  }
  return check.out;
}
