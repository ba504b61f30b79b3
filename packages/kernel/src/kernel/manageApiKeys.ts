import { randomBytes } from 'node:crypto';
import { CustosError, invalidInput } from '../errors.js';
import { SCOPES, type ApiKeyRecord, type Scope, type Store } from '../store/types.js';
import { generateApiKeyToken } from './apiKeyToken.js';

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
 * Creates an API key (an operator action, audited). The token is returned once; only its hash is
 * stored.
 */
export async function createApiKey(
  store: Store,
  {
    name,
    scopes,
    random = (n) => new Uint8Array(randomBytes(n)),
    now = Date.now,
  }: { name: string; scopes: Scope[]; random?: (n: number) => Uint8Array; now?: () => number },
): Promise<{ id: string; token: string; record: Omit<ApiKeyRecord, 'secretHash'> }> {
  if (typeof name !== 'string' || name.length === 0 || name.length > 128) throw invalidInput('name', '1..128 characters');
  const { id, token, secretHash } = generateApiKeyToken(random);
  const record: ApiKeyRecord = { id, name, scopes, secretHash, createdAt: now(), revokedAt: null };
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
      detail: { apiKeyId: id, name, scopes },
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
  });
}
