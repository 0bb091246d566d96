/**
 * Hostile Slack input on live workflows (issue 8): signed clicks and modal submissions with random fields, some on
 * real requests (their Signals reach the workflows, which must refuse or apply them and keep going). Every other
 * route is fuzzed in-process in test/api/fuzz.test.ts.
 */
import fc from 'fast-check';
import {
  blockActionPayload,
  formBody,
  INTERACTIONS_PATH,
  signSlackRequest,
  viewSubmissionPayload,
} from '../helpers/slack.js';
import { SIGNING_SECRET, startHarness, type Harness } from './harness.js';

const AGENT_KEY = 'fuzz-agent-key-0123456789';

let h: Harness;
/** Real request ids, so some fuzzed clicks and lookups hit live workflows rather than only unknown ids. */
const known: string[] = [];

beforeAll(async () => {
  h = await startHarness({ env: { AGENT_API_KEYS: `fuzzer:${AGENT_KEY}` } });
  for (const action of ['simple', 'quorum2', 'personas']) {
    known.push((await h.create(action, {}, { authorization: `Bearer ${AGENT_KEY}` })).requestId);
  }
}, 60_000);

afterAll(async () => {
  await h?.close();
});

type Method = 'GET' | 'POST';
interface Input {
  method: Method;
  url: string;
  headers?: Record<string, string>;
  body?: string;
}

const tally = { inputs: 0, byStatus: new Map<number, number>() };

interface Answer {
  statusCode: number;
  body: string;
}

/** Sends one input and checks the invariant every answer must hold. */
async function send(input: Input): Promise<Answer> {
  const res = await fetch(`${h.url}${input.url}`, {
    method: input.method,
    headers: input.headers ?? {},
    ...(input.body === undefined ? {} : { body: input.body }),
  });
  const answer = { statusCode: res.status, body: await res.text() };
  tally.inputs++;
  tally.byStatus.set(res.status, (tally.byStatus.get(res.status) ?? 0) + 1);
  const where = `${input.method} ${input.url.slice(0, 200)} → ${res.status} ${answer.body.slice(0, 300)}`;
  if (res.status >= 500) throw new Error(`server error: ${where}`);
  if (res.status >= 400) {
    if (!/^application\/json/.test(res.headers.get('content-type') ?? '')) throw new Error(`not JSON: ${where}`);
    const body = JSON.parse(answer.body) as { error?: unknown };
    if (typeof body.error !== 'string' || body.error.length === 0) throw new Error(`no error reason: ${where}`);
  }
  return answer;
}

// ---------------------------------------------------------------------------------------------------------------
// Arbitraries

/** Header-safe text (what an HTTP client can actually send). */
const headerText = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) });
const anyText = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), headerText);
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

const idLike = fc.oneof(
  fc.constantFrom(...['req_none', 'x', '']),
  anyText,
  fc.string({ minLength: 990, maxLength: 1100 }),
);
const knownOrRandomId = fc.oneof(
  fc.integer({ min: 0, max: 2 }).map((i) => known[i]!),
  idLike,
);

// ---------------------------------------------------------------------------------------------------------------

describe('fuzzing Slack deliveries on live requests', () => {
  const post = (raw: string, headers: Record<string, string>) =>
    send({ method: 'POST', url: INTERACTIONS_PATH, headers, body: raw });
  const signed = (raw: string) => post(raw, { ...signSlackRequest(SIGNING_SECRET, raw) });

  test('validly signed clicks and modal submissions with random fields, on real and unknown requests', async () => {
    const click = fc
      .record({
        actionId: fc.oneof(
          fc.constantFrom('approve', 'deny', 'approve_edit', 'persona_ack:DBA', 'persona_ack:Nope'),
          anyText,
        ),
        value: knownOrRandomId,
        userId: fc.oneof(fc.constantFrom('U_ALICE', 'U_BOB', 'U_DBA', 'U_REQ', 'U_MALLORY'), anyText),
        blockId: maybe(anyText),
      })
      .filter((c) => c.actionId.length > 0 && c.userId.length > 0)
      .map((c) => blockActionPayload({ ...c, ...(c.blockId === undefined ? {} : { blockId: c.blockId }) }));
    const submission = fc
      .record({
        userId: fc.oneof(
          fc.constantFrom('U_ALICE', 'U_BOB'),
          anyText.filter((s) => s.length > 0),
        ),
        callbackId: fc.oneof(fc.constant('override_submit'), anyText),
        privateMetadata: fc.oneof(
          knownOrRandomId.map((id) => ({ request_id: id })),
          anyText,
          fc.jsonValue().map((v) => JSON.stringify(v) ?? ''),
        ),
        values: fc.dictionary(
          fc.string().map((k) => `ov_${k}`),
          fc.record({ value: fc.record({ type: fc.constant('plain_text_input' as const), value: maybe(anyText) }) }),
          { maxKeys: 4 },
        ),
      })
      .map((s) =>
        viewSubmissionPayload({
          ...s,
          values: Object.fromEntries(
            Object.entries(s.values).map(([k, v]) => [
              k,
              { value: { type: v.value.type, value: v.value.value ?? null } },
            ]),
          ),
        }),
      );
    await fc.assert(
      fc.asyncProperty(fc.oneof(click, submission), async (payload) => {
        const res = await signed(formBody(payload));
        expect(res.statusCode).toBe(200);
      }),
      { numRuns: 300 },
    );
  });

  test('the workflows are still whole afterwards', async () => {
    for (const id of known) {
      const res = await h.get(`/api/guard/status?requestId=${id}`);
      expect(res.status).toBe(200);
    }
    expect(tally.inputs).toBeGreaterThan(250);
  });
});
