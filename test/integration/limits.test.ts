/**
 * Issue 15 item 1: every body the API accepts, at each limit, completes a whole lifecycle — created, shown in Slack
 * (the strict fake refuses what Slack refuses), decided by a signed click, archived. One past each limit is a 400
 * naming it.
 */
import { workflowIdOf } from '../../gateway/ids.js';
import { JSON_LIMITS, jsonBytes, tooDeep } from '../../domain/json-limits.js';
import { requestBody, startHarness, type Harness } from './harness.js';
import { waitForMessage } from './slack-support.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
}, 60_000);

afterAll(async () => {
  await h?.close();
});

/** An object nested exactly `depth` levels (the top level counts as 1), its innermost value `leaf`. */
function nested(depth: number, leaf: unknown = 'x'): Record<string, unknown> {
  let value: unknown = leaf;
  for (let i = depth; i >= 1; i--) value = { [`level${i}`]: value };
  return value as Record<string, unknown>;
}

/** `base` padded with a string of emoji and CJK (4- and 3-byte UTF-8) to exactly `bytes` of JSON. */
function padded(base: Record<string, unknown>, bytes: number): Record<string, unknown> {
  const out = { ...base, pad: '' };
  const unit = '😀漢';
  while (jsonBytes({ ...out, pad: out.pad + unit }) <= bytes) out.pad += unit;
  while (jsonBytes({ ...out, pad: `${out.pad}a` }) <= bytes) out.pad += 'a';
  return out;
}

const { params, policyHints } = JSON_LIMITS;

const atTheLimit: Array<[string, Record<string, unknown>]> = [
  ['params nested to the depth limit', { params: nested(params.maxDepth) }],
  ['params of exactly the size limit, unicode up to the last byte', { params: padded({}, params.maxBytes) }],
  [
    'params of 1,500 keys',
    { params: Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`key_${i}`, `value ${i}`])) },
  ],
  [
    'policy hints at both limits',
    { params: { database: 'orders' }, policyHints: padded(nested(policyHints.maxDepth), policyHints.maxBytes) },
  ],
];

test.each(atTheLimit)(
  '%s: created, posted, approved and archived',
  async (_name, overrides) => {
    if (overrides.params) {
      expect(tooDeep(overrides.params, params.maxDepth)).toBeNull();
      expect(jsonBytes(overrides.params)).toBeLessThanOrEqual(params.maxBytes);
    }
    const created = await h.create('simple', overrides);
    expect(created.status).toBe('ready_for_approval');
    // Posted (the strict fake accepted it), whatever had to be cut to fit.
    await waitForMessage(h, created.requestId);
    expect((await h.clickOutcome('approve', created.requestId, 'U_ALICE')).status).toBe('approved');
    const done = await h.get(`/api/guard/wait?token=${encodeURIComponent(created.token)}&timeoutSec=0`);
    expect(done.body).toMatchObject({ status: 'approved', terminal: true, effectiveParams: overrides.params });
    await h.client.workflow.getHandle(workflowIdOf(created.requestId)).result();
    expect(
      h.audit.lines().filter((l) => l.requestId === created.requestId && l.event === 'request_archived'),
    ).toHaveLength(1);
  },
  90_000,
);

test.each([
  ['params one level too deep', { params: nested(params.maxDepth + 1) }, 'nested deeper than 16 levels'],
  [
    'params one byte too large',
    { params: padded({}, params.maxBytes + 1) },
    `more than the limit of ${params.maxBytes}`,
  ],
  ['hints one level too deep', { policyHints: nested(policyHints.maxDepth + 1) }, 'nested deeper than 8 levels'],
])('%s: 400 naming the limit', async (_name, overrides, message) => {
  const res = await h.post('/api/guard/request', requestBody('simple', overrides));
  expect(res.status).toBe(400);
  expect(res.body.error).toBe('invalid_payload');
  expect(JSON.stringify(res.body.details)).toContain(message);
});
