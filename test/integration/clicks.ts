import { Client, Connection } from '@temporalio/client';
import { clickVerdict, type ClickJudge, type ClickResult, type SentClick } from '../../dev/click-verdict.js';
import type { FakeSlack } from '../../dev/fake-slack.js';
import { workflowIdOf } from '../../gateway/ids.js';
import { stateQuery } from '../../workflows/messages.js';

export type { ClickJudge, ClickResult, SentClick };

/** A click's verdict from Slack's answer, the workflow's state and the fake Slack's records (dev/click-verdict.ts). */
export const clickResult = clickVerdict;

/** Judges clicks with the test's own Temporal client and the in-process fake Slack. */
export function judgeWith(client: Client, fakeSlack: FakeSlack): ClickJudge {
  return {
    readState: (requestId) => client.workflow.getHandle(workflowIdOf(requestId)).query(stateQuery),
    ephemerals: () => fakeSlack.callsOf('chat.postEphemeral'),
  };
}

/** A client of the integration tests' Temporal server, for suites whose API runs in another process. */
export async function connectJudge(fakeSlack: FakeSlack): Promise<{ judge: ClickJudge; close(): Promise<void> }> {
  const address = process.env.TEMPORAL_TEST_ADDRESS;
  if (!address) throw new Error('TEMPORAL_TEST_ADDRESS is not set: run through the integration Jest project');
  const connection = await Connection.connect({ address });
  return { judge: judgeWith(new Client({ connection }), fakeSlack), close: () => connection.close() };
}
