import type { Redis } from 'ioredis';
import type { Config } from '../config/env.js';
import type { RequestGateway } from '../gateway/types.js';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';
import type { PolicyStore } from './policy-store.js';
import type { ReceiptSigner } from './receipts.js';
import type { TokenSigner } from './security.js';

/** Everything the HTTP layer needs, assembled by a composition root (service/) or a test. */
export interface ApiDeps {
  config: Config;
  /** The door to Temporal; tests pass an in-memory one. */
  gateway: RequestGateway;
  policy: PolicyStore;
  tokens: TokenSigner;
  /** Signs and verifies decision receipts. */
  receipts: ReceiptSigner;
  metrics: Metrics;
  audit: AuditLog;
  /** With REDIS_URL: the store the rate limiter shares with the other API replicas (null: this process only). */
  redis: Redis | null;
}
