import { condition, defineSignal, defineUpdate, setHandler } from '@temporalio/workflow';

/** The floor's only message: the decision, answered at once with what was decided. */
export const decideUpdate = defineUpdate<string, [string]>('decide');
/** A message that is recorded and changes nothing (≈ a Slack click sent as a Signal). */
export const noteSignal = defineSignal<[string]>('note');

/**
 * The floor: the least a durable approval can cost on this Temporal server. No search attributes, no activities,
 * no timers: start, wait for one Update, return (a Signal may come before it). Every service figure is read as a ratio to this.
 */
export async function floorWorkflow(): Promise<string> {
  let decision: string | null = null;
  setHandler(noteSignal, () => {});
  setHandler(decideUpdate, (d: string) => {
    decision = d;
    return d;
  });
  await condition(() => decision !== null);
  return decision ?? '';
}
