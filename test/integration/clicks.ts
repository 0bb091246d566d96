import { Client, Connection } from '@temporalio/client';
import { clickOutcomeQuery, type ClickAnswer } from '../../workflows/messages.js';

/** A click's fate: applied (and the request's status after it) or refused (and why), or not sent at all. */
export interface ClickResult {
  ok: boolean;
  status?: string;
  error?: string;
  text?: string;
}

/** Asks a workflow what became of one click. */
export type AskClick = (requestId: string, clickId: string) => Promise<ClickAnswer>;

/** Asks through a Temporal client, for tests whose API runs in another process. */
export const askThrough =
  (client: Client): AskClick =>
  (requestId, clickId) =>
    client.workflow.getHandle(requestId).query(clickOutcomeQuery, clickId);

/**
 * The outcome of a click from the body Slack got: a refusal given at once (the request is gone, Temporal is
 * down), or, for a click Temporal recorded, the workflow's verdict on it (the query waits for the task that
 * applied it).
 */
export async function clickResult(ask: AskClick, ackBody: unknown): Promise<ClickResult> {
  const ack = (typeof ackBody === 'string' ? JSON.parse(ackBody) : ackBody) as ClickResult & {
    clickId?: string;
    requestId?: string;
  };
  if (!ack.clickId || !ack.requestId) return ack;
  const { outcome, view } = await ask(ack.requestId, ack.clickId);
  if (!outcome) throw new Error(`click ${ack.clickId} on ${ack.requestId} not applied`);
  return outcome.ok ? { ok: true, status: view.status } : { ok: false, error: outcome.reason, text: outcome.message };
}

/** A client of the integration tests' Temporal server, to ask clicks' outcomes when the API runs elsewhere. */
export async function connectClicks(): Promise<{ ask: AskClick; close(): Promise<void> }> {
  const address = process.env.TEMPORAL_TEST_ADDRESS;
  if (!address) throw new Error('TEMPORAL_TEST_ADDRESS is not set: run through the integration Jest project');
  const connection = await Connection.connect({ address });
  return { ask: askThrough(new Client({ connection })), close: () => connection.close() };
}
