import { initialState } from '../../domain/request-state.js';
import {
  buildOverrideModal,
  judgeOverride,
  modalErrors,
  readOverrideChanges,
  type SubmittedValues,
} from '../../slack/modal.js';
import { makePlan, makeRequest } from '../fixtures/plans.js';

const NOW = '2025-01-01T00:00:00.000Z';
const plan = makePlan({
  overrides: {
    allowed: true,
    keys: ['replicas', 'tag', 'flags', 'dry_run', 'secret'],
    schema: {
      type: 'object',
      properties: { replicas: { type: 'integer', maximum: 50, description: 'How many pods' }, tag: { type: 'string' } },
    },
    maxKeys: 3,
    maxChars: 40,
  },
  redaction: { mode: 'denylist', keys: ['secret'] },
});
const params = { replicas: 3, tag: 'v1', flags: { a: 1 }, dry_run: false, secret: 'hunter2' };
const state = initialState({
  requestId: 'req_1',
  request: makeRequest({ params }),
  plan,
  createdAt: NOW,
  expiresAt: NOW,
});

const submitted = (edits: Record<string, string | null>): SubmittedValues =>
  Object.fromEntries(Object.entries(edits).map(([k, value]) => [`ov_${k}`, { value: { value } }]));

describe('buildOverrideModal', () => {
  const view = buildOverrideModal('req_1', plan, state) as Record<string, unknown> & { blocks: any[] }; // eslint-disable-line @typescript-eslint/no-explicit-any
  const inputs = view.blocks.filter((b) => b.type === 'input');

  test('SPEC section 4 identifiers', () => {
    expect(view).toMatchObject({ type: 'modal', callback_id: 'override_submit' });
    expect(JSON.parse(String(view.private_metadata))).toEqual({ request_id: 'req_1' });
    expect(inputs.map((b) => [b.block_id, b.element.action_id])).toEqual([
      ['ov_replicas', 'value'],
      ['ov_tag', 'value'],
      ['ov_flags', 'value'],
      ['ov_dry_run', 'value'],
      ['ov_secret', 'value'],
    ]);
  });

  test('current values as text, redacted ones left empty, schema descriptions as hints', () => {
    expect(inputs.map((b) => b.element.initial_value)).toEqual(['3', 'v1', '{"a":1}', 'false', undefined]);
    expect(JSON.stringify(view)).not.toContain('hunter2');
    expect(inputs[0].hint.text).toBe('How many pods');
    expect(inputs[4].hint.text).toMatch(/hidden/);
  });
});

describe('readOverrideChanges', () => {
  test.each([
    ['integer string → number', { replicas: '7' }, { replicas: 7 }],
    ['decimal and exponent', { replicas: '1.5e2' }, { replicas: 150 }],
    ['negative', { replicas: '-2' }, { replicas: -2 }],
    ['schema says string: digits stay a string', { tag: '0042' }, { tag: '0042' }],
    ['beyond 2^53 stays a string', { replicas: '123456789012345678901' }, { replicas: '123456789012345678901' }],
    ['not numeric', { replicas: 'many' }, { replicas: 'many' }],
    ['boolean where the value is boolean', { dry_run: 'true' }, { dry_run: true }],
    ['JSON where the value is an object', { flags: '{"a":2}' }, { flags: { a: 2 } }],
    ['empty or missing inputs keep the current value', { replicas: '', tag: null }, {}],
  ])('%s', (_name, edits, expected) => {
    expect(readOverrideChanges(submitted(edits), plan, state)).toEqual(expected);
  });

  test('blocks other than ov_* are ignored', () => {
    expect(readOverrideChanges({ notes: { value: { value: 'x' } } }, plan, state)).toEqual({});
  });
});

describe('judgeOverride: SPEC order', () => {
  test.each([
    ['not an approver first', 'U_MALLORY', { replicas: 99, tag: 'x'.repeat(50) }, 'not_authorized'],
    ['keys before size', 'U_ALICE', { replicas: 4, tag: 'x'.repeat(50), flags: {}, dry_run: true }, 'limit_exceeded'],
    ['size before schema', 'U_ALICE', { replicas: 99, tag: 'x'.repeat(50) }, 'diff_size_exceeded'],
    ['schema last', 'U_ALICE', { replicas: 99 }, 'schema_validation'],
    ['nothing changed', 'U_ALICE', { replicas: 3 }, 'no_change'],
  ])('%s', (_name, user, changes, reason) => {
    expect(judgeOverride(state, plan, user, changes, NOW)).toMatchObject({ ok: false, reason });
  });

  test('a valid edit passes with its changes', () => {
    expect(judgeOverride(state, plan, 'U_ALICE', { replicas: 4 }, NOW)).toEqual({ ok: true, changes: { replicas: 4 } });
  });
});

describe('modalErrors', () => {
  test('field errors go to their key; unknown fields to the first changed key', () => {
    const errors = modalErrors(
      plan,
      { replicas: 99 },
      {
        message: 'edits fail the schema',
        fieldErrors: { replicas: 'must be <= 50', database: 'is required', '(root)': 'must be object' },
      },
    );
    expect(errors).toEqual({ ov_replicas: 'must be <= 50; database: is required; must be object' });
  });

  test('whole-edit refusals go to every changed key, or to the first input when nothing changed', () => {
    expect(modalErrors(plan, { replicas: 4, tag: 'v2' }, { message: 'At most 1', fieldErrors: {} })).toEqual({
      ov_replicas: 'At most 1',
      ov_tag: 'At most 1',
    });
    expect(modalErrors(plan, {}, { message: 'Nothing was changed', fieldErrors: {} })).toEqual({
      ov_replicas: 'Nothing was changed',
    });
  });
});
