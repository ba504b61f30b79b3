import { cancelApprovalsOfApiKey } from './approvals.js';
import { randomBytes } from 'node:crypto';
import { CustosError, invalidInput } from '../errors.js';
import { type ApiKeyRecord, DEFAULT_TENANT, OPERATOR_TENANT, SCOPES, type Scope, type Store } from '../store/types.js';
import { assertTenantName } from '../util/assertTenantName.js';
import { generateApiKeyToken } from './apiKeyToken.js';
import { quorumConfigured, quorumRequired } from './quorum/settings.js';
import { anchorRow } from './rowAnchors.js';

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
    random = (n) => new Uint8Array(randomBytes(n)),
    now = Date.now,
  }: { name: string; scopes: Scope[]; tenant?: string; random?: (n: number) => Uint8Array; now?: () => number },
): Promise<{ id: string; token: string; record: Omit<ApiKeyRecord, 'secretHash'> }> {
  if (typeof name !== 'string' || name.length === 0 || name.length > 128) throw invalidInput('name', '1..128 characters');
  assertTenantName(tenant);
  if (scopes.includes('admin') && tenant !== OPERATOR_TENANT)
    throw invalidInput(
      'scopes',
      `the admin scope only on a key of the operator tenant '${OPERATOR_TENANT}' (--tenant ${OPERATOR_TENANT})`,
      `tenant '${tenant}'`,
    );
  // Under an admin quorum, keys are made only by an applied apikey.create proposal (issue 13).
  if (await quorumConfigured(store)) throw quorumRequired('creating an API key');
  const { id, token, secretHash } = generateApiKeyToken(random);
  const record: ApiKeyRecord = { id, name, tenant, scopes, secretHash, createdAt: now(), revokedAt: null };
  await store.transact(async (tx) => {
    await tx.insertApiKey(record);
    await tx.appendAudit({
      ts: record.createdAt,
      appId: null,
      walletName: null,
      action: 'apikey.create',
      opHash: null,
      decision: 'allowed',
      reason: null,
      detail: { apiKeyId: id, name, tenant, scopes },
    });
  });
  const { secretHash: _hidden, ...visible } = record;
  return { id, token, record: visible };
}

export async function revokeApiKey(store: Store, id: string, now: () => number = Date.now): Promise<void> {
  const at = now();
  await store.transact(async (tx) => {
    const revoked = await tx.revokeApiKey(id, at);
    if (!revoked) throw new CustosError('not_found', `no active API key with id ${JSON.stringify(id)}`, { details: { field: 'id' } });
    await tx.appendAudit({
      ts: at,
      appId: null,
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
