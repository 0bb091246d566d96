import { createRequire } from 'node:module';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { envDetectorSync, Resource } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry/lib/client/index.js';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/worker/index.js';
import type { ClientInterceptors } from '@temporalio/client';
import type { WorkerOptions } from '@temporalio/worker';
import { WebClient, type WebAPICallResult } from '@slack/web-api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config/env.js';

/**
 * OpenTelemetry for one process (TRACING_ENABLED, TRACING_EXPORTER=console|otlp; OTLP honours the standard
 * OTEL_EXPORTER_OTLP_* variables). One trace runs from the HTTP request through the Temporal client, the
 * workflow (spans made in the sandbox, exported through a sink), its activities and their Slack calls.
 * Nothing here patches modules, so it may start at any point before the client and worker are created.
 */
export interface Tracing {
  readonly processor: SpanProcessor;
  readonly resource: Resource;
  /** Exports every finished span now (tests, shutdown). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** Returns null when tracing is off; `exporter` replaces the configured one (tests pass an in-memory one). */
export function startTracing(
  config: Pick<Config, 'TRACING_ENABLED' | 'TRACING_EXPORTER'>,
  serviceName: string,
  exporter?: SpanExporter,
): Tracing | null {
  if (!config.TRACING_ENABLED) return null;
  const resource = new Resource({ 'service.name': serviceName }).merge(envDetectorSync.detect());
  const processor = new BatchSpanProcessor(exporter ?? createExporter(config.TRACING_EXPORTER));
  const sdk = new NodeSDK({
    resource,
    autoDetectResources: false,
    spanProcessors: [processor],
    logRecordProcessors: [],
    instrumentations: [],
  });
  sdk.start();
  return { processor, resource, flush: () => processor.forceFlush(), shutdown: () => sdk.shutdown() };
}

function createExporter(kind: Config['TRACING_EXPORTER']): SpanExporter {
  return kind === 'otlp' ? new OTLPTraceExporter() : new JsonLineSpanExporter();
}

/**
 * The console exporter: one JSON line per span on stderr, so stdout stays a clean NDJSON audit stream and a
 * log pipeline can parse both.
 */
export class JsonLineSpanExporter implements SpanExporter {
  export(spans: ReadableSpan[], done: Parameters<SpanExporter['export']>[1]): void {
    for (const s of spans) {
      const { traceId, spanId } = s.spanContext();
      const line = {
        traceId,
        spanId,
        parentSpanId: s.parentSpanId ?? null,
        name: s.name,
        kind: SpanKind[s.kind],
        service: s.resource.attributes['service.name'],
        start: new Date(s.startTime[0] * 1000 + s.startTime[1] / 1e6).toISOString(),
        durationMs: s.duration[0] * 1000 + s.duration[1] / 1e6,
        status: SpanStatusCode[s.status.code],
        attributes: s.attributes,
      };
      process.stderr.write(`${JSON.stringify(line)}\n`);
    }
    done({ code: 0 });
  }

  async shutdown(): Promise<void> {}
}

/** Temporal client interceptors: start, signal, update and query calls carry the caller's trace to the workflow. */
export function tracingClientInterceptors(): ClientInterceptors {
  return { workflow: [new OpenTelemetryWorkflowClientInterceptor()] };
}

/** The workflow-side interceptors module; a pre-built bundle must be made with it (`workflowInterceptorModules`). */
export const WORKFLOW_TRACING_MODULE = createRequire(import.meta.url).resolve(
  '@temporalio/interceptors-opentelemetry/lib/workflow-interceptors',
);

/**
 * Worker options that trace workflows (spans leave the sandbox through the `exporter` sink) and activities.
 * With a pre-built bundle the workflow interceptors are already in it (`workflowInterceptorModules`).
 */
export function tracingWorkerOptions(
  tracing: Tracing,
  opts: { prebuiltBundle: boolean },
): Pick<WorkerOptions, 'interceptors' | 'sinks'> {
  return {
    interceptors: {
      ...(opts.prebuiltBundle ? {} : { workflowModules: [WORKFLOW_TRACING_MODULE] }),
      activity: [
        (ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
    },
    sinks: { exporter: makeWorkflowExporter(tracing.processor, tracing.resource) },
  };
}

/**
 * A WebClient whose every Web API call is a client span (`slack chat.postMessage`). Slack methods are bound to
 * `apiCall` when the client is built, so overriding it here covers them all.
 */
export class TracedWebClient extends WebClient {
  override async apiCall(method: string, options?: Record<string, unknown>): Promise<WebAPICallResult> {
    const tracer = trace.getTracer('approval-guard.slack');
    return tracer.startActiveSpan(
      `slack ${method}`,
      { kind: SpanKind.CLIENT, attributes: { 'rpc.system': 'slack', 'rpc.method': method } },
      async (span) => {
        try {
          return await super.apiCall(method, options);
        } catch (err) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
          throw err;
        } finally {
          span.end();
        }
      },
    );
  }
}

/** Probes and scrapes: a span per Prometheus scrape or kubelet probe would bury the traces that matter. */
const UNTRACED_ROUTES = new Set(['/metrics', '/healthz', '/readyz']);

/**
 * A server span per HTTP request, parented to an incoming `traceparent`. Fastify reads the body in the socket's
 * async context, so the span's context is entered twice: for the early hooks and again around the handler.
 * Only the route template is recorded: query strings carry request tokens.
 */
export function traceHttpRequests(app: FastifyInstance): void {
  const tracer = trace.getTracer('approval-guard.http');
  const active = new WeakMap<FastifyRequest, Context>();
  app.addHook('onRequest', (req, reply, done) => {
    const route = req.routeOptions.url;
    if (route && UNTRACED_ROUTES.has(route)) return done();
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = tracer.startSpan(
      route ? `${req.method} ${route}` : req.method,
      {
        kind: SpanKind.SERVER,
        attributes: { 'http.request.method': req.method, ...(route ? { 'http.route': route } : {}) },
      },
      parent,
    );
    const ctx = trace.setSpan(parent, span);
    active.set(req, ctx);
    reply.raw.once('close', () => endHttpSpan(span, reply.raw.statusCode));
    context.with(ctx, done);
  });
  app.addHook('preHandler', (req, _reply, done) => {
    const ctx = active.get(req);
    if (ctx) context.with(ctx, done);
    else done();
  });
}

function endHttpSpan(span: Span, statusCode: number): void {
  span.setAttribute('http.response.status_code', statusCode);
  if (statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}
