import { condition, defineUpdate, setHandler } from '@temporalio/workflow';

/** The floor's only message: the decision, answered at once with what was decided. */
export const decideUpdate = defineUpdate<string, [string]>('decide');

/**
 * The floor: the least a durable approval can cost on this Temporal server. No search attributes, no activities,
 * no timers: start, wait for one Update, return. Every service figure is read as a ratio to this.
 */
export async function floorWorkflow(): Promise<string> {
  let decision: string | null = null;
  setHandler(decideUpdate, (d: string) => {
    decision = d;
    return d;
  });
  await condition(() => decision !== null);
  return decision ?? '';
}
