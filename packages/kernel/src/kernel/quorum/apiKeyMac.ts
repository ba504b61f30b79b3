import type { Barrier } from '../../barrier/Barrier.js';
import type { ApiKeyRecord } from '../../store/types.js';
import { canonicalJson } from '../../util/canonicalJson.js';
import { hasLimits, limitsOf } from '../apiKeyLimits.js';

/**
 * The MAC of an API key row under the barrier: over its id, name, tenant, scopes, secret hash,
 * creation time and limits (expiry, wallet prefix; apiKeyLimits.ts) — not its revocation (revoking only takes power away and stays a single-admin
 * action that `custos apikey revoke` does offline, without the barrier). Once a quorum is
 * configured, a key row without a valid MAC (one inserted into the database by hand, or given
 * more scopes) is refused as an unknown key.
 */

const API_KEY_MAC_LABEL = 'custos.apikey.v1';
const encoder = new TextEncoder();

function macBytes(key: ApiKeyRecord): Uint8Array {
  return encoder.encode(
    canonicalJson({
      id: key.id,
      name: key.name,
      tenant: key.tenant,
      scopes: [...key.scopes].sort(),
      secretHash: Buffer.from(key.secretHash).toString('hex'),
      createdAt: key.createdAt,
      // A key's limits (issue 15), only when it has one: the MAC of a key without limits is unchanged.
      ...(hasLimits(limitsOf(key)) ? { limits: limitsOf(key) } : {}),
    }),
  );
}

export function macApiKey(barrier: Barrier, key: ApiKeyRecord): string {
  return barrier.macRecord(API_KEY_MAC_LABEL, macBytes(key));
}

/** Whether the key row carries a valid MAC (constant-time compare). */
export function apiKeyMacHolds(barrier: Barrier, key: ApiKeyRecord): boolean {
  return typeof key.mac === 'string' && barrier.verifyRecordMac(API_KEY_MAC_LABEL, macBytes(key), key.mac);
}
