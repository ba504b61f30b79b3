import { CustosError, type PendingChangeRecord, type PendingChangeState, type SafeAddressRecord } from '@custos/kernel';
import type { Row } from './rows.js';

/**
 * The rows of migration 13 (both stores): timelocked changes (kernel/pendingChanges.ts) and the
 * wallets' safe addresses. `$n` placeholders as in rows.ts.
 */
export const TIMELOCK_SQL = {
  insertPendingChange:
    'INSERT INTO pending_changes (id, tenant, api_key_id, wallet_name, kind, payload, capability_hash, notice_capability_hash, state, created_at, expires_at, effective_at, decided_at, reminders, cancel_failures, consent, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)',
  getPendingChange: 'SELECT * FROM pending_changes WHERE id = $1',
  getPendingChangeByCapability: 'SELECT * FROM pending_changes WHERE capability_hash = $1 OR notice_capability_hash = $2',
  listOpenPendingChangesOfWallet: "SELECT * FROM pending_changes WHERE wallet_name = $1 AND state IN ('requested', 'pending') ORDER BY created_at, id",
  listPendingChangesDueBy: "SELECT * FROM pending_changes WHERE state = 'pending' AND effective_at <= $1 ORDER BY effective_at, id LIMIT $2",
  listPendingChangesDueAfter:
    "SELECT * FROM pending_changes WHERE state = 'pending' AND effective_at <= $1 AND (effective_at > $2 OR (effective_at = $3 AND id > $4)) ORDER BY effective_at, id LIMIT $5",
  updatePendingChange:
    'UPDATE pending_changes SET state = $1, effective_at = $2, decided_at = $3, reminders = $4, cancel_failures = $5, consent = $6, mac = $7 WHERE id = $8',
  getSafeAddress: 'SELECT * FROM wallet_safe_addresses WHERE wallet_name = $1',
  putSafeAddress:
    'INSERT INTO wallet_safe_addresses (wallet_name, address, updated_at, mac) VALUES ($1, $2, $3, $4) ON CONFLICT (wallet_name) DO UPDATE SET address = excluded.address, updated_at = excluded.updated_at, mac = excluded.mac',
  deleteTotpFactor: 'DELETE FROM totp_factors WHERE wallet_name = $1',
  deletePasskey: 'DELETE FROM passkey_credentials WHERE wallet_name = $1 AND credential_id = $2',
  deleteHwkeyFactor: 'DELETE FROM hwkey_factors WHERE wallet_name = $1 AND id = $2',
  deleteOobChannel: 'DELETE FROM oob_channels WHERE wallet_name = $1',
} as const;

/** The delete statement and its parameters for one factor row. */
export function deleteFactorSql(kind: 'totp' | 'passkey' | 'hwkey' | 'oob', walletName: string, id: string): [string, unknown[]] {
  switch (kind) {
    case 'totp':
      return [TIMELOCK_SQL.deleteTotpFactor, [walletName]];
    case 'passkey':
      return [TIMELOCK_SQL.deletePasskey, [walletName, id]];
    case 'hwkey':
      return [TIMELOCK_SQL.deleteHwkeyFactor, [walletName, id]];
    case 'oob':
      return [TIMELOCK_SQL.deleteOobChannel, [walletName]];
  }
}

const STATES: readonly PendingChangeState[] = ['requested', 'pending', 'applied', 'cancelled', 'expired'];

function nullableNumber(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

export function toPendingChange(row: Row): PendingChangeRecord {
  const state = String(row.state) as PendingChangeState;
  if (!STATES.includes(state)) throw new CustosError('record_unreadable', 'a pending change has an unknown state');
  return {
    id: String(row.id),
    tenant: String(row.tenant),
    apiKeyId: row.api_key_id === null ? null : String(row.api_key_id),
    walletName: String(row.wallet_name),
    kind: String(row.kind),
    payload: String(row.payload),
    capabilityHash: String(row.capability_hash),
    noticeCapabilityHash: String(row.notice_capability_hash),
    state,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    effectiveAt: nullableNumber(row.effective_at),
    decidedAt: nullableNumber(row.decided_at),
    reminders: Number(row.reminders),
    cancelFailures: Number(row.cancel_failures),
    consent: row.consent === null ? null : String(row.consent),
    mac: String(row.mac),
  };
}

export function pendingChangeParams(r: PendingChangeRecord): unknown[] {
  return [
    r.id,
    r.tenant,
    r.apiKeyId,
    r.walletName,
    r.kind,
    r.payload,
    r.capabilityHash,
    r.noticeCapabilityHash,
    r.state,
    r.createdAt,
    r.expiresAt,
    r.effectiveAt,
    r.decidedAt,
    r.reminders,
    r.cancelFailures,
    r.consent,
    r.mac,
  ];
}

export function toSafeAddress(row: Row): SafeAddressRecord {
  return { walletName: String(row.wallet_name), address: String(row.address), updatedAt: Number(row.updated_at), mac: String(row.mac) };
}

export function vanishedChange(): CustosError {
  return new CustosError('store_unavailable', 'the pending change row vanished during its update');
}

export function factorRowVanished(): CustosError {
  return new CustosError('store_unavailable', 'the factor row to delete is not stored');
}
