/**
 * @slack-guard/client: ask the approval service before running a risky action, wait for a human decision, and run
 * exactly the params that were approved. Types come from the service's own zod schemas (domain/api-schemas.ts).
 */
export {
  GuardClient,
  type ApprovalOutcome,
  type CreatedRequest,
  type GuardClientOptions,
  type RequestApprovalOptions,
  type WaitOptions,
} from './client.js';
export {
  CancelledError,
  DeniedError,
  ExpiredError,
  GuardError,
  IdempotencyConflictError,
  InvalidRequestError,
  NotFoundError,
  OutcomeError,
  PolicyDeniedError,
  RateLimitedError,
  UnauthorizedError,
  UnavailableError,
  WaitTimeoutError,
} from './errors.js';
export {
  checkReceipt,
  verifyReceipt,
  type ReceiptCheck,
  type ReceiptExpectations,
  type ReceiptProblem,
} from './receipts.js';
export type {
  ActionsResponse,
  ActionSummary,
  CreateRequestInput,
  Outcome,
  ReceiptClaims,
  StateResponse,
  StatusResponse,
} from '../../../domain/api-schemas.js';
