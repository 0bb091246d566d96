import { NotFoundError, type ViewOptions } from '../gateway/types.js';
import type { RequestView } from '../workflows/messages.js';
import type { ApiDeps } from './deps.js';
import { HttpError } from './errors.js';

/** The request a capability token grants: 400 without one, 404 for anything forged or malformed. */
export function requestIdFromToken(deps: Pick<ApiDeps, 'tokens'>, token: string | undefined): string {
  if (!token) throw new HttpError(400, 'missing_token');
  const requestId = deps.tokens.verify(token);
  if (!requestId) throw new HttpError(404, 'not_found');
  return requestId;
}

/** The request's current state, 404 when Temporal does not know it (`opts`: RequestGateway.view). */
export async function findView(
  deps: Pick<ApiDeps, 'gateway'>,
  requestId: string,
  opts?: ViewOptions,
): Promise<RequestView> {
  try {
    return await deps.gateway.view(requestId, opts);
  } catch (err) {
    if (err instanceof NotFoundError) throw new HttpError(404, 'not_found');
    throw err;
  }
}
