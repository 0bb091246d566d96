export { approvalWorkflow } from './approval.js';
