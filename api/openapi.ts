import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { createJsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';

const DOCS_PREFIX = '/docs';

/**
 * The API's pages are JSON and forbid everything (api/http-hardening.ts); Swagger UI is a page that loads its own
 * scripts, styles and the document, so its routes get a policy of their own: same origin only, nothing inline.
 */
const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "script-src-attr 'none'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "object-src 'none'",
].join('; ');

const TAGS = [
  { name: 'agent', description: 'Create approval requests and wait for their outcome' },
  { name: 'lifecycle', description: 'Cancel, re-request, stream' },
  { name: 'receipts', description: 'Signed decision receipts' },
  { name: 'slack', description: 'Slack interactivity endpoint' },
  { name: 'admin', description: 'Operator routes behind ADMIN_TOKEN' },
  { name: 'operations', description: 'Probes and metrics' },
];

/** The version of the wire contract (SPEC section 3) the document describes; agents integrate against it. */
const API_VERSION = '1.0.0';

/**
 * Routes declare their zod schemas once (fastify-type-provider-zod): Fastify validates requests and serializes
 * answers with them, the handlers are typed by them, and the OpenAPI document at `/docs/json` (Swagger UI at
 * `/docs`) is generated from them. Register before any route: the document lists the routes registered after it.
 */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Slack Guard approval API',
        description: 'Approval gate for AI agents: request, wait for a human decision, run exactly what was approved.',
        version: API_VERSION,
      },
      tags: TAGS,
      components: {
        securitySchemes: {
          agentKey: { type: 'http', scheme: 'bearer', description: 'An agent key of AGENT_API_KEYS, when set' },
          adminToken: { type: 'apiKey', in: 'header', name: 'x-admin-token' },
          slackSignature: { type: 'apiKey', in: 'header', name: 'x-slack-signature' },
        },
      },
    },
    // OpenAPI 3.1 is JSON Schema 2020-12: zod's output goes in as it is.
    convertConstToEnum: false,
    transform: createJsonSchemaTransform({
      skipList: [`${DOCS_PREFIX}/*`, `${DOCS_PREFIX}/`, DOCS_PREFIX],
      zodToJsonConfig: { unrepresentable: 'any' },
    }),
  });
  await app.register(swaggerUi, { routePrefix: DOCS_PREFIX, staticCSP: DOCS_CSP });
}
