import { cancelApprovalsOfApiKey } from './approvals.js';
import { randomBytes } from 'node:crypto';
import { CustosError, invalidInput } from '../errors.js';
import { type ApiKeyRecord, DEFAULT_TENANT, OPERATOR_TENANT, SCOPES, type Scope, type Store, type StoreTx } from '../store/types.js';
import { assertLimitsFitScopes, hasLimits, limitsAnchorState, limitsOf, parseApiKeyLimits } from './apiKeyLimits.js';
import { assertTenantName } from '../util/assertTenantName.js';
import { generateApiKeyToken } from './apiKeyToken.js';
import { quorumConfigured, quorumRequired } from './quorum/settings.js';
import type { Barrier } from '../barrier/Barrier.js';
import { assertScopeAudited } from './authorize.js';
import type { KernelContext } from './context.js';
import { macApiKey } from './quorum/apiKeyMac.js';
import { anchorRow } from './rowAnchors.js';
import type { App } from './types.js';

/** Validates a scope list such as "register,derive,sign". */
export function parseScopes(value: string | readonly string[]): Scope[] {
  const list =
    typeof value === 'string'
      ? value
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '')
      : [...value];
  if (list.length === 0) throw invalidInput('scopes', `a non-empty list of ${SCOPES.join(', ')}`);
  for (const s of list) if (!(SCOPES as readonly string[]).includes(s)) throw invalidInput('scopes', `one of ${SCOPES.join(', ')}`, JSON.stringify(s));
  return [...new Set(list)] as Scope[];
}

/**
 * An API key's name: 1..128 characters, well-formed Unicode, no control characters (C0, DEL, C1):
 * `custos apikey list` and the admin pages print names as they are, and a name must not move the
 * terminal's cursor or forge a line of the listing.
 */
export function assertApiKeyName(value: unknown, field = 'name'): string {
  if (typeof value !== 'string') throw invalidInput(field, 'a string', typeof value);
  if (value.length === 0 || value.length > 128) throw invalidInput(field, '1..128 characters', `${value.length}`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f-\u009f]/.test(value)) throw invalidInput(field, 'no control characters');
  if (!value.isWellFormed()) throw invalidInput(field, 'well-formed Unicode (no lone surrogates)');
  return value;
}

/**
 * Creates an API key (an operator action, audited) for a tenant (default `default`). The token is
 * returned once; only its hash is stored. `admin` is an operator scope: only a key of the operator
 * tenant (`system`) may hold it, and a request for it on any other tenant is refused.
 */
export async function createApiKey(
  store: Store,
  {
    name,
    scopes,
    tenant = DEFAULT_TENANT,
    expiresAt,
    walletPrefix,
    random = (n) => new Uint8Array(randomBytes(n)),
    now = Date.now,
    byApp = null,
    barrier,
    quorumAllows = false,
    transact = (work) => store.transact(work),
  }: {
    name: string;
    scopes: Scope[];
    tenant?: string;
    /** When the key stops working (ms since the epoch); absent: never. */
    expiresAt?: number | null;
    /** The key reaches only its tenant's wallets whose names start with this (apiKeyLimits.ts). */
    walletPrefix?: string | null;
    random?: (n: number) => Uint8Array;
    now?: () => number;
    /** The operator's key when made over the API (POST /v1/apikeys): the audit record's appId. */
    byApp?: string | null;
    /** The barrier while unsealed: the row is MAC'd (quorum/apiKeyMac.ts), so that it keeps working once a quorum is configured. */
    barrier?: Barrier;
    /** The unit runner: the kernel's (ctx.transact: store errors as store_unavailable, metered) over the API; the store's offline. */
    transact?: <T>(work: (tx: StoreTx) => Promise<T>) => Promise<T>;
    /** Under a quorum, a key without `sign` or `admin` may be made by one operator over the API (the caller checked). */
    quorumAllows?: boolean;
  },
): Promise<{ id: string; token: string; record: Omit<ApiKeyRecord, 'secretHash'> }> {
  assertApiKeyName(name);
  assertTenantName(tenant);
  const limits = parseApiKeyLimits({ expiresAt, walletPrefix }, now());
  assertLimitsFitScopes(limits, scopes);
  if (scopes.includes('admin') && tenant !== OPERATOR_TENANT)
    throw invalidInput(
      'scopes',
      `the admin scope only on a key of the operator tenant '${OPERATOR_TENANT}' (--tenant ${OPERATOR_TENANT})`,
      `tenant '${tenant}'`,
    );
  // Under an admin quorum, keys are made only by an applied apikey.create proposal (issue 13).
  if (!quorumAllows && (await quorumConfigured(store))) throw quorumRequired('creating an API key');
  const { id, token, secretHash } = generateApiKeyToken(random);
  const record: ApiKeyRecord = { id, name, tenant, scopes, secretHash, createdAt: now(), revokedAt: null, mac: null, ...limits };
  if (barrier !== undefined) record.mac = macApiKey(barrier, record);
  await transact(async (tx) => {
    await tx.insertApiKey(record);
    await tx.appendAudit({
      ts: record.createdAt,
      appId: byApp,
      walletName: null,
      action: 'apikey.create',
      opHash: null,
      decision: 'allowed',
      reason: null,
      detail: { apiKeyId: id, name, tenant, scopes, ...limits },
    });
    await anchorKeyLimits(tx, record);
  });
  const { secretHash: _hidden, ...visible } = record;
  return { id, token, record: visible };
}

/** An API key as the operator sees it (GET /v1/apikeys): never its secret's hash nor its MAC. */
export interface ApiKeyView {
  id: string;
  name: string;
  tenant: string;
  scopes: Scope[];
  createdAt: number;
  revokedAt: number | null;
  expiresAt: number | null;
  walletPrefix: string | null;
  lastUsedAt: number | null;
}

export function viewApiKey(k: ApiKeyRecord): ApiKeyView {
  return {
    id: k.id,
    name: k.name,
    tenant: k.tenant,
    scopes: k.scopes,
    createdAt: k.createdAt,
    revokedAt: k.revokedAt,
    expiresAt: k.expiresAt ?? null,
    walletPrefix: k.walletPrefix ?? null,
    lastUsedAt: k.lastUsedAt ?? null,
  };
}

/** Every API key of the signer (scope `admin`; the denial audited). */
export async function listApiKeysAsOperator(ctx: KernelContext, app: App): Promise<ApiKeyView[]> {
  ctx.requireBarrier();
  await assertScopeAudited(ctx, app, 'admin', { action: 'apikey.list', walletName: null, detail: {} });
  return (await ctx.readStore(() => ctx.store.listApiKeys())).map(viewApiKey);
}

/**
 * POST /v1/apikeys (scope `admin`): a key made at once, MAC'd under the barrier, the token returned
 * once. Under an admin quorum a key with `sign` or `admin` is refused `quorum_required`: it is made
 * only by an applied `apikey.create` proposal, whose token the proposer generated locally (docs/api-keys.md).
 */
export async function createApiKeyAsOperator(
  ctx: KernelContext,
  app: App,
  request: { name?: unknown; scopes?: unknown; tenant?: unknown; expiresInSeconds?: unknown; walletPrefix?: unknown },
): Promise<{ token: string; key: ApiKeyView }> {
  const barrier = ctx.requireBarrier();
  await assertScopeAudited(ctx, app, 'admin', { action: 'apikey.create', walletName: null, detail: {} });
  const name = assertApiKeyName(request.name);
  if (!Array.isArray(request.scopes) || request.scopes.some((s) => typeof s !== 'string')) throw invalidInput('scopes', 'a list of scopes');
  const scopes = parseScopes(request.scopes as string[]);
  const tenant = assertTenantName(request.tenant ?? DEFAULT_TENANT, 'tenant');
  const ttl = request.expiresInSeconds;
  if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl < 60 || ttl > MAX_KEY_LIFETIME_SECONDS))
    throw invalidInput('expiresInSeconds', `an integer from 60 to ${MAX_KEY_LIFETIME_SECONDS}`);
  const quorum = await ctx.readStore(() => quorumConfigured(ctx.store));
  if (quorum && (scopes.includes('sign') || scopes.includes('admin')))
    throw quorumRequired(`creating an API key with the ${scopes.includes('admin') ? 'admin' : 'sign'} scope`);
  const { token, record } = await createApiKey(ctx.store, {
    name,
    scopes,
    tenant,
    ...(ttl === undefined ? {} : { expiresAt: ctx.now() + (ttl as number) * 1000 }),
    walletPrefix: request.walletPrefix === undefined ? null : (request.walletPrefix as string),
    random: (n) => ctx.random(n),
    now: () => ctx.now(),
    byApp: app.id,
    barrier,
    quorumAllows: quorum,
    transact: (work) => ctx.transact(work),
  });
  return { token, key: viewApiKey({ ...record, secretHash: new Uint8Array(0) }) };
}

/** The longest lifetime a key made over the API may be given (ten years); none given: it never expires. */
export const MAX_KEY_LIFETIME_SECONDS = 10 * 366 * 24 * 3600;

/** DELETE /v1/apikeys (scope `admin`): revokes a key (an action that only takes power away: one operator, also under a quorum). */
export async function revokeApiKeyAsOperator(ctx: KernelContext, app: App, request: { id?: unknown }): Promise<{ id: string; revokedAt: number }> {
  ctx.requireBarrier();
  await assertScopeAudited(ctx, app, 'admin', { action: 'apikey.revoke', walletName: null, detail: {} });
  if (typeof request.id !== 'string' || !/^[0-9a-f]{16}$/.test(request.id)) throw invalidInput('id', 'a key id of 16 lowercase hex digits');
  const at = ctx.now();
  await revokeApiKey(
    ctx.store,
    request.id,
    () => at,
    app.id,
    (work) => ctx.transact(work),
  );
  return { id: request.id, revokedAt: at };
}

/**
 * Anchors a new key's limits in the log (rowAnchors.ts, subject `apikey`), in the unit that inserts
 * it: a row whose expiry or wallet prefix a database writer lifted no longer matches and is refused
 * at authentication (authorize.ts assertKeyRowAnchored). A key without limits gets no anchor.
 */
export async function anchorKeyLimits(tx: Pick<StoreTx, 'appendAudit'>, record: ApiKeyRecord): Promise<void> {
  const limits = limitsOf(record);
  if (hasLimits(limits)) await anchorRow(tx, { row: 'apikey', key: record.id, state: limitsAnchorState(limits), walletName: null, ts: record.createdAt });
}

export async function revokeApiKey(
  store: Store,
  id: string,
  now: () => number = Date.now,
  byApp: string | null = null,
  transact: <T>(work: (tx: StoreTx) => Promise<T>) => Promise<T> = (work) => store.transact(work),
): Promise<void> {
  const at = now();
  await transact(async (tx) => {
    const revoked = await tx.revokeApiKey(id, at);
    if (!revoked) throw new CustosError('not_found', `no active API key with id ${JSON.stringify(id)}`, { details: { field: 'id' } });
    await tx.appendAudit({
      ts: at,
      appId: byApp,
      walletName: null,
      action: 'apikey.revoke',
      opHash: null,
      decision: 'allowed',
      reason: null,
      detail: { apiKeyId: id },
    });
    // Anchored in the log (rowAnchors.ts): the key row put back unrevoked is refused at authentication.
    await anchorRow(tx, { row: 'apikey', key: id, state: at, walletName: null, ts: at });
    // Its pending approvals go with it (approvals.ts): a revoked backend's requests are not approved later.
    await cancelApprovalsOfApiKey(tx, id, at);
  });
}
