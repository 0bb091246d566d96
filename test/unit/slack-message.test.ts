import type { Plan } from '../../domain/plan.js';
import { REDACTED } from '../../domain/redaction.js';
import { initialState, reduce, type Command, type RequestState } from '../../domain/request-state.js';
import {
  blocksTextLength,
  describeViolation,
  MESSAGE_TEXT_BUDGET,
  messageViolations,
  viewViolations,
} from '../../domain/slack-limits.js';
import {
  DECISION_BLOCK_PREFIX,
  PARAMS_BLOCK_PREFIX,
  renderEscalationNotice,
  renderMinimalMessage,
  renderRequestMessage,
  renderThreadDetails,
  type Block,
  type SlackMessage,
} from '../../domain/slack-message.js';
import { buildOverrideModal } from '../../domain/slack-modal.js';
import { makePlan, makeRequest } from '../fixtures/plans.js';

const NOW = '2030-01-01T00:10:00.000Z';
const SECRET = 'hunter2-do-not-show';
const request = makeRequest({ params: { database: 'billing_primary', secret_value: SECRET, steps: 3 } });

function plan(overrides: Partial<Plan> = {}): Plan {
  return makePlan({
    approvers: ['U0ALICE', 'U0BOB', 'U0CAROL'],
    minApprovals: 2,
    personas: [
      { name: 'Security', members: ['U0SEC'] },
      { name: 'DBA', members: [] },
    ],
    redaction: { mode: 'denylist', keys: ['secret_value'] },
    ...overrides,
  });
}

function stateAfter(p: Plan, commands: Command[], of = request): RequestState {
  let state = initialState({
    requestId: 'req_42',
    request: of,
    plan: p,
    createdAt: '2030-01-01T00:00:00.000Z',
    expiresAt: '2030-01-01T01:00:00.000Z',
  });
  for (const command of commands) {
    const t = reduce(state, p, command, NOW);
    if (!t.ok) throw new Error(`${command.type} refused: ${t.reason}`);
    state = t.state;
  }
  return state;
}

const ACKED: Command[] = [
  { type: 'persona_ack', persona: 'Security', userId: 'U0SEC' },
  { type: 'persona_ack', persona: 'DBA', userId: 'U0BOB' },
];

const actionsBlocks = (m: SlackMessage) => m.blocks.filter((b) => b.type === 'actions');
const buttons = (m: SlackMessage) =>
  actionsBlocks(m).flatMap((b) => b.elements as Array<{ action_id: string; value: string }>);
const actionIds = (m: SlackMessage) => buttons(m).map((b) => b.action_id);
const text = (m: SlackMessage) => JSON.stringify(m);

describe('buttons follow the lifecycle', () => {
  test.each<[string, Partial<Plan>, Command[], string[]]>([
    ['both personas pending: persona buttons only', {}, [], ['persona_ack:Security', 'persona_ack:DBA']],
    [
      'one persona acked: only the other persona’s button',
      {},
      [{ type: 'persona_ack', persona: 'Security', userId: 'U0SEC' }],
      ['persona_ack:DBA'],
    ],
    ['personas done: approve and deny', {}, ACKED, ['approve', 'deny']],
    [
      'personas done, overrides allowed: approve_edit too',
      { overrides: { allowed: true, keys: ['steps'], schema: null, maxKeys: 10, maxChars: 100 } },
      ACKED,
      ['approve', 'deny', 'approve_edit'],
    ],
    ['no personas required: decision buttons at once', { personas: [] }, [], ['approve', 'deny']],
    [
      'one of two approvals given: buttons stay',
      {},
      [...ACKED, { type: 'approve', userId: 'U0ALICE' }],
      ['approve', 'deny'],
    ],
    [
      'approved: no buttons at all',
      {},
      [...ACKED, { type: 'approve', userId: 'U0ALICE' }, { type: 'approve', userId: 'U0BOB' }],
      [],
    ],
    ['cancelled while personas were pending: no buttons at all', {}, [{ type: 'cancel', actor: 'U_REQ' }], []],
    ['expired: no buttons at all', {}, [{ type: 'expire' }], []],
  ])('%s', (_name, overrides, commands, expected) => {
    const p = plan(overrides);
    const message = renderRequestMessage(request, p, stateAfter(p, commands));
    expect(actionIds(message)).toEqual(expected);
    if (expected.length === 0) expect(actionsBlocks(message)).toEqual([]);
  });

  test('every button carries the request id as its value', () => {
    const p = plan({ overrides: { allowed: true, keys: ['steps'], schema: null, maxKeys: 10, maxChars: 100 } });
    for (const commands of [[], ACKED]) {
      const values = buttons(renderRequestMessage(request, p, stateAfter(p, commands))).map((b) => b.value);
      expect(values.length).toBeGreaterThan(0);
      expect(new Set(values)).toEqual(new Set(['req_42']));
    }
  });

  test('the decision block id carries the payload hash the clicker sees, and follows edits', () => {
    const p = plan({
      personas: [],
      overrides: { allowed: true, keys: ['steps'], schema: null, maxKeys: 10, maxChars: 100 },
    });
    const before = stateAfter(p, []);
    const after = stateAfter(p, [{ type: 'override', userId: 'U0ALICE', changes: { steps: 5 } }]);
    const blockId = (s: RequestState) => actionsBlocks(renderRequestMessage(request, p, s))[0]?.block_id;
    expect(blockId(before)).toBe(`${DECISION_BLOCK_PREFIX}${before.payloadHash}`);
    expect(blockId(after)).toBe(`${DECISION_BLOCK_PREFIX}${after.payloadHash}`);
    expect(after.payloadHash).not.toBe(before.payloadHash);
  });
});

describe('progress and outcome', () => {
  const context = (m: SlackMessage) =>
    JSON.stringify(m.blocks.filter((b: Block) => b.type === 'context').map((b) => b.elements));

  test('shows "1 of 2" approvals with who approved', () => {
    const p = plan();
    const message = renderRequestMessage(request, p, stateAfter(p, [...ACKED, { type: 'approve', userId: 'U0ALICE' }]));
    expect(context(message)).toContain('Approvals: 1 of 2');
    expect(context(message)).toContain('<@U0ALICE>');
    expect(message.text).toContain('1 of 2');
  });

  test('shows which persona acknowledged and which is pending', () => {
    const p = plan();
    const message = renderRequestMessage(
      request,
      p,
      stateAfter(p, [{ type: 'persona_ack', persona: 'Security', userId: 'U0SEC' }]),
    );
    expect(text(message)).toContain('*Security* acknowledged by <@U0SEC>');
    expect(text(message)).toContain('*DBA* pending');
  });

  test.each<[string, Command[], string, string]>([
    [
      'approved names the deciding approver',
      [...ACKED, { type: 'approve', userId: 'U0ALICE' }, { type: 'approve', userId: 'U0BOB' }],
      '*Approved* by <@U0BOB>',
      'approved by U0BOB',
    ],
    [
      'denied names the denier and the reason',
      [{ type: 'deny', userId: 'U0CAROL', reason: 'freeze week' }],
      '*Denied* by <@U0CAROL>: freeze week',
      'denied by U0CAROL',
    ],
    ['cancelled names who cancelled', [{ type: 'cancel', actor: 'U0REQ' }], '*Cancelled* by <@U0REQ>', 'cancelled'],
    [
      'admin decisions name the admin',
      [{ type: 'admin_decision', decision: 'approve', actor: 'admin:ops', breakGlass: true }],
      '*Approved* by admin:ops — 🚨 *admin break-glass*',
      'approved by admin:ops',
    ],
    ['expired names nobody', [{ type: 'expire' }], '*Expired*', 'expired'],
  ])('%s', (_name, commands, outcome, summary) => {
    const p = plan();
    const state = stateAfter(p, commands);
    const message = renderRequestMessage(request, p, state);
    const sections = message.blocks.filter((b) => b.type === 'section').map((b) => JSON.stringify(b.text ?? ''));
    expect(sections.some((s) => s.includes(outcome))).toBe(true);
    expect(message.text).toContain(summary);
    expect(actionsBlocks(message)).toEqual([]);
    expect(context(message)).not.toContain('Expires');
  });

  test('expired does not claim a system user decided', () => {
    const p = plan();
    expect(text(renderRequestMessage(request, p, stateAfter(p, [{ type: 'expire' }])))).not.toContain('by system');
  });
});

describe('redaction in the rendered message', () => {
  const scenarios: Array<[string, Command[]]> = [
    ['initial', []],
    ['personas done', ACKED],
    ['approved', [...ACKED, { type: 'approve', userId: 'U0ALICE' }, { type: 'approve', userId: 'U0BOB' }]],
    ['denied', [{ type: 'deny', userId: 'U0ALICE' }]],
  ];

  test.each(scenarios)('a hidden value never appears in the JSON (%s)', (_name, commands) => {
    const p = plan();
    const message = renderRequestMessage(request, p, stateAfter(p, commands));
    expect(text(message)).not.toContain(SECRET);
    expect(text(message)).toContain(REDACTED);
    expect(text(message)).toContain('billing_primary');
  });

  test.each<[Plan['redaction'], string[], string[]]>([
    [{ mode: 'all', keys: [] }, [], ['billing_primary', SECRET]],
    [{ mode: 'allowlist', keys: ['database'] }, ['billing_primary'], [SECRET]],
    [{ mode: 'none', keys: [] }, ['billing_primary', SECRET], []],
  ])('mode %j', (redaction, shown, hidden) => {
    const p = plan({ redaction });
    const json = text(renderRequestMessage(request, p, stateAfter(p, [])));
    for (const value of shown) expect(json).toContain(value);
    for (const value of hidden) expect(json).not.toContain(value);
  });

  test('an edited hidden value stays hidden, before and after', () => {
    const p = plan({
      personas: [],
      redaction: { mode: 'denylist', keys: ['secret_value'] },
      overrides: { allowed: true, keys: ['secret_value'], schema: null, maxKeys: 10, maxChars: 100 },
    });
    const state = stateAfter(p, [{ type: 'override', userId: 'U0ALICE', changes: { secret_value: 'new-secret-42' } }]);
    const json = text(renderRequestMessage(request, p, state));
    expect(json).not.toContain(SECRET);
    expect(json).not.toContain('new-secret-42');
  });

  test('the escalation notice shows no params at all', () => {
    const p = plan({ escalation: { escalateBeforeSec: 60, channel: 'C0ESC', minApprovals: 3 } });
    const state = stateAfter(p, [{ type: 'escalate' }]);
    const notice = renderEscalationNotice(request, state);
    expect(text(notice)).not.toContain(SECRET);
    expect(notice.text).toContain('0 of 3');
    expect(notice.text).toContain('req_42');
  });
});

describe('issue 14: what agents really send fits Slack, and nothing is hidden', () => {
  const unescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  const sectionTexts = (m: SlackMessage) =>
    m.blocks.map((b) => (b.text as { text?: string } | undefined)?.text ?? '').filter(Boolean);
  const paramsIn = (messages: SlackMessage[]) =>
    JSON.parse(
      messages
        .flatMap((m) => m.blocks)
        .filter((b) => String(b.block_id).startsWith(PARAMS_BLOCK_PREFIX))
        .map((b) => unescape((b.text as { text: string }).text.replace(/^\*Parameters\*\n/, '').slice(3, -3)))
        .join(''),
    ) as unknown;
  const expectFits = (m: SlackMessage) => {
    expect(messageViolations(m.blocks).map(describeViolation)).toEqual([]);
    expect(blocksTextLength(m.blocks)).toBeLessThanOrEqual(MESSAGE_TEXT_BUDGET);
  };
  const p = plan({ personas: [] });

  test('a 3,800-character justification is shown whole, across two sections', () => {
    const justification = `${'Because the index is missing, checkout queries scan the table. '.repeat(60)}`.slice(
      0,
      3800,
    );
    const r = makeRequest({ meta: { ...request.meta, justification } });
    const m = renderRequestMessage(r, p, stateAfter(p, [], r));
    expectFits(m);
    expect(m.cut).toEqual({ params: false, justification: false, links: false });
    const shown = sectionTexts(m).filter((t) => !t.startsWith('*Parameters*'));
    expect(unescape(shown.join('')).replace('*Justification*\n', '')).toContain(justification);
  });

  test('40 params with one 8 KB value: said plainly in the message, every param in the thread', () => {
    const params: Record<string, unknown> = Object.fromEntries(
      Array.from({ length: 40 }, (_, i) => [`key_${i}`, `value ${i}`]),
    );
    params.key_7 = 'x'.repeat(8192);
    const r = makeRequest({ params });
    const state = stateAfter(p, [], r);
    const m = renderRequestMessage(r, p, state);
    expectFits(m);
    expect(m.cut.params).toBe(true);
    expect(JSON.stringify(m.blocks)).toContain('too long to show here');
    expect(JSON.stringify(m.blocks)).toContain("Read the full parameters in this message's thread");
    expect(actionIds(m)).toEqual(['approve', 'deny']);
    const thread = renderThreadDetails(r, p, state, m.cut);
    thread.forEach(expectFits);
    expect(paramsIn(thread)).toEqual(params);
  });

  test.each([
    ['emoji', '😀'],
    ['CJK', '漢'],
    ['ZWJ families', '👨‍👩‍👧‍👦'],
  ])('2,000 %s at the cut: no broken character, the rest in the thread', (_name, unit) => {
    const justification = `${'a'.repeat(1999)}${unit.repeat(2000)}`.slice(0, 4000);
    const r = makeRequest({ params: { note: unit.repeat(2000) }, meta: { ...request.meta, justification } });
    const state = stateAfter(p, [], r);
    const m = renderRequestMessage(r, p, state);
    expectFits(m);
    expect(JSON.stringify(m)).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
    const messages = m.cut.params ? renderThreadDetails(r, p, state, m.cut) : [m];
    expect(paramsIn(messages)).toEqual({ note: unit.repeat(2000) });
  });

  test('a decision after such a request updates within the limits and names the decider', () => {
    const r = makeRequest({ params: { blob: '漢'.repeat(5000) } });
    const m = renderRequestMessage(
      r,
      p,
      stateAfter(p, [{ type: 'deny', userId: 'U0ALICE', reason: 'no. '.repeat(2000) }]),
    );
    expectFits(m);
    expect(JSON.stringify(m.blocks)).toContain('*Denied* by <@U0ALICE>');
    expect(actionIds(m)).toEqual([]);
  });

  test('agent text cannot mention @channel or forge a link; meta.links become safe links', () => {
    const r = makeRequest({
      meta: {
        ...request.meta,
        justification: 'please <!channel> see <https://evil.example|the docs> & more',
        links: ['https://ci.example/run?id=1&x=<y>|z', 'not a url <!here>'],
      },
    });
    const m = renderRequestMessage(r, p, stateAfter(p, [], r));
    expectFits(m);
    const json = JSON.stringify(m.blocks);
    expect(json).toContain('please &lt;!channel&gt; see &lt;https://evil.example|the docs&gt; &amp; more');
    expect(json).toContain('<https://ci.example/run?id=1&amp;x=%3Cy%3E%7Cz|ci.example/run?id=1&amp;x=%3Cy%3E%7Cz>');
    expect(json).toContain('not a url &lt;!here&gt;');
    expect(json).not.toContain('<!');
  });

  test("the action's policy description is shown", () => {
    const described = plan({ personas: [], description: 'Applies a schema migration to <prod>' });
    const m = renderRequestMessage(request, described, stateAfter(described, []));
    expect(JSON.stringify(m.blocks)).toContain('Applies a schema migration to &lt;prod&gt;');
  });

  test('30 personas, one named longer than a Slack action id: 25 buttons, the rest said', () => {
    const personas = [
      ...Array.from({ length: 29 }, (_, i) => ({ name: `Persona${i}`, members: [] })),
      { name: 'P'.repeat(300), members: [] },
    ];
    const many = plan({ personas });
    const m = renderRequestMessage(request, many, stateAfter(many, []));
    expectFits(m);
    expect(actionIds(m)).toHaveLength(25);
    expect(JSON.stringify(m.blocks)).toContain('4 more persona buttons appear as these are acknowledged');
    expect(JSON.stringify(m.blocks)).toContain('too long for a Slack button');
  });

  test('the minimal fallback keeps the buttons and points at the thread', () => {
    const m = renderMinimalMessage(request, p, stateAfter(p, []));
    expectFits(m);
    expect(actionIds(m)).toEqual(['approve', 'deny']);
    expect(JSON.stringify(m.blocks)).toContain(`Request: req_42`);
  });
});

describe('the edit modal fits Slack', () => {
  const editable = (keys: string[]) =>
    plan({ personas: [], overrides: { allowed: true, keys, schema: null, maxKeys: 10, maxChars: 5000 } });

  test('a 2,900-character editable value is prefilled whole; a 3,500-character one is said, not prefilled', () => {
    const p = editable(['sql', 'big']);
    const r = makeRequest({ params: { sql: 's'.repeat(2900), big: 'b'.repeat(3500) } });
    const state = initialState({ requestId: 'req_42', request: r, plan: p, createdAt: NOW, expiresAt: NOW });
    const view = buildOverrideModal('req_42', p, state);
    expect(viewViolations(view).map(describeViolation)).toEqual([]);
    const inputs = (view.blocks as Block[]).filter((b) => b.type === 'input');
    expect((inputs[0]!.element as Record<string, unknown>).initial_value).toBe('s'.repeat(2900));
    expect((inputs[1]!.element as Record<string, unknown>).initial_value).toBeUndefined();
    expect(JSON.stringify(inputs[1])).toContain('too long to show here');
  });

  test('150 override keys: 98 inputs, the other 52 named as not editable here', () => {
    const keys = Array.from({ length: 150 }, (_, i) => `k${i}`);
    const p = editable(keys);
    const view = buildOverrideModal('req_42', p, stateAfter(p, []));
    expect(viewViolations(view)).toEqual([]);
    const blocks = view.blocks as Block[];
    expect(blocks).toHaveLength(100);
    expect(blocks.filter((b) => b.type === 'input')).toHaveLength(98);
    expect(JSON.stringify(blocks.at(-1))).toContain('Not editable here* (52 keys)');
    expect(JSON.stringify(blocks.at(-1))).toContain('`k149`');
  });
});
