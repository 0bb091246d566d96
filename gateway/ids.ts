import { randomBytes } from 'node:crypto';

/**
 * Request ids and the workflow ids they live under. A request id is its workflow id, except for a request created
 * with an Idempotency-Key: its workflow id is derived from the key (so replicas agree on it, and a repeat finds the
 * first request), and its request id adds a random generation to it. Once that workflow is purged, the same key
 * starts a new one under the same workflow id but a new request id: ids, tokens and receipts of the purged request
 * never name its successor.
 */
const KEYED_REQUEST_ID = /^(req_[0-9a-f]{32})\.[0-9a-f]{12}$/;

export function workflowIdOf(requestId: string): string {
  return KEYED_REQUEST_ID.exec(requestId)?.[1] ?? requestId;
}

/** A new generation of the keyed workflow `workflowId`. */
export function keyedRequestId(workflowId: string): string {
  return `${workflowId}.${randomBytes(6).toString('hex')}`;
}
