import { CustosError } from '../errors.js';
import { type ApiKeyRecord, OPERATOR_TENANT, type Scope } from '../store/types.js';
import { equalHashes, hashApiKeySecret, parseApiKeyToken } from './apiKeyToken.js';
import { deny, type KernelContext } from './context.js';
import { assertNotExpired, hasLimits, limitsAnchorState, limitsOf } from './apiKeyLimits.js';
import { type AnchorState, latestAnchor, rolledBack } from './rowAnchors.js';
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

/**
 * The scope, checked before any parsing, derivation or secret is made: a key without it costs the
 * kernel nothing more, and its denial is audited with the action, the wallet and `detail` only
 * (opHash null), so that it cannot fill the append-only log with large records. Throws the refusal.
 */
export async function assertScopeAudited(
  ctx: KernelContext,
  app: App,
  scope: Scope,
  { action, walletName, detail }: { action: string; walletName: string | null; detail: Record<string, unknown> },
): Promise<void> {
  const forbidden = checkScope(app, scope);
  if (forbidden === undefined) return;
  await ctx.transact((tx) => deny(tx, { ts: ctx.now(), appId: app.id, walletName, action, opHash: null, detail }, forbidden));
  throw forbidden;
}

/**
 * API key → app. Unknown, malformed and revoked keys are indistinguishable to the caller. `admit`:
 * the quorum's check of the key row's MAC (Kernel: a row that fails it is refused as unknown).
 */
export async function appOfApiKey(ctx: KernelContext, token: unknown, admit?: (record: ApiKeyRecord) => Promise<boolean>): Promise<App> {
  if (typeof token !== 'string') throw new CustosError('unauthorized', 'missing API key');
  const { id, secret } = parseApiKeyToken(token);
  // The log's revocation of the key first, then its row (rowAnchors.ts): a revocation committed between the two reads shows in the row.
  const revoked = await ctx.readStore(() => latestAnchor(ctx.store, 'apikey', id));
  const record = await ctx.readStore(() => ctx.store.getApiKey(id));
  const presented = hashApiKeySecret(secret);
  const expected = record?.secretHash ?? new Uint8Array(32);
  const matches = equalHashes(presented, expected);
  if (record === undefined || !matches || record.revokedAt !== null) throw new CustosError('unauthorized', 'unknown or revoked API key');
  await assertKeyRowAnchored(ctx, record, revoked);
  if (admit !== undefined && !(await admit(record))) throw new CustosError('unauthorized', 'unknown or revoked API key');
  assertNotExpired(record, ctx.now());
  return appOfRecord(record);
}

/**
 * The key row against the log's newest `apikey` anchor (read BEFORE the row): the key's secret holds
 * but the log says it was revoked (its row put back unrevoked), or says other limits than the row's
 * (an expiry or a wallet prefix lifted or changed by a database writer). Refused, audited.
 */
export async function assertKeyRowAnchored(ctx: KernelContext, record: ApiKeyRecord, anchor: { state: AnchorState; seq: number } | undefined): Promise<void> {
  if (anchor === undefined) return;
  const limits = limitsOf(record);
  if (typeof anchor.state === 'string' && hasLimits(limits) && anchor.state === limitsAnchorState(limits)) return;
  const refusal = rolledBack('apikey', anchor.seq);
  await ctx.transact((tx) => deny(tx, { ts: ctx.now(), appId: record.id, walletName: null, action: 'apikey.use', opHash: null, detail: {} }, refusal));
  throw refusal;
}

/** The app of an admitted key row. */
export function appOfRecord(record: ApiKeyRecord): App {
  return { id: record.id, name: record.name, tenant: record.tenant, scopes: record.scopes, walletPrefix: record.walletPrefix ?? null };
}
