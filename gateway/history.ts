import type { Payload } from '@temporalio/common';
import proto, { type temporal } from '@temporalio/proto';
import { VIEW_MEMO_KEY, type ApprovalInput, type RequestView } from '../workflows/messages.js';
import type { HistoryLine } from './types.js';

/**
 * Everything that reads a request's Temporal history: the operator's readable lines, the start input, and the
 * states a batch of events carries (for the watcher). The only module that knows the history's event shapes.
 */
export type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
export type Decode = (payloads: Payload[]) => unknown[];

const EventType = proto.temporal.api.enums.v1.EventType;
/** The end of the history other than a normal completion (whose result is the final view). */
const ABNORMAL_ENDS = new Set<number>([
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
]);
/** Workflow-task bookkeeping says nothing an operator needs. */
const NOISE = new Set<number>([
  EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
  EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
  EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
]);
/** Fields of a command's input worth a line in the history; params and edits stay out (they may be secret). */
const COMMAND_FIELDS = ['persona', 'decision', 'userId', 'actor', 'reason'];

/** What one batch of history says about the state: a view it carries, or that one must be read. */
export type Reading = { view: RequestView } | { query: true } | null;

/**
 * The latest state a batch of history shows. The last state-bearing event wins: the workflow's result, an
 * Update's result, or the memo the workflow writes at every change (a Signal's or a timer's too); a view too large
 * for the memo is written as null, and read by a query (its workflow task has completed once the event is there).
 */
export function readBatch(
  events: HistoryEvent[],
  decodeView: (payloads: Payload[] | null | undefined) => RequestView | null,
): Reading {
  let result: Reading = null;
  for (const e of events) {
    const type = Number(e.eventType);
    if (type === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED) {
      const view = decodeView(e.workflowExecutionCompletedEventAttributes?.result?.payloads);
      result = view ? { view } : { query: true };
    } else if (type === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED) {
      const success = e.workflowExecutionUpdateCompletedEventAttributes?.outcome?.success;
      // A refused command changed nothing.
      if (!success) continue;
      const view = decodeView(success.payloads);
      result = view ? { view } : { query: true };
    } else if (type === EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED) {
      // The workflow writes each new state into its memo: the change a signal or a timer made, readable here.
      const fields = e.workflowPropertiesModifiedEventAttributes?.upsertedMemo?.fields;
      const payload = fields?.[VIEW_MEMO_KEY];
      if (!payload) continue;
      const view = decodeView([payload]);
      result = view ? { view } : { query: true };
    } else if (ABNORMAL_ENDS.has(type)) {
      result = { query: true };
    }
  }
  return result;
}

/** The workflow input of a request, from the first event of its history. */
export function startInput(first: HistoryEvent | undefined, decode: Decode): ApprovalInput | null {
  const payloads = first?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
  return (decode(payloads)[0] as ApprovalInput | undefined) ?? null;
}

/** A request's Temporal history as an operator reads it: one line per meaningful event. */
export function readableHistory(events: HistoryEvent[], decode: Decode): HistoryLine[] {
  return events
    .filter((e) => !NOISE.has(Number(e.eventType)))
    .map((e) => ({
      eventId: Number(e.eventId),
      time: timestamp(e.eventTime),
      type: typeName(Number(e.eventType)),
      summary: summarize(e, decode),
    }));
}

/** `EVENT_TYPE_ACTIVITY_TASK_SCHEDULED` → `ActivityTaskScheduled`, as the Temporal UI names them. */
function typeName(type: number): string {
  const name = EventType[type] ?? `EVENT_TYPE_${type}`;
  return name
    .replace(/^EVENT_TYPE_/, '')
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_m, _sep: string, c: string) => c.toUpperCase());
}

/** A protobuf Timestamp as ISO 8601 (null when absent). */
export function timestamp(ts: { seconds?: unknown; nanos?: number | null } | null | undefined): string | null {
  if (!ts) return null;
  return new Date(Number(ts.seconds ?? 0) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6)).toISOString();
}

type Marker = NonNullable<HistoryEvent['markerRecordedEventAttributes']>;

/** A local activity (a Slack call tried in the workflow task first) is a marker: its type, attempt and outcome. */
function describeMarker(m: Marker, decode: Decode): string {
  const data = decode(m.details?.['data']?.payloads ?? [])[0] as
    { activity_type?: string; attempt?: number } | undefined;
  if (!data?.activity_type) return m.markerName ?? '';
  const outcome = m.failure ? `failed: ${m.failure.message}` : 'done';
  return `${data.activity_type} (local, attempt ${data.attempt ?? 1}): ${outcome}`;
}

function summarize(e: HistoryEvent, decode: Decode): string {
  const started = e.workflowExecutionStartedEventAttributes;
  if (started) return describeInput(decode(started.input?.payloads ?? [])[0] as ApprovalInput | undefined);
  const completed = e.workflowExecutionCompletedEventAttributes;
  if (completed) return describeResult(decode(completed.result?.payloads ?? [])[0] as RequestView | undefined);
  if (e.workflowExecutionSignaledEventAttributes) {
    const s = e.workflowExecutionSignaledEventAttributes;
    return `signal ${s.signalName} ${commandFields(decode(s.input?.payloads ?? [])[0])}`.trim();
  }
  if (e.workflowExecutionUpdateAcceptedEventAttributes) {
    const input = e.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest?.input;
    return `update ${input?.name ?? '?'} ${commandFields(decode(input?.args?.payloads ?? [])[0])}`.trim();
  }
  if (e.workflowExecutionUpdateCompletedEventAttributes) {
    const failure = e.workflowExecutionUpdateCompletedEventAttributes.outcome?.failure;
    return failure ? `update failed: ${failure.message}` : 'update completed';
  }
  if (e.activityTaskScheduledEventAttributes) return `${e.activityTaskScheduledEventAttributes.activityType?.name}`;
  if (e.markerRecordedEventAttributes) return describeMarker(e.markerRecordedEventAttributes, decode);
  if (e.activityTaskStartedEventAttributes) return `attempt ${e.activityTaskStartedEventAttributes.attempt}`;
  if (e.activityTaskFailedEventAttributes) return `failed: ${e.activityTaskFailedEventAttributes.failure?.message}`;
  if (e.timerStartedEventAttributes) {
    const seconds = Number(e.timerStartedEventAttributes.startToFireTimeout?.seconds ?? 0);
    return `timer ${e.timerStartedEventAttributes.timerId}: ${seconds} s`;
  }
  if (e.timerFiredEventAttributes) return `timer ${e.timerFiredEventAttributes.timerId} fired`;
  if (e.timerCanceledEventAttributes) return `timer ${e.timerCanceledEventAttributes.timerId} cancelled`;
  const memo = e.workflowPropertiesModifiedEventAttributes?.upsertedMemo?.fields?.[VIEW_MEMO_KEY];
  if (memo) {
    const view = decode([memo])[0] as RequestView | null | undefined;
    return view ? `state v${view.version}: ${describeResult(view)}` : 'state too large for the memo';
  }
  if (e.upsertWorkflowSearchAttributesEventAttributes) {
    const fields = e.upsertWorkflowSearchAttributesEventAttributes.searchAttributes?.indexedFields ?? {};
    return Object.entries(fields)
      .map(([name, payload]) => `${name}=${JSON.stringify(decode([payload])[0])}`)
      .join(' ');
  }
  return '';
}

function describeInput(input: ApprovalInput | undefined): string {
  if (!input) return 'started';
  const lineage = input.lineageId ? `, re-request in lineage ${input.lineageId}` : '';
  return (
    `${input.request.action} requested by ${input.request.meta.requester.id}: ${input.plan.minApprovals} ` +
    `approval(s), expires ${input.expiresAt}${lineage}`
  );
}

function describeResult(view: RequestView | undefined): string {
  if (!view) return 'completed';
  return `${view.status}${view.decidedBy ? ` by ${view.decidedBy}` : ''}${view.reason ? ` (${view.reason})` : ''}`;
}

function commandFields(arg: unknown): string {
  if (arg === null || typeof arg !== 'object') return '';
  const record = arg as Record<string, unknown>;
  return COMMAND_FIELDS.filter((k) => record[k] !== undefined)
    .map((k) => `${k}=${String(record[k])}`)
    .join(' ');
}
