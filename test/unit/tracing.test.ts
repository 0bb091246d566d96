import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { trace } from '@opentelemetry/api';
import { startTracing } from '../../observability/tracing.js';

test('tracing is off unless TRACING_ENABLED', () => {
  expect(startTracing({ TRACING_ENABLED: false, TRACING_EXPORTER: 'otlp' }, 'svc')).toBeNull();
});

test('the otlp exporter sends spans to OTEL_EXPORTER_OTLP_ENDPOINT', async () => {
  const received: Array<{ url: string; body: string }> = [];
  const collector = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ url: req.url ?? '', body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  const { port } = collector.address() as AddressInfo;
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${port}`;
  try {
    const tracing = startTracing({ TRACING_ENABLED: true, TRACING_EXPORTER: 'otlp' }, 'approval-guard-unit');
    trace.getTracer('unit').startSpan('probe-span').end();
    await tracing!.flush();
    await tracing!.shutdown();
  } finally {
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    await new Promise<void>((resolve) => collector.close(() => resolve()));
  }
  expect(received).toHaveLength(1);
  expect(received[0]!.url).toBe('/v1/traces');
  expect(received[0]!.body).toContain('probe-span');
  expect(received[0]!.body).toContain('approval-guard-unit');
});
