/**
 * The Block Kit limit checker (domain/slack-limits.ts) the fake Slack and the renderers' property tests share: each
 * documented limit accepted at its bound and refused one past it, with the JSON pointer Slack would name.
 */
import {
  blocksTextLength,
  describeViolation,
  LIMITS,
  messageViolations,
  viewViolations,
} from '../../domain/slack-limits.js';

const s = (n: number, ch = 'a') => ch.repeat(n);
const plain = (text: string) => ({ type: 'plain_text', text });
const mrkdwn = (text: string) => ({ type: 'mrkdwn', text });
const button = (fields: Record<string, unknown> = {}) => ({
  type: 'button',
  action_id: 'approve',
  text: plain('Approve'),
  value: 'req_1',
  ...fields,
});
const section = (text: string) => ({ type: 'section', text: mrkdwn(text) });
const input = (fields: Record<string, unknown> = {}) => ({
  type: 'input',
  block_id: 'ov_steps',
  label: plain('steps'),
  element: { type: 'plain_text_input', action_id: 'value' },
  ...fields,
});
const modal = (fields: Record<string, unknown> = {}) => ({
  type: 'modal',
  title: plain('Approve with edits'),
  submit: plain('Approve'),
  close: plain('Cancel'),
  blocks: [section('intro')],
  ...fields,
});

/** [name, blocks at the limit, blocks one past it, the pointer Slack names, the message]. */
const messageCases: Array<[string, (n: number) => unknown[], number, string, string]> = [
  ['header text', (n) => [{ type: 'header', text: plain(s(n)) }], 150, '/blocks/0/text/text', 'must be less than 151'],
  ['section text', (n) => [section(s(n))], 3000, '/blocks/0/text/text', 'must be less than 3001'],
  [
    'section field text',
    (n) => [{ type: 'section', fields: [mrkdwn('a'), mrkdwn(s(n))] }],
    2000,
    '/blocks/0/fields/1/text',
    'must be less than 2001',
  ],
  [
    'section field count',
    (n) => [{ type: 'section', fields: Array.from({ length: n }, () => mrkdwn('a')) }],
    10,
    '/blocks/0/fields',
    'no more than 10 items',
  ],
  [
    'button text',
    (n) => [{ type: 'actions', elements: [button({ text: plain(s(n)) })] }],
    75,
    '/blocks/0/elements/0/text/text',
    'must be less than 76',
  ],
  [
    'button value',
    (n) => [{ type: 'actions', elements: [button({ value: s(n) })] }],
    2000,
    '/blocks/0/elements/0/value',
    'must be less than 2001',
  ],
  [
    'button url',
    (n) => [{ type: 'actions', elements: [button({ url: `https://x.example/${s(n - 18)}` })] }],
    3000,
    '/blocks/0/elements/0/url',
    'must be less than 3001',
  ],
  [
    'action_id',
    (n) => [{ type: 'actions', elements: [button({ action_id: s(n) })] }],
    255,
    '/blocks/0/elements/0/action_id',
    'must be less than 256',
  ],
  ['block_id', (n) => [{ ...section('x'), block_id: s(n) }], 255, '/blocks/0/block_id', 'must be less than 256'],
  [
    'actions elements',
    (n) => [{ type: 'actions', elements: Array.from({ length: n }, (_, i) => button({ action_id: `b${i}` })) }],
    25,
    '/blocks/0/elements',
    'no more than 25 items',
  ],
  [
    'context elements',
    (n) => [{ type: 'context', elements: Array.from({ length: n }, () => mrkdwn('a')) }],
    10,
    '/blocks/0/elements',
    'no more than 10 items',
  ],
  [
    'context text',
    (n) => [{ type: 'context', elements: [mrkdwn(s(n))] }],
    3000,
    '/blocks/0/elements/0/text',
    'must be less than 3001',
  ],
  ['blocks per message', (n) => Array.from({ length: n }, () => section('a')), 50, '/blocks', 'no more than 50 items'],
];

describe('message blocks', () => {
  test.each(messageCases)('%s: accepted at the limit, refused past it', (_name, make, limit, pointer, message) => {
    expect(messageViolations(make(limit))).toEqual([]);
    const over = messageViolations(make(limit + 1));
    expect(over).toEqual([{ pointer, message: expect.stringContaining(message) as string }]);
    expect(describeViolation(over[0]!)).toBe(`${over[0]!.message} [json-pointer:${pointer}]`);
  });

  test('block ids are unique across the message', () => {
    const blocks = [
      { ...section('a'), block_id: 'x' },
      { type: 'actions', block_id: 'x', elements: [button()] },
    ];
    expect(messageViolations(blocks)).toEqual([{ pointer: '/blocks/1/block_id', message: expect.any(String) }]);
  });

  test('action ids are unique within a block, not across blocks', () => {
    const twice = [{ type: 'actions', elements: [button(), button()] }];
    expect(messageViolations(twice).map((v) => v.pointer)).toEqual(['/blocks/0/elements/1/action_id']);
    const apart = [
      { type: 'actions', elements: [button()] },
      { type: 'actions', elements: [button()] },
    ];
    expect(messageViolations(apart)).toEqual([]);
  });

  test.each<[string, unknown, string]>([
    ['an empty text', section(''), '/blocks/0/text/text'],
    ['a header in mrkdwn', { type: 'header', text: mrkdwn('x') }, '/blocks/0/text/type'],
    [
      'a button label in mrkdwn',
      { type: 'actions', elements: [button({ text: mrkdwn('x') })] },
      '/blocks/0/elements/0/text/type',
    ],
    [
      'a text object of no known type',
      { type: 'section', text: { type: 'markdown', text: 'x' } },
      '/blocks/0/text/type',
    ],
    ['a section with neither text nor fields', { type: 'section' }, '/blocks/0'],
    [
      'a button without a label',
      { type: 'actions', elements: [{ type: 'button', action_id: 'a' }] },
      '/blocks/0/elements/0/text',
    ],
    ['an empty actions block', { type: 'actions', elements: [] }, '/blocks/0/elements'],
    ['an unknown block type', { type: 'sections', text: mrkdwn('x') }, '/blocks/0/type'],
    [
      'a button style Slack does not have',
      { type: 'actions', elements: [button({ style: 'warning' })] },
      '/blocks/0/elements/0/style',
    ],
    ['emoji on mrkdwn', { type: 'section', text: { ...mrkdwn('x'), emoji: true } }, '/blocks/0/text/emoji'],
  ])('refuses %s', (_name, block, pointer) => {
    expect(messageViolations([block]).map((v) => v.pointer)).toContain(pointer);
  });

  test('lengths count UTF-16 code units: 1,500 emoji are 3,000 and fit a section, one more does not', () => {
    expect(messageViolations([section('😀'.repeat(1500))])).toEqual([]);
    expect(messageViolations([section(`${'😀'.repeat(1500)}a`)])).toHaveLength(1);
  });

  test('blocksTextLength sums every text string, the measure of the cumulative limit', () => {
    const blocks = [
      { type: 'header', text: plain(s(100)) },
      { type: 'section', fields: [mrkdwn(s(10)), mrkdwn(s(20))], text: mrkdwn(s(5)) },
      { type: 'actions', elements: [button({ text: plain(s(7)), value: s(999) })] },
    ];
    expect(blocksTextLength(blocks)).toBe(142);
    expect(LIMITS.messageBlocksText).toBe(12_000);
  });
});

describe('modal views', () => {
  const viewCases: Array<[string, (n: number) => Record<string, unknown>, number, string, string]> = [
    ['title', (n) => modal({ title: plain(s(n)) }), 24, '/view/title/text', 'must be less than 25'],
    ['submit', (n) => modal({ submit: plain(s(n)) }), 24, '/view/submit/text', 'must be less than 25'],
    ['close', (n) => modal({ close: plain(s(n)) }), 24, '/view/close/text', 'must be less than 25'],
    [
      'private_metadata',
      (n) => modal({ private_metadata: s(n) }),
      3000,
      '/view/private_metadata',
      'must be less than 3001',
    ],
    [
      'blocks per modal',
      (n) => modal({ blocks: Array.from({ length: n }, () => section('a')) }),
      100,
      '/view/blocks',
      'no more than 100 items',
    ],
    [
      'input label',
      (n) => modal({ blocks: [input({ label: plain(s(n)) })] }),
      2000,
      '/view/blocks/0/label/text',
      'must be less than 2001',
    ],
    [
      'input hint',
      (n) => modal({ blocks: [input({ hint: plain(s(n)) })] }),
      2000,
      '/view/blocks/0/hint/text',
      'must be less than 2001',
    ],
    [
      'plain_text_input initial_value',
      (n) =>
        modal({ blocks: [input({ element: { type: 'plain_text_input', action_id: 'value', initial_value: s(n) } })] }),
      3000,
      '/view/blocks/0/element/initial_value',
      'must be less than 3001',
    ],
  ];

  test.each(viewCases)('%s: accepted at the limit, refused past it', (_name, make, limit, pointer, message) => {
    expect(viewViolations(make(limit))).toEqual([]);
    expect(viewViolations(make(limit + 1))).toEqual([{ pointer, message: expect.stringContaining(message) as string }]);
  });

  test('an input block needs a submit button; the title is plain_text and required', () => {
    const { submit: _submit, ...noSubmit } = modal({ blocks: [section('a'), input()] });
    expect(viewViolations(noSubmit).map((v) => v.pointer)).toEqual(['/view/blocks/1/input']);
    const { title: _title, ...untitled } = modal();
    expect(viewViolations(untitled).map((v) => v.pointer)).toEqual(['/view/title']);
    expect(viewViolations(modal({ title: mrkdwn('x') })).map((v) => v.pointer)).toEqual(['/view/title/type']);
    expect(viewViolations({ ...modal(), type: 'home' }).map((v) => v.pointer)).toEqual(['/view/type']);
  });
});
