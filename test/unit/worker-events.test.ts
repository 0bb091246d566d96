/** The worker turns the workflow's facts (sink batches) into audit lines and metrics. */
import type { AuditEvent, AuditLog } from '../../observability/audit.js';
import { createMetrics } from '../../observability/metrics.js';
import { recordEvents } from '../../worker/worker.js';
import type { GuardEventBatch } from '../../workflows/messages.js';

function batch(events: GuardEventBatch['events']): GuardEventBatch {
  return {
    requestId: 'req_1',
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
