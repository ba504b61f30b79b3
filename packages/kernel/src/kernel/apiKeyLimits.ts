import { CustosError, invalidInput } from '../errors.js';
import type { ApiKeyRecord } from '../store/types.js';
import { assertWalletName } from '../util/assertWalletName.js';
import { canonicalJson } from '../util/canonicalJson.js';

/**
 * An API key's limits (issue 15 point 5): an expiry, and a wallet-name prefix that confines the key
 * to the wallets of its tenant whose names start with it. Both are fixed at creation: covered by the
 * key row's MAC (quorum/apiKeyMac.ts) and anchored in the audit log (rowAnchors.ts, subject `apikey`,
 * state `limitsAnchorState`), so that a database writer who lifts one is refused at authentication.
 */
export interface ApiKeyLimits {
  expiresAt: number | null;
  walletPrefix: string | null;
}

/** Checks the limits asked for a new key: an expiry in the future (ms, integer), a prefix shaped as a wallet name. */
export function parseApiKeyLimits({ expiresAt, walletPrefix }: { expiresAt?: unknown; walletPrefix?: unknown }, nowMs: number, field = ''): ApiKeyLimits {
  if (expiresAt !== undefined && expiresAt !== null) {
    if (typeof expiresAt !== 'number' || !Number.isSafeInteger(expiresAt)) throw invalidInput(`${field}expiresAt`, 'a time in ms since the epoch (integer)');
    if (expiresAt <= nowMs) throw invalidInput(`${field}expiresAt`, 'a time in the future');
  }
  const prefix = walletPrefix === undefined || walletPrefix === null ? null : assertWalletName(walletPrefix, `${field}walletPrefix`);
  return { expiresAt: (expiresAt as number | null | undefined) ?? null, walletPrefix: prefix };
}

/** A wallet prefix confines a backend's key: an operator key (scope `admin`, whose actions span tenants) takes none. */
export function assertLimitsFitScopes(limits: ApiKeyLimits, scopes: readonly string[], field = ''): void {
  if (limits.walletPrefix !== null && scopes.includes('admin')) throw invalidInput(`${field}walletPrefix`, 'no wallet prefix on a key with the admin scope');
}

/** The limits of a key row (absent columns: none). */
export function limitsOf(record: Pick<ApiKeyRecord, 'expiresAt' | 'walletPrefix'>): ApiKeyLimits {
  return { expiresAt: record.expiresAt ?? null, walletPrefix: record.walletPrefix ?? null };
}

/** Whether the key has a limit at all (a key without one keeps the MAC bytes and the anchors it had before migration 21). */
export function hasLimits(limits: ApiKeyLimits): boolean {
  return limits.expiresAt !== null || limits.walletPrefix !== null;
}

/** What the `apikey` anchor of a limited key says at its creation (a revocation's anchor is its time, a number). */
export function limitsAnchorState(limits: ApiKeyLimits): string {
  return `limits:${canonicalJson({ expiresAt: limits.expiresAt, walletPrefix: limits.walletPrefix })}`;
}

/** Refuses an expired key (`unauthorized`: its holder proved the secret, so it is told why). */
export function assertNotExpired(record: Pick<ApiKeyRecord, 'expiresAt'>, nowMs: number): void {
  const expiresAt = record.expiresAt ?? null;
  if (expiresAt !== null && nowMs >= expiresAt)
    throw new CustosError('unauthorized', 'the API key has expired', { details: { field: 'authorization', reason: 'expired' } });
}

/**
 * The one rule of a key's reach: a wallet is the app's when it belongs to the app's tenant and, for
 * a key with a wallet prefix, its name starts with that prefix — exactly, code unit by code unit (no
 * case folding, no Unicode normalisation: `shop-` does not reach `shop`, `Shop-a` nor `ѕhop-a`).
 */
export function walletInReach(app: { tenant: string; walletPrefix?: string | null | undefined }, owner: { tenant: string; walletName: string }): boolean {
  return owner.tenant === app.tenant && (app.walletPrefix === undefined || app.walletPrefix === null || owner.walletName.startsWith(app.walletPrefix));
}
