import type { Redis } from 'ioredis';
import type { Config } from '../config/env.js';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';
import type { PolicyStore } from './policy-store.js';
import type { ReceiptSigner } from './receipts.js';
import type { ReplayCache } from './replay-cache.js';
import type { RequestGateway } from './requests.js';
import type { TokenSigner } from './security.js';
import type { SlackInteractions } from '../slack/interactions.js';

/** Everything the HTTP layer needs, assembled by the composition root (api/main.ts or dev/start.ts). */
export interface ApiDeps {
  config: Config;
  gateway: RequestGateway;
  policy: PolicyStore;
  tokens: TokenSigner;
  /** Signs and verifies decision receipts. */
  receipts: ReceiptSigner;
  metrics: Metrics;
  audit: AuditLog;
  replayCache: ReplayCache;
  /** With REDIS_URL: the store the rate limiter shares with the other API replicas (null: this process only). */
  redis: Redis | null;
  slack: SlackInteractions;
  /** Resolves when Temporal answers; `/readyz` uses it. */
  checkTemporal: () => Promise<void>;
}
