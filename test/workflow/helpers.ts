/** Test environments that run the project's pinned server binaries (see temporal/binaries.ts), not an SDK download. */
import { TestWorkflowEnvironment, type DevServerConfig } from '@temporalio/testing';
import { devServerExecutable, timeSkippingServerExecutable } from '../../temporal/binaries.js';
import { GUARD_SEARCH_ATTRIBUTE_KEYS, GUARD_SEARCH_ATTRIBUTES } from '../../temporal/search-attributes.js';
import { INDEXED_VALUE_TYPE } from '../../temporal/namespace.js';

/**
 * The time-skipping server implements no ListSearchAttributes, but AddSearchAttributes works and is needed:
 * it rejects upserts of attributes it does not know.
 */
export async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: timeSkippingServerExecutable() },
  });
  const searchAttributes = Object.fromEntries(
    Object.entries(GUARD_SEARCH_ATTRIBUTES).map(([name, type]) => [name, INDEXED_VALUE_TYPE[type]]),
  );
  await env.connection.operatorService.addSearchAttributes({ namespace: 'default', searchAttributes });
  return env;
}

/** A throwaway in-memory dev server with the Guard search attributes; `server` overrides any setting. */
export function createLocalEnv(server: Omit<DevServerConfig, 'type'> = {}): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: devServerExecutable(),
      ip: '127.0.0.1',
      searchAttributes: Object.values(GUARD_SEARCH_ATTRIBUTE_KEYS),
      ...server,
    },
  });
}
