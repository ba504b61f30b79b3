import { CustosError } from '../errors.js';
import { OPERATOR_TENANT, type Scope } from '../store/types.js';
import { equalHashes, hashApiKeySecret, parseApiKeyToken } from './apiKeyToken.js';
import type { KernelContext } from './context.js';
import type { App } from './types.js';

/**
 * App authorization: which backend calls (API key → app, its tenant and scopes), and whether its
 * scopes allow an action.
 */

/** Whether `app` may act with `scope`: undefined when it may, else the `forbidden_scope` refusal (to be audited). */
export function checkScope(app: App, scope: Scope): CustosError | undefined {
  // `admin` is an operator scope: held only by keys of the operator tenant.
  if (app.scopes.includes(scope) && (scope !== 'admin' || app.tenant === OPERATOR_TENANT)) return undefined;
  return new CustosError('forbidden_scope', `the API key lacks the '${scope}' scope`, { details: { scope } });
}

/** API key → app. Unknown, malformed and revoked keys are indistinguishable to the caller. */
export async function appOfApiKey(ctx: KernelContext, token: unknown): Promise<App> {
  if (typeof token !== 'string') throw new CustosError('unauthorized', 'missing API key');
  const { id, secret } = parseApiKeyToken(token);
  const record = await ctx.readStore(() => ctx.store.getApiKey(id));
  const presented = hashApiKeySecret(secret);
  const expected = record?.secretHash ?? new Uint8Array(32);
  const matches = equalHashes(presented, expected);
  if (record === undefined || !matches || record.revokedAt !== null) throw new CustosError('unauthorized', 'unknown or revoked API key');
  return { id: record.id, name: record.name, tenant: record.tenant, scopes: record.scopes };
}
