import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/env.js';
import type { AuditLog } from '../observability/audit.js';
import { installVisibilityGauges, policyActions, temporalOpenRequests } from '../observability/gauges.js';
import type { Metrics } from '../observability/metrics.js';
import { tracingClientInterceptors, type Tracing } from '../observability/tracing.js';
import { createSlackInteractions } from '../slack/interactions.js';
import { buildApp } from './app.js';
import { PolicyStore } from './policy-store.js';
import { createReceiptSigner, resolveReceiptKey } from './receipts.js';
import { closeRedis, connectRedis, createRedisClient } from './redis.js';
import { createMemoryReplayCache, createRedisReplayCache } from './replay-cache.js';
import { RequestGateway } from './requests.js';
import { createTokenSigner, resolveSecret } from './security.js';

export interface ApiServer {
  app: FastifyInstance;
  url: string;
  policy: PolicyStore;
  gateway: RequestGateway;
  close(): Promise<void>;
}

const HEALTH_DEADLINE_MS = 1500;
/** About 2 s of backoff in all: a server restart's blip is ridden out, an outage answers 503 promptly. */
const API_RPC_ATTEMPTS = 5;

/** Composition root of the API: Temporal client, policy, tokens, Slack app and routes, listening on PORT. */
export async function startApiServer(opts: {
  config: Config;
  metrics: Metrics;
  audit: AuditLog;
  logger?: boolean | object;
  /** When set, HTTP requests are spans and Temporal calls carry their trace to the workflows. */
  tracing?: Tracing | null;
}): Promise<ApiServer> {
  const { config, metrics, audit } = opts;
  // Lazy: the API starts and answers 503 while Temporal is away, then recovers by itself. The SDK's default retries
  // of an unreachable server last ~20 s; a caller (or Slack's 3 s budget) is better served by a prompt 503.
  const connection = Connection.lazy({
    address: config.TEMPORAL_ADDRESS ?? `127.0.0.1:${config.TEMPORAL_DEV_PORT}`,
    interceptors: [makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: API_RPC_ATTEMPTS }))],
  });
  const client = new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    ...(opts.tracing ? { interceptors: tracingClientInterceptors() } : {}),
  });
  const gateway = new RequestGateway(client, config.TEMPORAL_TASK_QUEUE);
  const policy = new PolicyStore(config.POLICY_PATH, metrics, audit);
  await policy.reload('startup');
  const tokens = createTokenSigner(resolveSecret(config.TOKEN_SECRET, '.data/token-secret'));
  const receipts = createReceiptSigner(resolveReceiptKey(config.RECEIPT_PRIVATE_KEY, '.data/receipt-key.pem'));
  const slack = createSlackInteractions({
    gateway,
    botToken: config.SLACK_BOT_TOKEN,
    apiUrl: config.SLACK_API_URL,
    metrics,
    audit,
  });
  // With REDIS_URL the limiter and the Slack replay cache are shared by every API replica.
  const redis = config.REDIS_URL ? createRedisClient(config.REDIS_URL) : null;
  const app = await buildApp(
    {
      config,
      gateway,
      policy,
      tokens,
      receipts,
      metrics,
      audit,
      slack,
      replayCache: redis ? createRedisReplayCache(redis) : createMemoryReplayCache(),
      redis,
      checkTemporal: async () => {
        await connection.withDeadline(Date.now() + HEALTH_DEADLINE_MS, () => connection.healthService.check({}));
      },
    },
    { logger: opts.logger ?? false, tracing: !!opts.tracing },
  );
  if (redis) await connectRedis(redis, (msg) => app.log.warn(msg));
  installVisibilityGauges({
    metrics,
    listOpen: temporalOpenRequests(client, config.TEMPORAL_TASK_QUEUE),
    knownActions: () => policyActions(policy.loaded),
    log: (msg) => app.log.warn(msg),
  });
  const url = await app.listen({ port: config.PORT, host: config.HOST });
  return {
    app,
    url,
    policy,
    gateway,
    async close() {
      gateway.watcher.close();
      await app.close();
      await connection.close();
      if (redis) await closeRedis(redis);
    },
  };
}
