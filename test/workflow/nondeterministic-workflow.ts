import { sleep } from '@temporalio/workflow';

/**
 * A stand-in for a careless edit of the approval workflow (a timer where the history has an activity), so the
 * replay suite can show that a determinism break fails it.
 */
export async function approvalWorkflow(): Promise<void> {
  await sleep('1 hour');
}
