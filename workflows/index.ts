export { approvalWorkflow } from './approval.js';
export { purgeSweeperWorkflow } from './purge-sweeper.js';
