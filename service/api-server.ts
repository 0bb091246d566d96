import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Redis } from 'ioredis';
import { buildApp } from '../api/app.js';
import { PolicyStore } from '../api/policy-store.js';
import { createReceiptSigner, resolveReceiptKey } from '../api/receipts.js';
import { closeRedis, connectRedis, createRedisClient } from '../api/redis.js';
import { createTokenSigner, resolveSecret } from '../api/security.js';
import { temporalAddress, type Config } from '../config/env.js';
import { connectGateway } from '../gateway/connect.js';
import type { ChangeFeed } from '../gateway/events.js';
import { RedisChangeFeed } from '../gateway/events-redis.js';
import type { TemporalRequestGateway } from '../gateway/temporal-gateway.js';
import type { RequestGateway } from '../gateway/types.js';
import type { AuditLog } from '../observability/audit.js';
import { installVisibilityGauges, MAX_LISTED, policyActions } from '../observability/gauges.js';
import type { Metrics } from '../observability/metrics.js';
import { tracingClientInterceptors, type Tracing } from '../observability/tracing.js';
import { slackHttpPlugin } from '../slack/http.js';
import { createSlackInteractions } from '../slack/interactions.js';
import { createMemoryReplayCache, createRedisReplayCache } from '../slack/replay-cache.js';
import { startSocketMode, type SocketMode } from '../slack/socket-mode.js';

const LISTEN_BACKLOG = 4096;

export interface ApiServer {
  app: FastifyInstance;
  url: string;
  policy: PolicyStore;
  gateway: TemporalRequestGateway;
  /** With SLACK_APP_TOKEN: the Socket Mode connection interactions arrive over. */
  socketMode: SocketMode | null;
  close(): Promise<void>;
}

export interface ApiServerOptions {
  config: Config;
  metrics: Metrics;
  audit: AuditLog;
  logger?: boolean | object;
  /** Operational notes (Temporal or the change feed away and back, Socket Mode reconnecting); default stderr. */
  log?: (msg: string) => void;
  /** When set, HTTP requests are spans and Temporal calls carry their trace to the workflows. */
  tracing?: Tracing | null;
  /**
   * Where the workers' state changes are heard (the worker in this process, for `npm start`). Otherwise Redis pub/sub
   * with REDIS_URL, else none: waiters are then woken by history long-polls and sweeps alone.
   */
  changes?: ChangeFeed | null;
}

/** The door to Temporal, its waiters woken by the change feed (given, or Redis pub/sub with REDIS_URL). */
function temporalFor(opts: ApiServerOptions, log: (msg: string) => void) {
  const { config } = opts;
  const ownFeed =
    opts.changes === undefined && config.REDIS_URL
      ? new RedisChangeFeed({
          url: config.REDIS_URL,
          namespace: config.TEMPORAL_NAMESPACE,
          taskQueue: config.TEMPORAL_TASK_QUEUE,
          log,
        })
      : null;
  const temporal = connectGateway({
    address: temporalAddress(config),
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    interceptors: opts.tracing ? tracingClientInterceptors() : undefined,
    watcher: {
      feed: opts.changes ?? ownFeed,
      maxHistoryPolls: config.WATCH_HISTORY_POLLS,
      sweepMs: config.WATCH_SWEEP_SEC * 1000,
      maxAgeMs: config.RETENTION_MAX_AGE_SEC * 1000,
      log,
    },
    onStuck: ({ requestId, action, since, attempts, cause }) => {
      opts.metrics.requestsStuck.inc({ action });
      opts.audit.emit({ event: 'request_stuck', requestId, action, actor: 'system', since, attempts, cause });
      log(`request ${requestId} is stuck: ${cause} (attempt ${attempts} since ${since})`);
    },
  });
  return {
    gateway: temporal.gateway,
    async close() {
      await temporal.close();
      await ownFeed?.close();
    },
  };
}

/** Composition root of the API process: the gateway, policy, tokens, the Slack plugin and the routes, on PORT. */
export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const { config, metrics, audit } = opts;
  const log = opts.log ?? ((msg: string) => console.error(`[api] ${msg}`));
  const temporal = temporalFor(opts, log);
  const { gateway } = temporal;
  const policy = new PolicyStore(config.POLICY_PATH, metrics, audit);
  await policy.reload('startup');
  // With REDIS_URL the limiter and the Slack replay cache are shared by every API replica.
  const redis = config.REDIS_URL ? createRedisClient(config.REDIS_URL) : null;
  const { plugin: slack, socketMode } = slackSurfaces({ config, gateway, redis, metrics, audit, log });
  const deps = {
    config,
    gateway,
    policy,
    tokens: createTokenSigner(resolveSecret(config.TOKEN_SECRET, '.data/token-secret')),
    receipts: createReceiptSigner(resolveReceiptKey(config.RECEIPT_PRIVATE_KEY, '.data/receipt-key.pem')),
    metrics,
    audit,
    redis,
  };
  const app = await buildApp(deps, { logger: opts.logger ?? false, tracing: !!opts.tracing, plugins: [slack] });
  if (redis) await connectRedis(redis, (msg) => app.log.warn(msg));
  installVisibilityGauges({
    metrics,
    listOpen: () => gateway.openRequests(MAX_LISTED),
    knownActions: () => policyActions(policy.loaded),
    log: (msg) => app.log.warn(msg),
  });
  // A burst of waiters connecting (thousands a second) overflows Node's default accept queue of 511: the kernel then
  // drops connections (clients retry a second later, or are reset). The kernel caps this at net.core.somaxconn.
  const url = await app.listen({ port: config.PORT, host: config.HOST, backlog: LISTEN_BACKLOG });
  return {
    app,
    url,
    policy,
    gateway,
    socketMode,
    async close() {
      await socketMode?.stop();
      await app.close();
      await temporal.close();
      if (redis) await closeRedis(redis);
    },
  };
}

/**
 * Where Slack's interactions come in: the Bolt app behind `/api/slack/interactions`, and with SLACK_APP_TOKEN the
 * Socket Mode connection to the same app. One replay cache for both, shared through Redis if set.
 */
function slackSurfaces(opts: {
  config: Config;
  gateway: RequestGateway;
  redis: Redis | null;
  metrics: Metrics;
  audit: AuditLog;
  log: (msg: string) => void;
}): { plugin: FastifyPluginAsync; socketMode: SocketMode | null } {
  const { config, gateway, redis, metrics, audit, log } = opts;
  const interactions = createSlackInteractions({
    gateway,
    botToken: config.SLACK_BOT_TOKEN,
    apiUrl: config.SLACK_API_URL,
    metrics,
    audit,
  });
  const replayCache = redis ? createRedisReplayCache(redis) : createMemoryReplayCache();
  const socketMode = config.SLACK_APP_TOKEN
    ? startSocketMode({
        interactions,
        appToken: config.SLACK_APP_TOKEN,
        apiUrl: config.SLACK_API_URL,
        replayCache,
        metrics,
        audit,
        log,
      })
    : null;
  const plugin = slackHttpPlugin({
    interactions,
    signingSecret: config.SLACK_SIGNING_SECRET,
    replayCache,
    metrics,
    audit,
  });
  return { plugin, socketMode };
}
