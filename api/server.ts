import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/env.js';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';
import { createSlackInteractions } from '../slack/interactions.js';
import { buildApp } from './app.js';
import { PolicyStore } from './policy-store.js';
import { createMemoryReplayCache } from './replay-cache.js';
import { RequestGateway } from './requests.js';
import { createTokenSigner, resolveSecret } from './security.js';

export interface ApiServer {
  app: FastifyInstance;
  url: string;
  policy: PolicyStore;
  close(): Promise<void>;
}

const HEALTH_DEADLINE_MS = 1500;

/** Composition root of the API: Temporal client, policy, tokens, Slack app and routes, listening on PORT. */
export async function startApiServer(opts: {
  config: Config;
  metrics: Metrics;
  audit: AuditLog;
  logger?: boolean | object;
}): Promise<ApiServer> {
  const { config, metrics, audit } = opts;
  // Lazy: the API starts and answers 503 while Temporal is away, then recovers by itself.
  const connection = Connection.lazy({ address: config.TEMPORAL_ADDRESS ?? `127.0.0.1:${config.TEMPORAL_DEV_PORT}` });
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const gateway = new RequestGateway(client, config.TEMPORAL_TASK_QUEUE);
  const policy = new PolicyStore(config.POLICY_PATH, metrics, audit);
  await policy.reload('startup');
  const tokens = createTokenSigner(resolveSecret(config.TOKEN_SECRET, '.data/token-secret'));
  const slack = createSlackInteractions({ gateway, botToken: config.SLACK_BOT_TOKEN, apiUrl: config.SLACK_API_URL });
  const app = await buildApp(
    {
      config,
      gateway,
      policy,
      tokens,
      metrics,
      audit,
      slack,
      replayCache: createMemoryReplayCache(),
      checkTemporal: async () => {
        await connection.withDeadline(Date.now() + HEALTH_DEADLINE_MS, () => connection.healthService.check({}));
      },
    },
    { logger: opts.logger ?? false },
  );
  const url = await app.listen({ port: config.PORT, host: config.HOST });
  return {
    app,
    url,
    policy,
    async close() {
      gateway.watcher.close();
      await app.close();
      await connection.close();
    },
  };
}
