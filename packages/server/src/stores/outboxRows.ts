import { CustosError, type OobChannelRecord, type OutboxRecord } from '@custos/kernel';
import type { Row } from './rows.js';

/**
 * The rows of migration 10 (both stores): a wallet's delivery channel (oob_channels) and the outbox
 * of messages the kernel delivers itself (kernel/oobDelivery.ts). `$n` placeholders as in rows.ts.
 */
export const OOB_SQL = {
  getOobChannel: 'SELECT * FROM oob_channels WHERE wallet_name = $1',
  insertOobChannel:
    'INSERT INTO oob_channels (wallet_name, secret_envelope, state, enrolled_via, created_at, mac) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (wallet_name) DO NOTHING',
  updateOobChannelState: 'UPDATE oob_channels SET state = $1, mac = $2 WHERE wallet_name = $3',
  deleteOobChannel: 'DELETE FROM oob_channels WHERE wallet_name = $1',
  /** Messages queued for a wallet since a time (its hourly cap across enrolment links). */
  countOutboxSince: 'SELECT count(*) AS n FROM outbox WHERE wallet_name = $1 AND created_at > $2',
  /** Messages queued for one recipient (its keyed tag) since a time, across wallets. */
  countOutboxToAddressSince: 'SELECT count(*) AS n FROM outbox WHERE address_tag = $1 AND created_at > $2',
  updateEnrollmentLinkSecret: "UPDATE enrollment_links SET secret_envelope = $1, pending = $2, mac = $3 WHERE id = $4 AND state = 'pending'",
  insertOutbox:
    'INSERT INTO outbox (id, wallet_name, approval_id, status, attempts, next_attempt_at, lease_until, created_at, expires_at, sent_at, last_error, envelope, address_tag) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)',
  /** The due, unleased queued messages, oldest first (PostgreSQL appends FOR UPDATE SKIP LOCKED to the inner select). */
  claimOutboxIds:
    "SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until <= $3) ORDER BY next_attempt_at, id LIMIT $4",
  updateOutbox: 'UPDATE outbox SET status = $1, attempts = $2, next_attempt_at = $3, lease_until = $4, sent_at = $5, last_error = $6 WHERE id = $7',
  readApprovalDelivery: 'SELECT status, attempts, sent_at FROM outbox WHERE approval_id = $1 ORDER BY created_at DESC, attempts DESC LIMIT 1',
} as const;

/** The claim: lease the ids the inner select picks, returning their rows. */
export function claimOutboxSql(inner: string): string {
  return `UPDATE outbox SET lease_until = $1 WHERE id IN (${inner}) RETURNING *`;
}

export function toOobChannel(row: Row): OobChannelRecord {
  return {
    walletName: String(row.wallet_name),
    secretEnvelope: String(row.secret_envelope),
    state: String(row.state),
    enrolledVia: row.enrolled_via === 'page' ? 'page' : 'api',
    createdAt: Number(row.created_at),
    mac: row.mac === null ? null : String(row.mac),
  };
}

export function oobChannelParams(r: OobChannelRecord): unknown[] {
  return [r.walletName, r.secretEnvelope, r.state, r.enrolledVia, r.createdAt, r.mac];
}

export function duplicateOobChannel(): CustosError {
  return new CustosError('already_enrolled', 'the wallet already has a delivery channel', { details: { field: 'walletName' } });
}

const nullableNumber = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function toOutbox(row: Row): OutboxRecord {
  return {
    id: String(row.id),
    walletName: String(row.wallet_name),
    approvalId: row.approval_id === null ? null : String(row.approval_id),
    status: row.status as OutboxRecord['status'],
    attempts: Number(row.attempts),
    nextAttemptAt: Number(row.next_attempt_at),
    leaseUntil: nullableNumber(row.lease_until),
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    sentAt: nullableNumber(row.sent_at),
    lastError: row.last_error === null ? null : String(row.last_error),
    envelope: String(row.envelope),
    addressTag: row.address_tag === null || row.address_tag === undefined ? null : String(row.address_tag),
  };
}

export function outboxParams(r: OutboxRecord): unknown[] {
  return [
    r.id,
    r.walletName,
    r.approvalId,
    r.status,
    r.attempts,
    r.nextAttemptAt,
    r.leaseUntil,
    r.createdAt,
    r.expiresAt,
    r.sentAt,
    r.lastError,
    r.envelope,
    r.addressTag,
  ];
}

export function toApprovalDelivery(row: Row | undefined): Pick<OutboxRecord, 'status' | 'attempts' | 'sentAt'> | undefined {
  return row === undefined ? undefined : { status: row.status as OutboxRecord['status'], attempts: Number(row.attempts), sentAt: nullableNumber(row.sent_at) };
}

export function vanished(what: string): CustosError {
  return new CustosError('store_unavailable', `${what} row vanished during the transaction`);
}
