import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import type { ClientInterceptors } from '@temporalio/client';
import { TemporalRequestGateway } from './temporal-gateway.js';
import type { StuckReport } from './watch-source.js';
import type { WatcherOptions } from './watcher.js';

/** About 2 s of backoff in all: a server restart's blip is ridden out, an outage answers 503 promptly. */
const API_RPC_ATTEMPTS = 5;

export interface GatewayOptions {
  address: string;
  namespace: string;
  taskQueue: string;
  /** Client interceptors (tracing carries the HTTP request's trace into the workflows). */
  interceptors?: ClientInterceptors | undefined;
  /** How waiters are woken: the change feed, the history long-poll bound, sweeps (gateway/watcher.ts). */
  watcher?: WatcherOptions | undefined;
  /** A read found a request whose workflow task keeps failing (told once per request per process). */
  onStuck?: ((report: StuckReport) => void) | undefined;
}

/**
 * gRPC's reconnection backoff grows to 120 s by default: after an outage of the server, the API would come back
 * long after the server did. Capped at 1 s (issue 15: recovery within 5 s of the server being back).
 */
export const RECONNECT_CHANNEL_ARGS = {
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 1000,
};

/**
 * A gateway on a lazy connection: the API starts and answers 503 while Temporal is away, then recovers by itself.
 * The SDK's default retries of an unreachable server last ~20 s; a caller (or Slack's 3 s budget) is better served
 * by a prompt 503.
 */
export function connectGateway(opts: GatewayOptions): { gateway: TemporalRequestGateway; close(): Promise<void> } {
  const connection = Connection.lazy({
    address: opts.address,
    channelArgs: RECONNECT_CHANNEL_ARGS,
    interceptors: [makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: API_RPC_ATTEMPTS }))],
  });
  const client = new Client({
    connection,
    namespace: opts.namespace,
    ...(opts.interceptors ? { interceptors: opts.interceptors } : {}),
  });
  const gateway = new TemporalRequestGateway(client, connection, opts.taskQueue, opts.watcher, opts.onStuck);
  return {
    gateway,
    async close() {
      await gateway.close();
      await connection.close();
    },
  };
}
