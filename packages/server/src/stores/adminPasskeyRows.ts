import type { AdminEnrollmentLinkRecord, AdminPasskeyRecord } from '@custos/kernel';
import type { Row } from './rows.js';

/**
 * The rows of migration 16 (both stores; issue 13, admin passkeys — kernel/quorum/adminPasskeys.ts):
 * admin enrolment links (the hash of the capability, never the capability) and the admin passkeys
 * registered on them, with their signature counters. Both MAC'd under the barrier by the kernel.
 * `$n` placeholders as in rows.ts.
 */
export const ADMIN_PASSKEY_SQL = {
  insertLink:
    'INSERT INTO admin_enrollment_links (token_hash, name, challenge, user_id, created_at, expires_at, used_at, admin_id, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
  getLink: 'SELECT * FROM admin_enrollment_links WHERE token_hash = $1',
  updateLink: 'UPDATE admin_enrollment_links SET used_at = $1, admin_id = $2, mac = $3 WHERE token_hash = $4',
  insertPasskey:
    'INSERT INTO admin_passkeys (id, credential_id, public_key, rp_id, transports, name, counter, created_at, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING',
  getPasskey: 'SELECT * FROM admin_passkeys WHERE id = $1',
  listPasskeys: 'SELECT * FROM admin_passkeys ORDER BY created_at, id',
  updateCounter: 'UPDATE admin_passkeys SET counter = $1, mac = $2 WHERE id = $3',
} as const;

export function adminLinkParams(r: AdminEnrollmentLinkRecord): unknown[] {
  return [r.tokenHash, r.name, r.challenge, r.userId, r.createdAt, r.expiresAt, r.usedAt, r.adminId, r.mac];
}

export function toAdminLink(row: Row): AdminEnrollmentLinkRecord {
  return {
    tokenHash: String(row.token_hash),
    name: String(row.name),
    challenge: String(row.challenge),
    userId: String(row.user_id),
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    usedAt: row.used_at === null || row.used_at === undefined ? null : Number(row.used_at),
    adminId: row.admin_id === null || row.admin_id === undefined ? null : String(row.admin_id),
    mac: String(row.mac),
  };
}

export function adminPasskeyParams(r: AdminPasskeyRecord): unknown[] {
  return [r.id, r.credentialId, r.publicKey, r.rpId, r.transports, r.name, r.counter, r.createdAt, r.mac];
}

export function toAdminPasskey(row: Row): AdminPasskeyRecord {
  return {
    id: String(row.id),
    credentialId: String(row.credential_id),
    publicKey: String(row.public_key),
    rpId: String(row.rp_id),
    transports: String(row.transports),
    name: String(row.name),
    counter: Number(row.counter),
    createdAt: Number(row.created_at),
    mac: String(row.mac),
  };
}

/** Migration 16's tables; `int` is INTEGER (SQLite) or BIGINT (PostgreSQL), `key` adds a collation on PostgreSQL keys. */
export function adminPasskeyMigrationSql(int: string, key: string): string {
  return `
      CREATE TABLE admin_enrollment_links (
        token_hash ${key} PRIMARY KEY,
        name TEXT NOT NULL,
        challenge TEXT NOT NULL,
        user_id TEXT NOT NULL,
        created_at ${int} NOT NULL,
        expires_at ${int} NOT NULL,
        used_at ${int},
        admin_id TEXT,
        mac TEXT NOT NULL
      );
      CREATE TABLE admin_passkeys (
        id ${key} PRIMARY KEY,
        credential_id ${key} NOT NULL UNIQUE,
        public_key TEXT NOT NULL,
        rp_id TEXT NOT NULL,
        transports TEXT NOT NULL,
        name TEXT NOT NULL,
        counter ${int} NOT NULL CHECK (counter >= 0),
        created_at ${int} NOT NULL,
        mac TEXT NOT NULL
      );
    `;
}
