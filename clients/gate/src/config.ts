import { readFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { basename } from 'node:path';
import { loadPolicyFile, PolicyError } from '../../../domain/policy-loader.js';
import type { ToolsSection } from '../../../domain/policy-schema.js';
import type { GuardClient } from '../../typescript/src/index.js';

/** The gate's set-up is wrong (no policy, a broken one): said once, clearly, instead of gating nothing. */
export class GateConfigError extends Error {}

/** The `tools` section of a policy file (the service's own, or one with only `tools`), checked as the service does. */
export async function loadToolsSection(path: string): Promise<ToolsSection> {
  try {
    const { policy } = await loadPolicyFile(path);
    if (!policy.tools) throw new GateConfigError(`${path} has no tools section: nothing would be gated`);
    return policy.tools;
  } catch (err) {
    if (err instanceof PolicyError) throw new GateConfigError(err.message);
    throw err;
  }
}

/**
 * `meta.origin.repo` of gated requests: GUARD_REPO, GITHUB_REPOSITORY, the working directory's name, or (started from
 * `/`, as Claude Desktop starts MCP servers) `user@host`. Never empty, so a request is never refused for it.
 */
export function defaultRepo(env: NodeJS.ProcessEnv, cwd: string): string {
  const named = env.GUARD_REPO || env.GITHUB_REPOSITORY || basename(cwd);
  if (named) return named;
  let user = 'agent';
  try {
    user = userInfo().username || user;
  } catch {
    // No passwd entry (a container's arbitrary uid): keep the generic name.
  }
  return `${user}@${hostname()}`;
}

/** The key receipts are checked against: a pinned PEM file, else the service's, fetched once and kept. */
export function receiptKeyProvider(client: GuardClient | null, pinnedFile?: string): () => Promise<string> {
  let key: Promise<string> | null = null;
  return () => {
    key ??= pinnedFile
      ? readFile(pinnedFile, 'utf8')
      : client
        ? client.receiptKey().then((k) => k.pem)
        : Promise.reject(new Error('GUARD_URL is not set'));
    // A failed fetch is not kept: the next call tries again.
    key.catch(() => (key = null));
    return key;
  };
}
