/**
 * What the service makes true of any Temporal server it uses, embedded or external: its custom search attributes
 * exist, and the namespace retention follows the configuration. Nothing here starts or supervises a server.
 */
import { Connection, isGrpcServiceError } from '@temporalio/client';
import type { SearchAttributeCliType } from './search-attributes.js';

export type SearchAttributeSpec = Record<string, SearchAttributeCliType>;

const MIN_RETENTION_SECONDS = 3600;
const GRPC_ALREADY_EXISTS = 6;

// Values of temporal.api.enums.v1.IndexedValueType.
export const INDEXED_VALUE_TYPE: Record<SearchAttributeCliType, number> = {
  Text: 1,
  Keyword: 2,
  Int: 3,
  Double: 4,
  Bool: 5,
  Datetime: 6,
  KeywordList: 7,
};

/**
 * Ensures `attrs` exist on an already-running server (e.g. the one TEMPORAL_ADDRESS names). Returns the names it
 * added. Throws when a name exists with another type, since the server would then reject every upsert of it.
 */
export async function registerSearchAttributes(
  address: string,
  namespace: string,
  attrs: SearchAttributeSpec,
): Promise<string[]> {
  const connection = await Connection.connect({ address });
  try {
    return await ensureSearchAttributes(connection, namespace, attrs);
  } finally {
    await connection.close();
  }
}

export async function ensureSearchAttributes(
  connection: Connection,
  namespace: string,
  attrs: SearchAttributeSpec,
): Promise<string[]> {
  const missing = diffSearchAttributes(await listCustomSearchAttributes(connection, namespace), attrs);
  if (!missing.length) return [];
  const searchAttributes = Object.fromEntries(missing.map((name) => [name, INDEXED_VALUE_TYPE[attrs[name]!]]));
  try {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes });
  } catch (err) {
    // Another process (a second worker starting at the same time) may have won the race.
    if (!(isGrpcServiceError(err) && err.code === GRPC_ALREADY_EXISTS)) throw err;
  }
  return missing;
}

/** Custom search attributes of the namespace, name → IndexedValueType. */
export async function listCustomSearchAttributes(
  connection: Connection,
  namespace: string,
): Promise<Record<string, number>> {
  const res = await connection.operatorService.listSearchAttributes({ namespace });
  return Object.fromEntries(Object.entries(res.customAttributes ?? {}).map(([k, v]) => [k, Number(v)]));
}

/** Names absent from `existing`; throws on a name registered with a different type. */
export function diffSearchAttributes(existing: Record<string, number>, wanted: SearchAttributeSpec): string[] {
  const missing: string[] = [];
  for (const [name, type] of Object.entries(wanted)) {
    const have = existing[name];
    if (have === undefined) missing.push(name);
    else if (have !== INDEXED_VALUE_TYPE[type]) {
      throw new Error(
        `search attribute ${name} exists with type ${have}, expected ${type} (${INDEXED_VALUE_TYPE[type]})`,
      );
    }
  }
  return missing;
}

type UpdateNamespaceRequest = Parameters<Connection['workflowService']['updateNamespace']>[0];

/** The server refuses retention under 1 h, so this clamps; the returned value is what was applied. */
export async function setNamespaceRetention(
  connection: Connection,
  namespace: string,
  seconds: number,
): Promise<number> {
  const applied = Math.max(MIN_RETENTION_SECONDS, Math.ceil(seconds));
  // protobufjs encodes a plain number into an int64 field; the generated typings only admit Long, which is not a
  // direct dependency of ours.
  const request = { namespace, config: { workflowExecutionRetentionTtl: { seconds: applied } } };
  await connection.workflowService.updateNamespace(request as unknown as UpdateNamespaceRequest);
  return applied;
}
