/**
 * Property tests of every Slack render (issue 14): for any request `POST /api/guard/request` accepts and any plan a
 * policy can give, in any state, the message, its updates, the minimal fallback, the thread details, the escalation
 * notice, private notices and the edit modal pass the limit checker the fake Slack refuses with — and the approver
 * can reach every param: in the message when it shows them, else in its thread.
 */
import fc from 'fast-check';
import type { Plan } from '../../domain/plan.js';
import { redactParams } from '../../domain/redaction.js';
import { createRequestSchema, type CreateRequest } from '../../domain/request-schema.js';
import { initialState, reduce, type Command, type RequestState } from '../../domain/request-state.js';
import {
  blocksTextLength,
  describeViolation,
  LIMITS,
  MESSAGE_TEXT_BUDGET,
  messageViolations,
  viewViolations,
} from '../../domain/slack-limits.js';
import {
  anythingCut,
  PARAMS_BLOCK_PREFIX,
  renderEscalationNotice,
  renderMinimalMessage,
  renderNotice,
  renderRequestMessage,
  renderThreadDetails,
  type Block,
  type SlackMessage,
} from '../../domain/slack-message.js';
import { buildOverrideModal } from '../../domain/slack-modal.js';
import { makePlan } from '../fixtures/plans.js';

/** Characters that break naive cutting and escaping: surrogate pairs, ZWJ sequences, CJK, mrkdwn controls. */
const TRICKY = [
  'a',
  ' ',
  '\n',
  '<',
  '>',
  '&',
  '`',
  '```',
  '*',
  '|',
  '😀',
  '👨‍👩‍👧‍👦',
  '🇯🇵',
  '漢',
  'é̃',
  '<!channel>',
  '<@U0X>',
];
const tricky = (maxLength: number) =>
  fc.oneof(
    fc.array(fc.constantFrom(...TRICKY), { maxLength: Math.min(maxLength, 400) }).map((a) => a.join('')),
    fc.string({ unit: 'grapheme', maxLength: Math.min(maxLength, 200) }),
    fc
      .tuple(fc.constantFrom(...TRICKY), fc.integer({ min: 0, max: maxLength }))
      .map(([unit, n]) => unit.repeat(Math.ceil(n / unit.length))),
  );
const bounded = (max: number, min = 0) =>
  tricky(max)
    .map((s) => Array.from(s).slice(0, max).join(''))
    .filter((s) => s.length >= min && s.length <= max);

const jsonValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 2, arbitrary: bounded(8192) },
  { weight: 1, arbitrary: fc.dictionary(bounded(40, 1), bounded(300), { maxKeys: 15 }) },
);

const requestArb: fc.Arbitrary<CreateRequest> = fc
  .record({
    action: bounded(200, 1),
    params: fc.dictionary(bounded(60, 1), jsonValue, { maxKeys: 45 }),
    meta: fc.record({
      origin: fc.record({ repo: bounded(500, 1), branch: bounded(500), pr: fc.integer({ min: 0, max: 99999 }) }),
      requester: fc.record({
        id: fc.oneof(fc.constant('U0REQ'), bounded(200, 1)),
        source: fc.constantFrom('slack', 'github', 'agent'),
        display: bounded(200),
      }),
      justification: bounded(4000, 3),
      links: fc.array(
        fc.oneof(
          fc.webUrl({ withQueryParameters: true, withFragments: true }),
          bounded(2000),
          fc.constant('https://example.com/a?b=1&c=<2>|3'),
        ),
        { maxLength: 20 },
      ),
    }),
  })
  .map((raw) => createRequestSchema.safeParse(raw))
  .filter((r) => r.success)
  .map((r) => r.data as CreateRequest);

const approvers = Array.from({ length: 12 }, (_, i) => `U0APP${i}`);
const planArb: fc.Arbitrary<Plan> = fc
  .record({
    personas: fc.uniqueArray(bounded(300, 1), { maxLength: 40 }),
    keys: fc.uniqueArray(bounded(300, 1), { maxLength: 130 }),
    edits: fc.boolean(),
    redaction: fc.constantFrom<Plan['redaction']>(
      { mode: 'none', keys: [] },
      { mode: 'all', keys: [] },
      { mode: 'denylist', keys: ['secret'] },
    ),
    description: fc.option(bounded(3000, 1), { nil: undefined }),
    minApprovals: fc.integer({ min: 1, max: 12 }),
  })
  .map(({ personas, keys, edits, redaction, description, minApprovals }) =>
    makePlan({
      action: 'act',
      approvers,
      minApprovals,
      personas: personas.map((name) => ({ name, members: [] })),
      redaction,
      overrides: { allowed: edits, keys, schema: null, maxKeys: 1000, maxChars: 1_000_000 },
      allowSelfApproval: true,
      ...(description ? { description } : {}),
    }),
  );

const commandArb = (plan: Plan, request: CreateRequest): fc.Arbitrary<Command> =>
  fc.oneof(
    fc.record({
      type: fc.constant('persona_ack' as const),
      persona: fc.constantFrom(...plan.personas.map((p) => p.name), 'none'),
      userId: fc.constantFrom(...approvers),
    }),
    fc.record({ type: fc.constant('approve' as const), userId: fc.constantFrom(...approvers) }),
    fc.record({
      type: fc.constant('override' as const),
      userId: fc.constantFrom(...approvers),
      changes: fc.dictionary(fc.constantFrom(...plan.overrides.keys, ...Object.keys(request.params), 'k'), jsonValue, {
        maxKeys: 4,
      }),
    }),
    fc.record({ type: fc.constant('deny' as const), userId: fc.constantFrom(...approvers), reason: bounded(3000) }),
    fc.constantFrom<Command>({ type: 'escalate' }, { type: 'expire' }, { type: 'cancel', actor: 'admin:someone' }),
  );

const caseArb = fc
  .tuple(requestArb, planArb)
  .chain(([request, plan]) =>
    fc.tuple(fc.constant(request), fc.constant(plan), fc.array(commandArb(plan, request), { maxLength: 12 })),
  )
  .map(([request, plan, commands]) => {
    const states: RequestState[] = [
      initialState({
        requestId: 'req_prop',
        request,
        plan,
        createdAt: '2030-01-01T00:00:00.000Z',
        expiresAt: '2030-01-01T01:00:00.000Z',
      }),
    ];
    for (const command of commands) {
      const t = reduce(states.at(-1)!, plan, command, '2030-01-01T00:10:00.000Z');
      if (t.ok) states.push(t.state);
    }
    return { request, plan, states };
  });

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const unescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** Texts Slack reads as mrkdwn: text objects of that type, and a message's top-level text. */
function mrkdwnTexts(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => mrkdwnTexts(v, out));
  else if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (o.type === 'mrkdwn' && typeof o.text === 'string') out.push(o.text);
    else Object.values(o).forEach((v) => mrkdwnTexts(v, out));
  }
  return out;
}

function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) value.forEach((v) => strings(v, out));
  else if (value && typeof value === 'object') Object.values(value).forEach((v) => strings(v, out));
  return out;
}

/** A message Slack takes: no violation, within our text budget, well-formed text, no mention or link smuggled in. */
function expectPostable(message: SlackMessage): void {
  const problems = messageViolations(message.blocks).map(describeViolation);
  expect(problems).toEqual([]);
  expect(blocksTextLength(message.blocks)).toBeLessThanOrEqual(MESSAGE_TEXT_BUDGET);
  expect(message.text.length).toBeLessThanOrEqual(LIMITS.textObject);
  for (const s of strings(message)) expect(LONE_SURROGATE.test(s)).toBe(false);
  for (const s of [message.text, ...mrkdwnTexts(message.blocks)]) {
    // The only <…> tokens are ours: user mentions and http(s) links; agent text is escaped.
    for (const token of s.match(/<[^<>]*>/g) ?? [])
      expect(token).toMatch(/^<(@U0[A-Z0-9]+|https?:\/\/[^|<>]+\|[^<>]*)>$/);
  }
  for (const block of message.blocks) {
    const text = (block.text as { type?: string; text?: string } | undefined)?.text;
    if (block.type === 'section' && text) expect(text.split('```').length % 2).toBe(1);
  }
}

/** The params an approver can read back from the code blocks of these sections. */
function codeOf(blocks: Block[]): string {
  return blocks
    .filter((b) => String(b.block_id).startsWith(PARAMS_BLOCK_PREFIX))
    .map((b) => (b.text as { text: string }).text)
    .map((t) => unescape(t.replace(/^\*Parameters\*\n/, '').slice(3, -3)))
    .join('');
}

const buttons = (m: SlackMessage) =>
  m.blocks
    .filter((b) => b.type === 'actions')
    .flatMap((b) => (b.elements as Array<{ action_id: string }>).map((e) => e.action_id));

describe('every render fits Slack, for any accepted request and policy', () => {
  test('the message and each update: postable, decision buttons while open, every param reachable', () => {
    fc.assert(
      fc.property(caseArb, ({ request, plan, states }) => {
        for (const state of states) {
          const message = renderRequestMessage(request, plan, state);
          expectPostable(message);
          if (state.status === 'ready_for_approval')
            expect(buttons(message)).toEqual(expect.arrayContaining(['approve', 'deny']));
          // What an approver reads is JSON: compare with the params as JSON carries them (-0 is 0 there).
          const redacted = JSON.parse(JSON.stringify(redactParams(state.effectiveParams, plan.redaction))) as unknown;
          if (!message.cut.params) {
            expect(JSON.parse(codeOf(message.blocks))).toEqual(redacted);
            continue;
          }
          expect(JSON.stringify(message.blocks)).toContain('Read the full parameters in this message');
          const thread = renderThreadDetails(request, plan, state, message.cut);
          thread.forEach(expectPostable);
          expect(JSON.parse(codeOf(thread.flatMap((m) => m.blocks)))).toEqual(redacted);
        }
      }),
      { numRuns: 60 },
    );
  });

  test('the justification is reachable: in the message, or whole in the thread', () => {
    fc.assert(
      fc.property(caseArb, ({ request, plan, states }) => {
        const state = states[0]!;
        const message = renderRequestMessage(request, plan, state);
        const { justification } = request.meta;
        const sections = (blocks: Block[]) => blocks.map((b) => (b.text as { text?: string } | undefined)?.text ?? '');
        if (justification.includes('```')) return;
        if (message.cut.justification) {
          const thread = renderThreadDetails(request, plan, state, message.cut).flatMap((m) => sections(m.blocks));
          const start = thread.indexOf('*Full justification*');
          expect(start).toBeGreaterThanOrEqual(0);
          expect(
            thread
              .slice(start + 1)
              .map(unescape)
              .join(''),
          ).toContain(justification);
        } else {
          const shown = sections(message.blocks).map(unescape).join('').replace('*Justification*\n', '');
          expect(shown).toContain(justification);
        }
      }),
      { numRuns: 40 },
    );
  });

  test('the minimal fallback, the escalation notice and private notices are postable', () => {
    fc.assert(
      fc.property(caseArb, bounded(5000), ({ request, plan, states }, refusal) => {
        for (const state of [states[0]!, states.at(-1)!]) {
          const minimal = renderMinimalMessage(request, plan, state);
          expectPostable(minimal);
          expect(anythingCut({ params: true, justification: false, links: false })).toBe(true);
          if (state.status === 'ready_for_approval')
            expect(buttons(minimal)).toEqual(expect.arrayContaining(['approve']));
          renderThreadDetails(request, plan, state, { params: true, justification: true, links: true }).forEach(
            expectPostable,
          );
          expectPostable(renderEscalationNotice(request, state, 'https://fake.slack.com/archives/C1/p1'));
        }
        expect(renderNotice(refusal).text.length).toBeLessThanOrEqual(LIMITS.textObject);
      }),
      { numRuns: 40 },
    );
  });

  test('the edit modal: a valid view of at most 100 blocks; keys it cannot offer are named in it', () => {
    fc.assert(
      fc.property(caseArb, ({ plan, states }) => {
        const view = buildOverrideModal('req_prop', plan, states.at(-1)!);
        expect(viewViolations(view).map(describeViolation)).toEqual([]);
        const blocks = view.blocks as Block[];
        const inputs = blocks.filter((b) => b.type === 'input').map((b) => String(b.block_id).slice(3));
        const missing = plan.overrides.keys.filter((k) => !inputs.includes(k));
        expect(missing.length > 0).toBe(JSON.stringify(blocks).includes('Not editable here'));
        expect(JSON.stringify(blocks)).not.toMatch(LONE_SURROGATE);
      }),
      { numRuns: 60 },
    );
  });
});
