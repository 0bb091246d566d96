import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { approvalWorkflow } from '../../workflows/approval.js';
import { approveSignal, approveUpdate, personaAckUpdate, type RequestView } from '../../workflows/messages.js';
import { makePlan } from '../fixtures/plans.js';
import { approvalInput } from './harness.js';

/**
 * The recorded replay scenario: a persona acknowledges, two approvers approve (an Update and a Signal), and
 * the request is approved. `test/fixtures/histories/approve-with-personas.json` is a history of this run.
 */
export async function approveWithPersonas(
  env: TestWorkflowEnvironment,
  taskQueue: string,
): Promise<{ handle: WorkflowHandle<typeof approvalWorkflow>; final: RequestView }> {
  const plan = makePlan({ minApprovals: 2, personas: [{ name: 'DBA', members: ['U_DBA'] }] });
  const input = await approvalInput(env, { plan, timeoutSec: 24 * 3600 });
  const handle = await env.client.workflow.start<typeof approvalWorkflow>('approvalWorkflow', {
    taskQueue,
    workflowId: input.requestId,
    args: [input],
  });
  await handle.executeUpdate(personaAckUpdate, { args: [{ persona: 'DBA', userId: 'U_DBA' }] });
  await handle.executeUpdate(approveUpdate, { args: [{ userId: 'U_ALICE' }] });
  await handle.signal(approveSignal, { userId: 'U_BOB' });
  return { handle, final: await handle.result() };
}
