/** The worker turns the workflow's facts (sink batches) into audit lines and metrics. */
import fc from 'fast-check';
import type { AuditEvent, AuditLog } from '../../observability/audit.js';
import { createMetrics } from '../../observability/metrics.js';
import { factKey, SeenFacts } from '../../worker/seen-facts.js';
import { eventRecorder, recordEvents } from '../../worker/worker.js';
import type { GuardEventBatch } from '../../workflows/messages.js';

function batch(events: GuardEventBatch['events'], requestId = 'req_1'): GuardEventBatch {
  return {
    requestId,
    action: 'deploy',
    createdAt: '2030-01-01T00:00:00.000Z',
    at: '2030-01-01T00:00:30.000Z',
    version: 2,
    traceId: 'trace-1',
    redaction: { mode: 'none', keys: [] },
    events,
  };
}

function record(events: GuardEventBatch['events']) {
  const lines: AuditEvent[] = [];
  const audit: AuditLog = { emit: (e) => void lines.push(e), close: async () => undefined };
  const metrics = createMetrics();
  recordEvents(batch(events), metrics, audit);
  return { lines, metrics };
}

const count = async (counter: { get(): Promise<{ values: Array<{ value: number; labels: object }> }> }) =>
  (await counter.get()).values.map((v) => [v.labels, v.value]);

test('a Slack message that could not be posted is an audit line and counts in slack_notification_failures_total', async () => {
  const { lines, metrics } = record([{ type: 'notification_failed', error: 'channel_not_found' }]);
  expect(lines).toEqual([
    {
      event: 'notification_failed',
      requestId: 'req_1',
      action: 'deploy',
      actor: 'system',
      error: 'channel_not_found',
      traceId: 'trace-1',
    },
  ]);
  expect(await count(metrics.slackNotificationFailures)).toEqual([[{ action: 'deploy' }, 1]]);
});

test('a decision counts once with its latency; other facts leave slack_notification_failures_total alone', async () => {
  const { lines, metrics } = record([
    { type: 'approval_recorded', actor: 'U_ALICE', approvals: 1, minApprovals: 1 },
    { type: 'request_approved', actor: 'U_ALICE' },
  ]);
  expect(lines.map((l) => [l.event, l.actor])).toEqual([
    ['approval_recorded', 'U_ALICE'],
    ['request_approved', 'U_ALICE'],
  ]);
  expect(await count(metrics.approvals)).toEqual([[{ action: 'deploy' }, 1]]);
  const latency = (await metrics.decisionLatency.get()).values.find((v) => v.metricName?.endsWith('_sum'));
  expect(latency?.value).toBe(30);
  expect(await count(metrics.slackNotificationFailures)).toEqual([]);
});

/** A recorder as the worker builds it, with what it wrote down. */
function recorder(seen?: SeenFacts) {
  const lines: AuditEvent[] = [];
  const versions: Array<{ requestId: string; version: number }> = [];
  const audit: AuditLog = { emit: (e) => void lines.push(e), close: async () => undefined };
  const metrics = createMetrics();
  const record = eventRecorder(metrics, audit, (change) => void versions.push(change), seen);
  return { record, lines, versions, metrics };
}

test('a workflow task retried after its sink ran (not a replay: the sink runs again) audits and counts its facts once', async () => {
  const { record, lines, versions, metrics } = recorder();
  const expired = batch([{ type: 'request_expired' }]);
  record(expired);
  // The server refused the completion (a Signal came in as the request ended); the retry reports the same fact.
  record({ ...expired, at: '2030-01-01T00:00:31.000Z' });
  expect(lines.map((l) => l.event)).toEqual(['request_expired']);
  expect(await count(metrics.expired)).toEqual([[{ action: 'deploy' }, 1]]);
  // Every attempt still announces the version: waking the APIs twice is harmless.
  expect(versions).toEqual([
    { requestId: 'req_1', version: 2 },
    { requestId: 'req_1', version: 2 },
  ]);
});

test('facts that differ only in who they are about are all recorded: two personas, two approvers', () => {
  const { record, lines } = recorder();
  record(batch([{ type: 'persona_acked', persona: 'sre', actor: 'U_BOB' }]));
  record(batch([{ type: 'persona_acked', persona: 'security', actor: 'U_BOB' }]));
  record(batch([{ type: 'approval_recorded', actor: 'U_ALICE', approvals: 1, minApprovals: 2 }]));
  record(batch([{ type: 'approval_recorded', actor: 'U_CAROL', approvals: 2, minApprovals: 2 }]));
  record(batch([{ type: 'persona_acked', persona: 'sre', actor: 'U_DAVE' }]));
  expect(lines.map((l) => [l.event, l.persona ?? null, l.actor])).toEqual([
    ['persona_acked', 'sre', 'U_BOB'],
    ['persona_acked', 'security', 'U_BOB'],
    ['approval_recorded', null, 'U_ALICE'],
    ['approval_recorded', null, 'U_CAROL'],
  ]);
});

const actor = fc.constantFrom('U_ALICE', 'U_BOB', 'U_CAROL');
const fact: fc.Arbitrary<GuardEventBatch['events'][number]> = fc.oneof(
  fc.record({ type: fc.constant('request_created' as const), actor }),
  fc.record({ type: fc.constant('persona_acked' as const), persona: fc.constantFrom('sre', 'security', 'dba'), actor }),
  fc.record({
    type: fc.constant('approval_recorded' as const),
    actor,
    approvals: fc.integer({ min: 1, max: 3 }),
    minApprovals: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({ type: fc.constant('override_applied' as const), actor, diff: fc.constant({}) }),
  fc.record({ type: fc.constant('request_escalated' as const), minApprovals: fc.integer({ min: 1, max: 3 }) }),
  fc.record({
    type: fc.constant('notification_failed' as const),
    error: fc.constantFrom('channel_not_found', 'ratelimited'),
  }),
  fc.record({ type: fc.constant('request_approved' as const), actor }),
  fc.record({ type: fc.constant('request_denied' as const), actor, reason: fc.constant(null) }),
  fc.constant({ type: 'request_expired' as const }),
);
/** One request's facts (each at most once, as the reducer makes them), cut into workflow tasks' batches. */
const requestBatches = (requestId: string) =>
  fc
    .tuple(fc.uniqueArray(fact, { selector: factKey, maxLength: 9 }), fc.array(fc.integer({ min: 1, max: 3 })))
    .map(([facts, cuts]) => {
      const batches: GuardEventBatch[] = [];
      for (let i = 0, c = 0; i < facts.length; c += 1) {
        const n = cuts[c] ?? facts.length;
        batches.push(batch(facts.slice(i, i + n), requestId));
        i += n;
      }
      return batches;
    });

test('property: batches of interleaved requests, each delivered 1–3 times in a row, audit exactly what one delivery does', () => {
  fc.assert(
    fc.property(
      requestBatches('req_1'),
      requestBatches('req_2'),
      fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 20, maxLength: 20 }),
      fc.array(fc.boolean(), { minLength: 20, maxLength: 20 }),
      (one, two, repeats, picks) => {
        // Interleave the two requests' batches in an arbitrary order, keeping each request's own order.
        const queues = [[...one], [...two]];
        const order: GuardEventBatch[] = [];
        for (let i = 0; order.length < one.length + two.length; i += 1) {
          const pick = picks[i % picks.length] ? 1 : 0;
          order.push((queues[pick]!.length > 0 ? queues[pick]! : queues[1 - pick]!).shift()!);
        }
        const once = recorder();
        const retried = recorder();
        order.forEach((b, i) => {
          once.record(b);
          for (let r = 0; r < repeats[i % repeats.length]!; r += 1) retried.record(b);
        });
        expect(retried.lines).toEqual(once.lines);
        expect(once.lines).toHaveLength(order.reduce((n, b) => n + b.events.length, 0));
      },
    ),
  );
});

test('only the most recent requests are remembered: memory stays bounded, the oldest request is forgotten', () => {
  const seen = new SeenFacts(3);
  const { record, lines } = recorder(seen);
  for (const id of ['req_1', 'req_2', 'req_3', 'req_4']) record(batch([{ type: 'request_expired' }], id));
  expect(seen.size).toBe(3);
  // req_2..4 are remembered, req_1 was forgotten: a retry that late (after 3 other requests) would repeat its fact.
  for (const id of ['req_2', 'req_3', 'req_4', 'req_1']) record(batch([{ type: 'request_expired' }], id));
  expect(lines.map((l) => l.requestId)).toEqual(['req_1', 'req_2', 'req_3', 'req_4', 'req_1']);
  expect(seen.size).toBe(3);
  expect(() => new SeenFacts(0)).toThrow(RangeError);
});
