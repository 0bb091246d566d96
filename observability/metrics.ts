import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every metric of SPEC section 6 (names and labels are a contract with dashboards and alerts).
 * One registry per process; API and worker register into the same one when they share a process.
 */
export function createMetrics(registry = new Registry()) {
  collectDefaultMetrics({ register: registry });
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers: [registry] });
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Gauge<L>({ name, help, labelNames, registers: [registry] });
  /** Set where a Temporal client lives (the API, see gauges.ts): fills the request gauges at scrape time. */
  const visibility: { refresh: (() => Promise<void>) | null } = { refresh: null };
  const visibilityGauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Gauge<L>({ name, help, labelNames, registers: [registry], collect: () => visibility.refresh?.() });
  return {
    registry,
    visibility,
    approvalRequests: counter('approval_requests_total', 'Approval requests created', ['action']),
    approvals: counter('approvals_total', 'Requests approved', ['action']),
    denies: counter('denies_total', 'Requests denied', ['action']),
    expired: counter('expired_total', 'Requests expired', ['action']),
    cancelled: counter('cancelled_total', 'Requests cancelled', ['action']),
    escalations: counter('escalations_total', 'Requests escalated', ['action']),
    securityEvents: counter('security_events_total', 'Refused requests by security reason', ['type']),
    personaAcks: counter('persona_ack_total', 'Persona acknowledgements', ['action', 'persona']),
    paramOverrides: counter('param_overrides_total', 'Approve-with-edits attempts', ['action', 'outcome']),
    overrideRejections: counter('override_rejections_total', 'Rejected edits by reason', ['action', 'reason']),
    policyReloads: counter('policy_reloads_total', 'Successful policy reloads', ['source']),
    archivedRequests: counter('archived_requests_total', 'Terminal requests archived'),
    purgedRequests: counter('purged_requests_total', 'Closed requests purged'),
    archiveFailures: counter('request_archive_failures_total', 'Archive attempts that failed', ['reason']),
    slackApiCalls: counter('slack_api_calls_total', 'Slack Web API calls', ['method', 'outcome']),
    adminDecisions: counter(
      'admin_decisions_total',
      'Decisions made by operators through the admin routes; break_glass="true" decided past quorum or personas',
      ['action', 'decision', 'break_glass'],
    ),
    slackNotificationFailures: counter(
      'slack_notification_failures_total',
      'Requests whose Slack message and every fallback were refused: no human was told',
      ['action'],
    ),
    decisionLatency: new Histogram({
      name: 'decision_latency_seconds',
      help: 'Time from creation to a terminal status',
      labelNames: ['action', 'outcome'],
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400],
      registers: [registry],
    }),
    pendingRequests: visibilityGauge('pending_requests', 'Open requests', ['action']),
    openRequestsStatus: visibilityGauge('open_requests_status', 'Open requests by status', ['action', 'status']),
    oldestOpenRequestAge: visibilityGauge('oldest_open_request_age_seconds', 'Age of the oldest open request', [
      'action',
    ]),
    personaPendingRequests: visibilityGauge('persona_pending_requests', 'Open requests waiting on a persona', [
      'action',
      'persona',
    ]),
    slackUpdateQueueDepth: gauge('slack_update_queue_depth', 'Slack message updates waiting to be sent'),
    /** Per API replica (api/http-metrics.ts); `route` is the route pattern or `unmatched`, never the raw URL. */
    httpRequests: counter('http_requests_total', 'HTTP requests answered', ['method', 'route', 'status']),
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time from receiving an HTTP request to the end of its response',
      labelNames: ['method', 'route'],
      // Most routes answer in milliseconds; long-polls wait up to 60 s and SSE streams last until the outcome.
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
