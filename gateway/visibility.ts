import { OPEN_STATUSES } from '../domain/request-state.js';
import { GUARD_SEARCH_ATTRIBUTE_KEYS as sa } from '../temporal/search-attributes.js';
import type { RequestFilter } from './types.js';

/** The workflow type of an approval request: the one place that names it outside the workflow code. */
export const APPROVAL_WORKFLOW_TYPE = 'approvalWorkflow';

/** A visibility query string literal: any value, quoted so it can never change the query's shape. */
export function literal(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/** `Name = 'value'` clauses (undefined values left out) joined with AND. */
function clauses(pairs: Record<string, string | undefined>): string[] {
  return Object.entries(pairs)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([name, value]) => `${name} = ${literal(value)}`);
}

/** Approval requests of one task queue matching `filter` (a lineage spans task queues: it is matched alone). */
export function requestsQuery(taskQueue: string, filter: RequestFilter): string {
  const scope = filter.lineageId
    ? { [sa.GuardLineageId.name]: filter.lineageId }
    : { WorkflowType: APPROVAL_WORKFLOW_TYPE, TaskQueue: taskQueue };
  return clauses({
    ...scope,
    [sa.GuardStatus.name]: filter.status,
    [sa.GuardAction.name]: filter.action,
    [sa.GuardRequester.name]: filter.requester,
  }).join(' AND ');
}

/** Open requests: running, and a non-terminal GuardStatus (a decided request still archiving is not pending). */
export function openRequestsQuery(taskQueue: string): string {
  const statuses = OPEN_STATUSES.map(literal).join(', ');
  return [
    ...clauses({ WorkflowType: APPROVAL_WORKFLOW_TYPE, TaskQueue: taskQueue }),
    `ExecutionStatus = 'Running'`,
    `${sa.GuardStatus.name} IN (${statuses})`,
  ].join(' AND ');
}
