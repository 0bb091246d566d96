import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

type Make = ReturnType<typeof makers>;

function makers(registry: Registry) {
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers: [registry] });
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Gauge<L>({ name, help, labelNames, registers: [registry] });
  /** Set where a Temporal client lives (the API, see gauges.ts): fills the request gauges at scrape time. */
  const visibility: { refresh: (() => Promise<void>) | null } = { refresh: null };
  const visibilityGauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Gauge<L>({ name, help, labelNames, registers: [registry], collect: () => visibility.refresh?.() });
  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]) =>
    new Histogram<L>({ name, help, labelNames, buckets, registers: [registry] });
  return { counter, gauge, visibility, visibilityGauge, histogram };
}

/** What happened to requests: created, decided, escalated, acknowledged, edited. */
function requestMetrics({ counter, histogram }: Make) {
  return {
    approvalRequests: counter('approval_requests_total', 'Approval requests created', ['action']),
    approvals: counter('approvals_total', 'Requests approved', ['action']),
    denies: counter('denies_total', 'Requests denied', ['action']),
    expired: counter('expired_total', 'Requests expired', ['action']),
    cancelled: counter('cancelled_total', 'Requests cancelled', ['action']),
    escalations: counter('escalations_total', 'Requests escalated', ['action']),
    personaAcks: counter('persona_ack_total', 'Persona acknowledgements', ['action', 'persona']),
    paramOverrides: counter('param_overrides_total', 'Approve-with-edits attempts', ['action', 'outcome']),
    overrideRejections: counter('override_rejections_total', 'Rejected edits by reason', ['action', 'reason']),
    adminDecisions: counter(
      'admin_decisions_total',
      'Decisions made by operators through the admin routes; break_glass="true" decided past quorum or personas',
      ['action', 'decision', 'break_glass'],
    ),
    requestsStuck: counter(
      'requests_stuck_total',
      'Requests found with a workflow task that keeps failing (once per request per API process): see the audit line',
      ['action'],
    ),
    decisionLatency: histogram(
      'decision_latency_seconds',
      'Time from creation to a terminal status',
      ['action', 'outcome'],
      [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400],
    ),
  };
}

/** The open requests, read from Temporal visibility at scrape time (observability/gauges.ts). */
function visibilityMetrics({ visibilityGauge }: Make) {
  return {
    pendingRequests: visibilityGauge('pending_requests', 'Open requests', ['action']),
    openRequestsStatus: visibilityGauge('open_requests_status', 'Open requests by status', ['action', 'status']),
    oldestOpenRequestAge: visibilityGauge('oldest_open_request_age_seconds', 'Age of the oldest open request', [
      'action',
    ]),
    personaPendingRequests: visibilityGauge('persona_pending_requests', 'Open requests waiting on a persona', [
      'action',
      'persona',
    ]),
  };
}

/** The service's own health: security refusals, policy, retention, Slack, HTTP. */
function operationMetrics({ counter, gauge, histogram }: Make) {
  return {
    securityEvents: counter('security_events_total', 'Refused requests by security reason', ['type']),
    policyReloads: counter('policy_reloads_total', 'Successful policy reloads', ['source']),
    archivedRequests: counter('archived_requests_total', 'Terminal requests archived'),
    purgedRequests: counter('purged_requests_total', 'Closed requests purged'),
    archiveFailures: counter('request_archive_failures_total', 'Archive attempts that failed', ['reason']),
    slackApiCalls: counter('slack_api_calls_total', 'Slack Web API calls', ['method', 'outcome']),
    slackNotificationFailures: counter(
      'slack_notification_failures_total',
      'Requests whose Slack message and every fallback were refused: no human was told',
      ['action'],
    ),
    slackUpdateQueueDepth: gauge('slack_update_queue_depth', 'Slack message updates waiting to be sent'),
    /** Per API replica (api/http-metrics.ts); `route` is the route pattern or `unmatched`, never the raw URL. */
    httpRequests: counter('http_requests_total', 'HTTP requests answered', ['method', 'route', 'status']),
    // Most routes answer in milliseconds; long-polls wait up to 60 s and SSE streams last until the outcome.
    httpDuration: histogram(
      'http_request_duration_seconds',
      'Time from receiving an HTTP request to the end of its response',
      ['method', 'route'],
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    ),
  };
}

/**
 * Every metric of SPEC section 6 (names and labels are a contract with dashboards and alerts), and the service's
 * own. One registry per process; API and worker register into the same one when they share a process.
 */
export function createMetrics(registry = new Registry()) {
  collectDefaultMetrics({ register: registry });
  const make = makers(registry);
  return {
    registry,
    visibility: make.visibility,
    ...requestMetrics(make),
    ...visibilityMetrics(make),
    ...operationMetrics(make),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
