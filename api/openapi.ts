import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { z } from 'zod';

const DOCS_PREFIX = '/docs';

type Security = NonNullable<FastifySchema['security']>;
/** Who may call a route, by the schemes of the document (`{}`: none needed when AGENT_API_KEYS is unset). */
export const AGENT_SECURITY: Security = [{ agentKey: [] }, {}];
export const ADMIN_SECURITY: Security = [{ adminToken: [] }];
export const SLACK_SECURITY: Security = [{ slackSignature: [] }];

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
 * The OpenAPI document at `/docs/json` and Swagger UI at `/docs`, built from the routes themselves. Routes carry
 * their zod schemas in `schema` for the document only: zod stays the validator inside each handler (one error path,
 * one set of messages), so Fastify's own validation and serialization are turned off. Register before any route:
 * the document lists the routes registered after it.
 */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
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
    // A route without a schema has none here either, whatever the types say.
    transform: ({ schema, url }) => ({ schema: schema && toJsonSchemas(schema), url }),
  });
  await app.register(swaggerUi, { routePrefix: DOCS_PREFIX, staticCSP: DOCS_CSP });
}

const INPUT_PARTS = ['body', 'querystring', 'params', 'headers'] as const;

/** A route's schema with every zod schema in it replaced by its JSON Schema (requests as input, answers as output). */
function toJsonSchemas(schema: FastifySchema): FastifySchema {
  const out: FastifySchema = { ...schema };
  for (const part of INPUT_PARTS) if (schema[part] !== undefined) out[part] = jsonSchemaOf(schema[part], 'input');
  if (schema.response && typeof schema.response === 'object') {
    out.response = Object.fromEntries(
      Object.entries(schema.response).map(([code, answer]) => [code, jsonSchemaOf(answer, 'output')]),
    );
  }
  return out;
}

function jsonSchemaOf(value: unknown, io: 'input' | 'output'): unknown {
  if (!(value instanceof z.ZodType)) return value;
  const { $schema: _dialect, ...jsonSchema } = z.toJSONSchema(value, { io, unrepresentable: 'any' });
  return jsonSchema;
}
