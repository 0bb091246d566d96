import type proto from '@temporalio/proto';

type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;

/** The activity a local-activity marker records (`MarkerRecorded`), or null for any other event. */
export function localActivityType(event: HistoryEvent): string | null {
  const data = event.markerRecordedEventAttributes?.details?.data?.payloads?.[0]?.data;
  return data ? (JSON.parse(Buffer.from(data).toString()) as { activity_type: string }).activity_type : null;
}
