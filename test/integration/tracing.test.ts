import { randomBytes } from 'node:crypto';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { startTracing, type Tracing } from '../../observability/tracing.js';
import { startHarness, type Harness } from './harness.js';
import { workflowIdOf } from '../../gateway/ids.js';

const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let h: Harness;

beforeAll(async () => {
  const started = startTracing({ TRACING_ENABLED: true, TRACING_EXPORTER: 'console' }, 'approval-guard-test', exporter);
  if (!started) throw new Error('tracing did not start');
  tracing = started;
  h = await startHarness({ tracing });
}, 120_000);

afterAll(async () => {
  await h?.close();
  await tracing?.shutdown();
});

const traceOf = (traceId: string) => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
const names = (spans: ReadableSpan[]) => spans.map((s) => s.name);

/** Every span but the root has its parent in the same set: one connected tree, not spans sharing an id by luck. */
function expectOneTree(spans: ReadableSpan[], rootName: string): void {
  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  const roots = spans.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId));
  expect(names(roots)).toEqual([rootName]);
}

test('one trace from the HTTP request through workflow start, the workflow, its activities and Slack calls', async () => {
  const traceId = randomBytes(16).toString('hex');
  const callerSpanId = randomBytes(8).toString('hex');
  const created = await h.create('simple', {}, { traceparent: `00-${traceId}-${callerSpanId}-01` });
  const click = await h.click('approve', created.requestId, 'U_ALICE');
  expect(click.status).toBe(200);
  await h.client.workflow.getHandle(workflowIdOf(created.requestId)).result();
  await tracing.flush();

  const spans = traceOf(traceId);
  expect(names(spans)).toEqual(
    expect.arrayContaining([
      'POST /api/guard/request',
      'StartWorkflow:approvalWorkflow',
      'RunWorkflow:approvalWorkflow',
      'StartActivity:postRequestMessage',
      'RunActivity:postRequestMessage',
      'slack chat.postMessage',
      'RunActivity:archiveRequest',
    ]),
  );
  const http = spans.find((s) => s.name === 'POST /api/guard/request')!;
  // The agent's own span (from its traceparent) is the HTTP span's parent: the service joins the caller's trace.
  expect(http.parentSpanId).toBe(callerSpanId);
  expect(http.attributes['http.response.status_code']).toBe(200);
  expectOneTree(spans, 'POST /api/guard/request');
  const slackCall = spans.find((s) => s.name === 'slack chat.postMessage')!;
  const postActivity = spans.find((s) => s.name === 'RunActivity:postRequestMessage')!;
  expect(slackCall.parentSpanId).toBe(postActivity.spanContext().spanId);
  // Query strings carry tokens: no span records one.
  for (const s of exporter.getFinishedSpans()) expect(JSON.stringify(s.attributes)).not.toContain('token=');

  const audit = h.audit.lines().filter((l) => l.requestId === created.requestId);
  const byEvent = (event: string) => audit.find((l) => l.event === event);
  expect(byEvent('request_created')?.traceId).toBe(traceId);
  expect(byEvent('request_archived')?.traceId).toBe(traceId);
});

test('a Slack click is one trace down to the workflow Signal it sends', async () => {
  const created = await h.create('simple');
  exporter.reset();
  const click = await h.click('approve', created.requestId, 'U_ALICE');
  expect(click.status).toBe(200);
  await h.client.workflow.getHandle(workflowIdOf(created.requestId)).result();
  await tracing.flush();

  const clickSpan = exporter.getFinishedSpans().find((s) => s.name === 'POST /api/slack/interactions');
  expect(clickSpan).toBeDefined();
  const spans = traceOf(clickSpan!.spanContext().traceId);
  expect(names(spans)).toEqual(
    expect.arrayContaining(['POST /api/slack/interactions', 'SignalWorkflow:approve', 'HandleSignal:approve']),
  );
  expectOneTree(spans, 'POST /api/slack/interactions');

  const audit = h.audit.lines().filter((l) => l.requestId === created.requestId);
  const clickTrace = clickSpan!.spanContext().traceId;
  expect(audit.find((l) => l.event === 'approval_recorded')?.traceId).toBe(clickTrace);
  expect(audit.find((l) => l.event === 'request_approved')?.traceId).toBe(clickTrace);
  expect(audit.find((l) => l.event === 'request_created')?.traceId).not.toBe(clickTrace);
});
