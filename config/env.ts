import { createPrivateKey } from 'node:crypto';
import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', ''])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));
const hostPort = z.string().regex(/^[\w.-]+:\d{1,5}$/, 'must be host:port');
/** `name:key,name:key` (api/auth.ts reads it); keys hold no comma or whitespace. */
const agentKeys = optionalString.refine(
  (v) => v === undefined || v.split(',').every((pair) => /^\s*[^:,\s]+:[^,\s]+\s*$/.test(pair)),
  'must be name:key pairs separated by commas',
);

/** Every environment variable of the runbook and SPEC section 8, parsed once at start-up. */
export const envSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    PORT: int(0, 65535).default(8080),
    HOST: z.string().default('0.0.0.0'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

    TEMPORAL_ADDRESS: hostPort.optional(),
    TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
    TEMPORAL_TASK_QUEUE: z.string().min(1).default('approval-guard'),
    TEMPORAL_DEV_DB: z.string().min(1).default('.data/temporal.sqlite'),
    TEMPORAL_DEV_PORT: int(1, 65535).default(7233),
    TEMPORAL_UI_PORT: int(0, 65535).default(8233),
    /** Temporal SDK (Core) metrics of the worker, Prometheus text on their own port. */
    TEMPORAL_METRICS_PORT: int(1, 65535).optional(),
    /** A worker-only process (`npm run start:worker`) serves its counters on this port (0 = any free port). */
    WORKER_METRICS_PORT: int(0, 65535).optional(),
    /** Threads running workflow code in each worker (the SDK's default is one). */
    WORKER_WORKFLOW_THREADS: int(1, 16).optional(),
    /** Workflow code bundled ahead of time (`npm run build:workflows -- DIR`); unset, the worker bundles at start. */
    WORKFLOW_BUNDLE_DIR: optionalString,

    POLICY_PATH: z.string().min(1).default('policies/policy.yaml'),
    TOKEN_SECRET: optionalString,
    /** The one operator token (its holder acts as `admin`); ADMIN_TOKENS names each operator instead. */
    ADMIN_TOKEN: optionalString,
    /** Named operators, `name:token,...`: the name is the actor of every admin act done with that token. */
    ADMIN_TOKENS: agentKeys,
    AGENT_API_KEYS: agentKeys,
    /** Ed25519 private key (PEM, `\n` escapes allowed) that signs decision receipts; generated in development. */
    RECEIPT_PRIVATE_KEY: optionalString
      .transform((v) => v?.replaceAll('\\n', '\n'))
      .refine((v) => v === undefined || isEd25519PrivateKey(v), 'must be an Ed25519 private key in PEM'),
    SSE_HEARTBEAT_MS: int(10).default(25_000),
    /** History long-polls an API process holds at most, while the change feed is absent or down (gateway/watcher.ts). */
    WATCH_HISTORY_POLLS: int(0, 100_000).default(100),
    /** A waited-on request the change feed covers is read again at least this often (a lost notice costs that long). */
    WATCH_SWEEP_SEC: int(1, 86_400).default(60),

    SLACK_SIGNING_SECRET: optionalString,
    SLACK_BOT_TOKEN: optionalString,
    /** An app-level token (`xapp-…`, scope connections:write): interactions then arrive over Socket Mode. */
    SLACK_APP_TOKEN: optionalString.refine((v) => v === undefined || v.startsWith('xapp-'), 'must be an xapp- token'),
    SLACK_API_URL: z.url().optional(),
    SLACK_UPDATE_QUEUE: bool.default(false),
    /** With SLACK_UPDATE_QUEUE, how long changes to one message accumulate before they go out as one update. */
    SLACK_UPDATE_QUEUE_WINDOW_MS: int(1, 60_000).default(1000),

    OVERRIDE_MAX_KEYS: int(1).default(10),
    OVERRIDE_MAX_CHARS: int(1).default(2000),
    RATE_LIMIT_CAPACITY: int(1).default(60),
    RATE_LIMIT_REFILL_PER_SEC: z.coerce.number().positive().default(1),
    REDIS_URL: optionalString,
    /** Superseded by Temporal (the store); accepted so existing deployments keep starting. */
    STORE_BACKEND: z.enum(['memory', 'redis']).optional(),
    /** Superseded by workflow timers; accepted so existing deployments keep starting. */
    SCHEDULER_INTERVAL_MS: int(1).optional(),

    TRACING_ENABLED: bool.default(false),
    TRACING_EXPORTER: z.enum(['console', 'otlp']).default('console'),
    AUDIT_FILE: optionalString,

    RETENTION_MAX_AGE_SEC: int(1).default(7 * 24 * 3600),
    RETENTION_SWEEP_INTERVAL_SEC: int(1).default(3600),
    RETENTION_ARCHIVE_DIR: z.string().min(1).default('.data/archive'),
  })
  .superRefine((env, ctx) => {
    if (env.NODE_ENV !== 'production') return;
    const required = ['SLACK_SIGNING_SECRET', 'SLACK_BOT_TOKEN', 'TOKEN_SECRET', 'RECEIPT_PRIVATE_KEY'] as const;
    for (const key of required) {
      // Socket Mode deliveries come over the app-token's socket, unsigned: no signing secret to check them with.
      if (key === 'SLACK_SIGNING_SECRET' && env.SLACK_APP_TOKEN) continue;
      if (!env[key]) ctx.addIssue({ code: 'custom', path: [key], message: 'is required when NODE_ENV=production' });
    }
    if (!env.ADMIN_TOKEN && !env.ADMIN_TOKENS) {
      ctx.addIssue({
        code: 'custom',
        path: ['ADMIN_TOKEN'],
        message: 'or ADMIN_TOKENS is required when NODE_ENV=production',
      });
    }
  });

function isEd25519PrivateKey(pem: string): boolean {
  try {
    return createPrivateKey(pem).asymmetricKeyType === 'ed25519';
  } catch {
    return false;
  }
}

export type Config = z.infer<typeof envSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses the environment; a bad value throws one error naming every offending variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
  throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
}

/** The Temporal frontend this process talks to: TEMPORAL_ADDRESS, else the embedded dev server's port on loopback. */
export function temporalAddress(config: Pick<Config, 'TEMPORAL_ADDRESS' | 'TEMPORAL_DEV_PORT'>): string {
  return config.TEMPORAL_ADDRESS ?? `127.0.0.1:${config.TEMPORAL_DEV_PORT}`;
}
