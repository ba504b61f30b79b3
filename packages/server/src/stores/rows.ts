import {
  type ApiKeyRecord,
  type ApprovalRecord,
  type AuditCheckpoint,
  type AuditQuery,
  type AuditRecord,
  CustosError,
  type EnrollmentLinkRecord,
  type HwkeyFactorRecord,
  type PasskeyCredentialRecord,
  type RpcAccountRecord,
  type RpcRequestRecord,
  type IdempotencyRecord,
  type PolicyUsageRecord,
  type WalletPolicyRecord,
  type Scope,
  type TotpFactorRecord,
  type RecoveryCodesRecord,
  type CancelBudgetRecord,
  type WalletRecord,
  type WalletPageEntry,
  type WalletRows,
} from '@custos/kernel';
import { toOobChannel } from './outboxRows.js';

/** Row → record mapping shared by the SQLite and PostgreSQL stores (same columns in both). */
export type Row = Record<string, unknown>;

const nullableNumber = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const nullableString = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

export function toApiKey(row: Row): ApiKeyRecord {
  return {
    id: String(row.id),
    name: String(row.name),
    tenant: String(row.tenant),
    scopes: String(row.scopes)
      .split(',')
      .filter((s) => s !== '') as Scope[],
    secretHash: new Uint8Array(row.secret_hash as Buffer),
    createdAt: Number(row.created_at),
    revokedAt: nullableNumber(row.revoked_at),
    mac: nullableString(row.mac),
    expiresAt: nullableNumber(row.expires_at),
    walletPrefix: nullableString(row.wallet_prefix),
    lastUsedAt: nullableNumber(row.last_used_at),
  };
}

export function toTotpFactor(row: Row): TotpFactorRecord {
  return {
    enrolledVia: row.enrolled_via === 'page' ? 'page' : 'api',
    walletName: String(row.wallet_name),
    secretEnvelope: String(row.secret_envelope),
    lastAcceptedStep: nullableNumber(row.last_accepted_step),
    failures: Number(row.failures),
    lockedUntilMs: nullableNumber(row.locked_until_ms),
    createdAt: Number(row.created_at),
    mac: nullableString(row.mac),
  };
}

export function toPasskey(row: Row): PasskeyCredentialRecord {
  return {
    walletName: String(row.wallet_name),
    credentialId: String(row.credential_id),
    publicKey: String(row.public_key),
    counter: Number(row.counter),
    transports: parseTransports(String(row.transports)),
    rpId: String(row.rp_id),
    enrolledVia: row.enrolled_via === 'page' ? 'page' : 'api',
    createdAt: Number(row.created_at),
    mac: nullableString(row.mac),
  };
}

export function toHwkey(row: Row): HwkeyFactorRecord {
  return {
    walletName: String(row.wallet_name),
    id: String(row.id),
    xpub: nullableString(row.xpub),
    subpath: String(row.subpath),
    windowStart: Number(row.window_start),
    issued: Number(row.issued),
    enrolledVia: row.enrolled_via === 'page' ? 'page' : 'api',
    createdAt: Number(row.created_at),
    mac: nullableString(row.mac),
  };
}

/** An hwkey's columns in SQL.insertHwkey's order. */
export function hwkeyParams(r: HwkeyFactorRecord): unknown[] {
  return [r.walletName, r.id, r.xpub, r.subpath, r.windowStart, r.issued, r.enrolledVia, r.createdAt, r.mac];
}

/** insertHwkey wrote nothing: the wallet has a hardware key already (one per wallet). */
export function duplicateHwkey(): CustosError {
  return new CustosError('already_enrolled', 'the wallet has a hardware key already', { details: { field: 'walletName' } });
}

/** A passkey's columns in SQL.insertPasskey's order (transports as a JSON array). */
export function passkeyParams(r: PasskeyCredentialRecord): unknown[] {
  return [r.walletName, r.credentialId, r.publicKey, r.counter, JSON.stringify(r.transports), r.rpId, r.enrolledVia, r.createdAt, r.mac];
}

/** insertPasskey wrote nothing: the credential id is registered already, to this wallet or another (one credential serves one wallet). */
export function duplicatePasskey(): CustosError {
  return new CustosError('already_enrolled', 'that passkey is registered already (to this wallet or another one)', {
    details: { field: 'credentialId' },
  });
}

/**
 * A tampered transports column that is not a JSON array of strings reads as one transport holding
 * the raw text, as a tampered audit detail does: the record then differs from the one MAC'd (which
 * the kernel refuses as record_unreadable) instead of the read crashing.
 */
function parseTransports(raw: string): string[] {
  try {
    const value = JSON.parse(raw) as unknown;
    if (Array.isArray(value) && value.every((t) => typeof t === 'string')) return value;
  } catch {
    // fall through
  }
  return [raw];
}

export function toApprovalRecord(row: Row): ApprovalRecord {
  return {
    id: String(row.id),
    tenant: String(row.tenant),
    apiKeyId: String(row.api_key_id),
    walletName: String(row.wallet_name),
    keyIndex: Number(row.key_index),
    opType: String(row.op_type),
    opHash: String(row.op_hash),
    summary: String(row.summary),
    summaryText: String(row.summary_text),
    requiredStrength: row.required_strength as ApprovalRecord['requiredStrength'],
    capabilityHash: String(row.capability_hash),
    state: row.state as ApprovalRecord['state'],
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    decidedAt: nullableNumber(row.decided_at),
    evidence: nullableString(row.evidence),
    consumedSeq: nullableNumber(row.consumed_seq),
    challenge: nullableString(row.challenge),
    ...(row.batch === null || row.batch === undefined ? {} : { batch: String(row.batch) }),
    mac: String(row.mac),
  };
}

export function toEnrollmentLink(row: Row): EnrollmentLinkRecord {
  return {
    id: String(row.id),
    tenant: String(row.tenant),
    apiKeyId: String(row.api_key_id),
    walletName: String(row.wallet_name),
    kind: String(row.kind),
    capabilityHash: String(row.capability_hash),
    state: row.state as EnrollmentLinkRecord['state'],
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    completedAt: nullableNumber(row.completed_at),
    secretEnvelope: nullableString(row.secret_envelope),
    pending: String(row.pending),
    failures: Number(row.failures),
    mac: String(row.mac),
  };
}

/** An enrolment link's columns in SQL.insertEnrollmentLink's order. */
export function enrollmentLinkParams(r: EnrollmentLinkRecord): unknown[] {
  return [
    r.id,
    r.tenant,
    r.apiKeyId,
    r.walletName,
    r.kind,
    r.capabilityHash,
    r.state,
    r.createdAt,
    r.expiresAt,
    r.completedAt,
    r.secretEnvelope,
    r.pending,
    r.failures,
    r.mac,
  ];
}

/** insertEnrollmentLink wrote nothing: the id or the capability hash is taken (both are 128+ random bits: a bug or an attack). */
export function duplicateEnrollmentLink(): CustosError {
  return new CustosError('internal', 'an enrolment link with that id or capability is stored already; nothing was written');
}

/** insertApproval wrote nothing: the id or the capability hash is taken (both are 128+ random bits: a bug or an attack). */
export function duplicateApproval(): CustosError {
  return new CustosError('internal', 'an approval with that id or capability is stored already; nothing was written');
}

/** An approval's columns in SQL.insertApproval's order (`challenge` and `batch` last, as migrations 6 and 8 added them to the table). */
export function approvalParams(r: ApprovalRecord): unknown[] {
  return [
    r.id,
    r.tenant,
    r.apiKeyId,
    r.walletName,
    r.keyIndex,
    r.opType,
    r.opHash,
    r.summary,
    r.summaryText,
    r.requiredStrength,
    r.capabilityHash,
    r.state,
    r.createdAt,
    r.expiresAt,
    r.decidedAt,
    r.evidence,
    r.consumedSeq,
    r.mac,
    r.challenge,
    r.batch ?? null,
  ];
}

export function toRecoveryCodesRecord(row: Row): RecoveryCodesRecord {
  return {
    walletName: String(row.wallet_name),
    codes: String(row.codes),
    failures: Number(row.failures),
    windowStart: Number(row.window_start),
    createdAt: Number(row.created_at),
    mac: String(row.mac),
  };
}

export function recoveryCodesParams(r: RecoveryCodesRecord): unknown[] {
  return [r.walletName, r.codes, r.failures, r.windowStart, r.createdAt, r.mac];
}

export function toCancelBudgetRecord(row: Row): CancelBudgetRecord {
  return {
    walletName: String(row.wallet_name),
    budgetKey: String(row.budget_key),
    codeFailures: Number(row.code_failures),
    recoveryFailures: Number(row.recovery_failures),
    recoveryWindowStart: Number(row.recovery_window_start),
    sentInWindow: Number(row.sent_in_window),
    sendWindowStart: Number(row.send_window_start),
    createdAt: Number(row.created_at),
    mac: String(row.mac),
  };
}

export function cancelBudgetUpdateParams(r: CancelBudgetRecord): unknown[] {
  return [r.codeFailures, r.recoveryFailures, r.recoveryWindowStart, r.sentInWindow, r.sendWindowStart, r.mac, r.walletName, r.budgetKey, r.createdAt];
}

export function cancelBudgetParams(r: CancelBudgetRecord): unknown[] {
  return [r.walletName, r.budgetKey, r.codeFailures, r.recoveryFailures, r.recoveryWindowStart, r.sentInWindow, r.sendWindowStart, r.createdAt, r.mac];
}

export function toWalletRecord(row: Row): WalletRecord {
  return {
    name: String(row.name),
    tenant: String(row.tenant),
    createdAt: Number(row.created_at),
    mac: nullableString(row.mac),
    // only on a frozen wallet (kernel/freeze.ts): a wallet never frozen reads as it did before migration 14
    ...(row.frozen_at === null || row.frozen_at === undefined ? {} : { frozenAt: Number(row.frozen_at) }),
  };
}

export function toAuditRecord(row: Row): AuditRecord {
  return {
    seq: Number(row.seq),
    ts: Number(row.ts),
    appId: nullableString(row.app_id),
    walletName: nullableString(row.wallet_name),
    action: String(row.action),
    opHash: nullableString(row.op_hash),
    decision: row.decision as AuditRecord['decision'],
    reason: nullableString(row.reason),
    detail: parseDetail(String(row.detail)),
    prevHash: String(row.prev_hash),
    hash: String(row.hash),
  };
}

/** A stored checkpoint as written (its members are checked by `audit verify`, which verifies its signature). */
export function toAuditCheckpoint(row: Row): AuditCheckpoint {
  return {
    format: 'custos.audit-checkpoint',
    version: 1,
    signerId: String(row.signer_id),
    seq: Number(row.seq),
    headHash: String(row.head_hash),
    ts: Number(row.ts),
    publicKey: String(row.public_key),
    signature: String(row.signature),
  };
}

/** A tampered, unparseable detail column must surface as a broken record in `audit verify`, not a crash. */
function parseDetail(raw: string): Record<string, unknown> {
  try {
    const value = JSON.parse(raw) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  return { unparseable: raw };
}

/** The SQL of the statements both stores share, with `$n` placeholders (SQLite reads them as `?n`). */
/**
 * The SQL of a filtered audit page (Store.queryAudit): one condition per filter given, `$n` in
 * order (both stores' placeholder style), so that each combination is one prepared statement.
 */
export function queryAuditSql(query: AuditQuery): { sql: string; params: unknown[] } {
  const params: unknown[] = [query.afterSeq];
  const where = ['seq > $1'];
  const add = (column: string, op: string, value: unknown) => {
    params.push(value);
    where.push(`${column} ${op} $${params.length}`);
  };
  if (query.walletName !== undefined) add('wallet_name', '=', query.walletName);
  if (query.appId !== undefined) add('app_id', '=', query.appId);
  // `sign.*`: every action under a prefix, as a range (index-friendly, no LIKE escapes: '/' follows '.')
  if (query.action?.endsWith('.*') === true) {
    add('action', '>=', query.action.slice(0, -1));
    add('action', '<', `${query.action.slice(0, -2)}/`);
  } else if (query.action !== undefined) add('action', '=', query.action);
  if (query.decision !== undefined) add('decision', '=', query.decision);
  if (query.opHash !== undefined) add('op_hash', '=', query.opHash);
  if (query.since !== undefined) add('ts', '>=', query.since);
  if (query.until !== undefined) add('ts', '<', query.until);
  params.push(query.limit);
  return { sql: `SELECT * FROM audit_log WHERE ${where.join(' AND ')} ORDER BY seq LIMIT $${params.length}`, params };
}

/** The columns of a wallet's rows (SQL.readWalletRows, walletPageSql): the factor's with an `f_` prefix, the passkeys' `p_`, the hardware key's `h_`. */
const WALLET_ROWS_COLUMNS =
  'w.name, w.tenant, w.created_at, w.mac, w.frozen_at, f.wallet_name AS f_wallet_name, f.secret_envelope AS f_secret_envelope, f.last_accepted_step AS f_last_accepted_step, f.failures AS f_failures, f.locked_until_ms AS f_locked_until_ms, f.created_at AS f_created_at, f.mac AS f_mac, f.enrolled_via AS f_enrolled_via, p.wallet_name AS p_wallet_name, p.credential_id AS p_credential_id, p.public_key AS p_public_key, p.counter AS p_counter, p.transports AS p_transports, p.rp_id AS p_rp_id, p.enrolled_via AS p_enrolled_via, p.created_at AS p_created_at, p.mac AS p_mac, h.wallet_name AS h_wallet_name, h.id AS h_id, h.xpub AS h_xpub, h.subpath AS h_subpath, h.window_start AS h_window_start, h.issued AS h_issued, h.enrolled_via AS h_enrolled_via, h.created_at AS h_created_at, h.mac AS h_mac';

/**
 * The page of GET /v1/wallets/list in one statement (one snapshot; Store.readWalletPage): the wallet
 * rows of tenant $1 with names after $2 — and, for a key with a wallet prefix, at or after $3 and
 * (`range`) before $4, the prefix's bounds (prefixUpperBound) — in name order, at most the last
 * parameter; each joined as readWalletRows joins (one result row per passkey), with its delivery
 * channel (`o_`) and its count of pending changes (index pending_changes_wallet_state). `collate` makes
 * the store compare names in code point order: '' for SQLite (BINARY compares UTF-8 bytes), ` COLLATE "C"`
 * for PostgreSQL (a UTF8 database; the index of migration 23 is built with it).
 */
export function walletPageSql(collate: '' | ' COLLATE "C"', bounds: 'all' | 'from' | 'range'): string {
  const name = `name${collate}`;
  const where = [`tenant = $1 AND ${name} > $2`, ...(bounds === 'all' ? [] : [`${name} >= $3`]), ...(bounds === 'range' ? [`${name} < $4`] : [])];
  const limit = bounds === 'all' ? '$3' : bounds === 'from' ? '$4' : '$5';
  return (
    `SELECT ${WALLET_ROWS_COLUMNS}, o.wallet_name AS o_wallet_name, o.secret_envelope AS o_secret_envelope, o.state AS o_state, ` +
    "o.enrolled_via AS o_enrolled_via, o.created_at AS o_created_at, o.mac AS o_mac, (SELECT COUNT(*) FROM pending_changes c WHERE c.wallet_name = w.name AND c.state = 'pending') AS pending_changes " +
    `FROM (SELECT * FROM wallets WHERE ${where.join(' AND ')} ORDER BY ${name} LIMIT ${limit}) w ` +
    'LEFT JOIN totp_factors f ON f.wallet_name = w.name LEFT JOIN hwkey_factors h ON h.wallet_name = w.name LEFT JOIN passkey_credentials p ON p.wallet_name = w.name ' +
    `LEFT JOIN oob_channels o ON o.wallet_name = w.name ORDER BY w.${name}, p.created_at, p.credential_id`
  );
}

/** The parameters of walletPageSql for a query of Store.readWalletPage, and which of its forms to run. */
export function walletPageParams(query: { tenant: string; prefix: string | null; after: string | null; limit: number }): {
  bounds: 'all' | 'from' | 'range';
  params: unknown[];
} {
  const after = query.after ?? '';
  if (query.prefix === null || query.prefix === '') return { bounds: 'all', params: [query.tenant, after, query.limit] };
  const upper = prefixUpperBound(query.prefix);
  return upper === null
    ? { bounds: 'from', params: [query.tenant, after, query.prefix, query.limit] }
    : { bounds: 'range', params: [query.tenant, after, query.prefix, upper, query.limit] };
}

/**
 * The least string after every string that starts with `prefix`, in code point order (null: none,
 * the prefix is all U+10FFFF): its last code point below U+10FFFF plus one (skipping the surrogates),
 * what follows it dropped. So the names starting with `prefix` are exactly those in [prefix, bound).
 */
export function prefixUpperBound(prefix: string): string | null {
  const points = [...prefix].map((c) => c.codePointAt(0) as number);
  while (points.length > 0) {
    const last = points.pop() as number;
    if (last < 0x10ffff) return String.fromCodePoint(...points, last + 1 === 0xd800 ? 0xe000 : last + 1);
  }
  return null;
}

/** The rows of walletPageSql → the page's wallets, in name order, each as readWalletRows reads it. */
export function toWalletPage(rows: Row[]): WalletPageEntry[] {
  const byName = new Map<string, Row[]>();
  for (const row of rows) {
    const name = String(row.name);
    const group = byName.get(name);
    if (group === undefined) byName.set(name, [row]);
    else group.push(row);
  }
  return [...byName].map(([walletName, group]) => {
    const first = group[0] as Row;
    const oob = unprefixed(first, 'o_');
    const walletRows = toWalletRows(group);
    return {
      walletName,
      rows: oob.wallet_name === null || oob.wallet_name === undefined ? walletRows : { ...walletRows, oob: toOobChannel(oob) },
      pendingChanges: Number(first.pending_changes),
    };
  });
}

export const SQL = {
  insertAudit:
    'INSERT INTO audit_log (seq, ts, app_id, wallet_name, action, op_hash, decision, reason, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
  insertTotpFactor:
    'INSERT INTO totp_factors (wallet_name, secret_envelope, last_accepted_step, failures, locked_until_ms, created_at, mac, enrolled_via) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
  updateTotpFactorState: 'UPDATE totp_factors SET last_accepted_step = $1, failures = $2, locked_until_ms = $3, mac = $4 WHERE wallet_name = $5',
  getTotpFactor: 'SELECT * FROM totp_factors WHERE wallet_name = $1',
  getWalletRow: 'SELECT name, tenant, created_at, mac, frozen_at FROM wallets WHERE name = $1',
  setWalletFrozen: 'UPDATE wallets SET frozen_at = $1, mac = $2 WHERE name = $3',
  // Always the kernel's hash (derived under the barrier): a value planted in the column is overwritten, never kept.
  setWalletOwnerLink: 'UPDATE wallets SET owner_link_hash = $1 WHERE name = $2 AND (owner_link_hash IS NULL OR owner_link_hash <> $3)',
  getWalletByOwnerLink: 'SELECT name, tenant, created_at, mac, frozen_at FROM wallets WHERE owner_link_hash = $1',
  getRecoveryCodes: 'SELECT * FROM recovery_codes WHERE wallet_name = $1',
  putRecoveryCodes:
    'INSERT INTO recovery_codes (wallet_name, codes, failures, window_start, created_at, mac) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (wallet_name) DO UPDATE SET codes = excluded.codes, failures = excluded.failures, window_start = excluded.window_start, created_at = excluded.created_at, mac = excluded.mac',
  insertCancelBudget:
    'INSERT INTO cancel_budgets (wallet_name, budget_key, code_failures, recovery_failures, recovery_window_start, sent_in_window, send_window_start, created_at, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (wallet_name, budget_key) DO NOTHING',
  getCancelBudget: 'SELECT * FROM cancel_budgets WHERE wallet_name = $1 AND budget_key = $2',
  updateCancelBudget:
    'UPDATE cancel_budgets SET code_failures = $1, recovery_failures = $2, recovery_window_start = $3, sent_in_window = $4, send_window_start = $5, mac = $6 WHERE wallet_name = $7 AND budget_key = $8 AND created_at = $9',
  readWalletAudit: 'SELECT * FROM audit_log WHERE wallet_name = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3',
  // The literal action lets SQLite and PostgreSQL use the partial index audit_log_admin_notice (migration 19).
  readAdminNotices: "SELECT * FROM audit_log WHERE action = 'admin.notice' AND seq < $1 ORDER BY seq DESC LIMIT $2",
  insertWallet: 'INSERT INTO wallets (name, tenant, created_at, mac) VALUES ($1, $2, $3, $4)',
  updateWalletMac: 'UPDATE wallets SET mac = $1 WHERE name = $2',
  updateTotpFactorMac: 'UPDATE totp_factors SET mac = $1 WHERE wallet_name = $2',
  listWalletRows: 'SELECT name, tenant, created_at, mac, frozen_at FROM wallets ORDER BY name',
  // A wallet's rows in one statement (one snapshot): any may be missing. One result row per passkey
  // (oldest first), each carrying the wallet and factor columns; one row of them alone when it has none.
  readWalletRows: `SELECT ${WALLET_ROWS_COLUMNS} FROM (SELECT CAST($1 AS TEXT) AS k) q LEFT JOIN wallets w ON w.name = q.k LEFT JOIN totp_factors f ON f.wallet_name = q.k LEFT JOIN hwkey_factors h ON h.wallet_name = q.k LEFT JOIN passkey_credentials p ON p.wallet_name = q.k ORDER BY p.created_at, p.credential_id`,
  listTotpFactors: 'SELECT * FROM totp_factors',
  // Passkeys. A taken credential id writes nothing (the caller sees no row inserted and throws), as
  // for approvals: a failed statement would abort a PostgreSQL unit that goes on after the refusal.
  listPasskeys: 'SELECT * FROM passkey_credentials WHERE wallet_name = $1 ORDER BY created_at, credential_id',
  insertPasskey:
    'INSERT INTO passkey_credentials (wallet_name, credential_id, public_key, counter, transports, rp_id, enrolled_via, created_at, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (credential_id) DO NOTHING',
  updatePasskeyCounter: 'UPDATE passkey_credentials SET counter = $1, mac = $2 WHERE credential_id = $3',
  // the owners' passkeys and the admins' (migration 16): a public URL whose host changed strands both
  listPasskeyRpIds: 'SELECT rp_id FROM passkey_credentials UNION SELECT rp_id FROM admin_passkeys ORDER BY rp_id',
  // Hardware keys: one per wallet (the wallet name is the key); a second writes nothing (the caller throws already_enrolled).
  getHwkey: 'SELECT * FROM hwkey_factors WHERE wallet_name = $1',
  insertHwkey:
    'INSERT INTO hwkey_factors (wallet_name, id, xpub, subpath, window_start, issued, enrolled_via, created_at, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (wallet_name) DO NOTHING',
  updateHwkeyState: 'UPDATE hwkey_factors SET window_start = $1, issued = $2, mac = $3 WHERE wallet_name = $4',
  // The upgrade's MAC pass is claimed once: the unit that clears the mark does it.
  hasAuditAction: 'SELECT 1 AS one FROM audit_log WHERE action = $1 LIMIT 1',
  // The literal action lets SQLite and PostgreSQL use the partial index audit_log_row_anchor (migration 17).
  latestRowAnchor: "SELECT * FROM audit_log WHERE action = 'row.anchor' AND op_hash = $1 ORDER BY seq DESC LIMIT 1",
  claimRecordMacMigration: 'UPDATE meta SET records_mac_pending = 0 WHERE id = 1 AND records_mac_pending = 1',
  insertApiKey:
    'INSERT INTO api_keys (id, name, tenant, scopes, secret_hash, created_at, revoked_at, mac, expires_at, wallet_prefix) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
  touchApiKey: 'UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)',
  revokeApiKey: 'UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL',
  insertSession: 'INSERT INTO sessions (token_hash, api_key_id, expires_at, mac) VALUES ($1, $2, $3, $4)',
  getSession: 'SELECT token_hash, api_key_id, expires_at, mac FROM sessions WHERE token_hash = $1',
  deleteExpiredSessions: 'DELETE FROM sessions WHERE expires_at <= $1',
  getApiKey: 'SELECT * FROM api_keys WHERE id = $1',
  listApiKeys: 'SELECT * FROM api_keys ORDER BY created_at, id',
  getMeta: 'SELECT signer_id, derivation, sealed_root, created_at FROM meta WHERE id = 1',
  initMeta: 'INSERT INTO meta (id, signer_id, derivation, sealed_root, created_at) VALUES (1, $1, $2, $3, $4)',
  // The rekey's switch: one compare-and-swap, so that of two concurrent rekeys exactly one wins.
  swapSealedRoot: 'UPDATE meta SET sealed_root = $1 WHERE id = 1 AND sealed_root = $2',
  readAudit: 'SELECT * FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2',
  // One checkpoint per seq: a replica that signs a seq another already stored writes nothing.
  insertAuditCheckpoint:
    'INSERT INTO audit_checkpoints (seq, signer_id, head_hash, ts, public_key, signature) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (seq) DO NOTHING',
  latestAuditCheckpointSeq: 'SELECT COALESCE(MAX(seq), 0) AS seq FROM audit_checkpoints',
  readAuditCheckpoints: 'SELECT * FROM audit_checkpoints WHERE seq >= $1 ORDER BY seq LIMIT $2',
  // Approvals. A duplicate id or capability hash writes nothing (the caller sees no row inserted and
  // throws) rather than failing the statement, which on PostgreSQL would abort the batch's transaction.
  insertApproval:
    'INSERT INTO approvals (id, tenant, api_key_id, wallet_name, key_index, op_type, op_hash, summary, summary_text, required_strength, capability_hash, state, created_at, expires_at, decided_at, evidence, consumed_seq, mac, challenge, batch) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) ON CONFLICT DO NOTHING',
  getApproval: 'SELECT * FROM approvals WHERE id = $1',
  getApprovalByCapability: 'SELECT * FROM approvals WHERE capability_hash = $1',
  // a batch left out (NULL) is kept: a batch approval stays one
  updateApproval:
    'UPDATE approvals SET state = $1, decided_at = $2, evidence = $3, consumed_seq = $4, challenge = $5, mac = $6, batch = COALESCE($7, batch) WHERE id = $8',
  // Pending and unexpired: of one wallet (within its tenant), of the whole tenant; each served by its index.
  countPendingApprovalsOfWallet: "SELECT COUNT(*) AS n FROM approvals WHERE wallet_name = $1 AND tenant = $2 AND state = 'pending' AND expires_at > $3",
  countPendingApprovalsOfTenant: "SELECT COUNT(*) AS n FROM approvals WHERE tenant = $1 AND state = 'pending' AND expires_at > $2",
  listExpiredOpenApprovals:
    "SELECT * FROM approvals WHERE state IN ('pending', 'approved') AND expires_at <= $1 AND (expires_at > $2 OR (expires_at = $3 AND id > $4)) ORDER BY expires_at, id LIMIT $5",
  listPendingApprovalsOfApiKey: "SELECT * FROM approvals WHERE api_key_id = $1 AND state = 'pending' ORDER BY expires_at, id",
  // Enrolment links; a duplicate id or capability hash writes nothing, as for approvals.
  insertEnrollmentLink:
    'INSERT INTO enrollment_links (id, tenant, api_key_id, wallet_name, kind, capability_hash, state, created_at, expires_at, completed_at, secret_envelope, pending, failures, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT DO NOTHING',
  getEnrollmentLinkByCapability: 'SELECT * FROM enrollment_links WHERE capability_hash = $1',
  listPendingEnrollmentLinksOfWallet: "SELECT * FROM enrollment_links WHERE wallet_name = $1 AND state = 'pending' ORDER BY created_at, id",
  updateEnrollmentLink: 'UPDATE enrollment_links SET state = $1, completed_at = $2, failures = $3, mac = $4 WHERE id = $5',
  // The JSON-RPC address book and the requests that wait for an approval (migration 9). A known
  // address writes nothing (the caller sees no row inserted), as for approvals.
  insertRpcAccount:
    'INSERT INTO rpc_accounts (tenant, address, wallet_name, key_index, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, address) DO NOTHING',
  getRpcAccount: 'SELECT * FROM rpc_accounts WHERE tenant = $1 AND address = $2',
  listRpcAccounts: 'SELECT * FROM rpc_accounts WHERE tenant = $1 ORDER BY created_at, address LIMIT $2',
  listRpcAccountsAfter:
    'SELECT * FROM rpc_accounts WHERE tenant = $1 AND (created_at > $2 OR (created_at = $3 AND address > $4)) ORDER BY created_at, address LIMIT $5',
  putRpcRequest:
    'INSERT INTO rpc_requests (tenant, request_key, approval_id, operation, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, request_key) DO UPDATE SET approval_id = excluded.approval_id, operation = excluded.operation, created_at = excluded.created_at',
  getRpcRequest: 'SELECT * FROM rpc_requests WHERE tenant = $1 AND request_key = $2',
  deleteRpcRequest: 'DELETE FROM rpc_requests WHERE tenant = $1 AND request_key = $2 AND approval_id = $3',
  deleteRpcRequestsBefore: 'DELETE FROM rpc_requests WHERE created_at < $1',
  // Housekeeping (kernel/housekeeping.ts): rows past their end and the retention, a bounded batch per unit.
  deleteFinishedApprovalsBefore:
    "DELETE FROM approvals WHERE id IN (SELECT id FROM approvals WHERE state IN ('rejected', 'expired', 'cancelled', 'consumed') AND expires_at < $1 ORDER BY expires_at, id LIMIT $2)",
  deleteEnrollmentLinksBefore:
    'DELETE FROM enrollment_links WHERE id IN (SELECT id FROM enrollment_links WHERE expires_at < $1 ORDER BY expires_at, id LIMIT $2)',
  deleteFinishedOutboxBefore:
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status IN ('sent', 'failed', 'expired') AND created_at < $1 AND expires_at < $2 ORDER BY created_at, id LIMIT $3)",
  getIdempotency: 'SELECT * FROM idempotency_keys WHERE tenant = $1 AND api_key_id = $2 AND idempotency_key = $3',
  putIdempotency:
    'INSERT INTO idempotency_keys (tenant, api_key_id, idempotency_key, request_hash, response, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, api_key_id, idempotency_key) DO UPDATE SET request_hash = excluded.request_hash, response = excluded.response, created_at = excluded.created_at',
  deleteIdempotencyBefore:
    'DELETE FROM idempotency_keys WHERE (tenant, api_key_id, idempotency_key) IN (SELECT tenant, api_key_id, idempotency_key FROM idempotency_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2)',
  getWalletPolicy: 'SELECT * FROM wallet_policies WHERE wallet_name = $1',
  putWalletPolicy:
    'INSERT INTO wallet_policies (wallet_name, tenant, policy, updated_at, mac) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (wallet_name) DO UPDATE SET tenant = excluded.tenant, policy = excluded.policy, updated_at = excluded.updated_at, mac = excluded.mac',
  listPolicyUsage: 'SELECT * FROM policy_usage WHERE wallet_name = $1 AND ts > $2 ORDER BY ts, audit_seq',
  insertPolicyUsage: 'INSERT INTO policy_usage (wallet_name, audit_seq, ts, amounts) VALUES ($1, $2, $3, $4)',
  deletePolicyUsageBefore: 'DELETE FROM policy_usage WHERE ts < $1',
  schemaVersions: 'SELECT version FROM schema_migrations ORDER BY version',
} as const;

export function toSessionRecord(row: Row) {
  return { tokenHash: String(row.token_hash), apiKeyId: String(row.api_key_id), expiresAt: Number(row.expires_at), mac: nullableString(row.mac) };
}

export function toMeta(row: Row) {
  return {
    signerId: String(row.signer_id),
    derivation: row.derivation as 'custos-v1' | 'fortanix-v1',
    sealedRoot: JSON.parse(String(row.sealed_root)) as unknown,
    createdAt: Number(row.created_at),
  };
}

/** The rows of SQL.readWalletRows → a wallet's rows (the factor's columns carry an `f_` prefix, the passkeys' a `p_` one). */
export function toWalletRows(rows: Row[]): WalletRows {
  const [row] = rows;
  if (row === undefined) throw new CustosError('store_unavailable', 'the wallet query returned no row');
  const factor = unprefixed(row, 'f_');
  const hwkey = unprefixed(row, 'h_');
  return {
    wallet: row.name === null || row.name === undefined ? undefined : toWalletRecord(row),
    totp: factor.wallet_name === null || factor.wallet_name === undefined ? undefined : toTotpFactor(factor),
    passkeys: rows.map((r) => unprefixed(r, 'p_')).flatMap((p) => (p.credential_id === null || p.credential_id === undefined ? [] : [toPasskey(p)])),
    ...(hwkey.wallet_name === null || hwkey.wallet_name === undefined ? {} : { hwkey: toHwkey(hwkey) }),
  };
}

function unprefixed(row: Row, prefix: string): Row {
  return Object.fromEntries(Object.entries(row).flatMap(([k, v]) => (k.startsWith(prefix) ? [[k.slice(prefix.length), v]] : [])));
}

/** Pairs every wallet row with its factor row (the upgrade's MAC pass); a factor row without a wallet row is left out. */
export function pairWalletRows(wallets: Row[], factors: Row[]): Array<{ wallet: WalletRecord; totp: TotpFactorRecord | undefined }> {
  const totp = new Map(factors.map((row) => [String(row.wallet_name), toTotpFactor(row)]));
  return wallets.map((row) => ({ wallet: toWalletRecord(row), totp: totp.get(String(row.name)) }));
}

export function toRpcAccount(row: Row): RpcAccountRecord {
  return {
    tenant: String(row.tenant),
    address: String(row.address),
    walletName: String(row.wallet_name),
    keyIndex: Number(row.key_index),
    createdAt: Number(row.created_at),
  };
}

export function toRpcRequest(row: Row): RpcRequestRecord {
  return {
    tenant: String(row.tenant),
    requestKey: String(row.request_key),
    approvalId: String(row.approval_id),
    operation: String(row.operation),
    createdAt: Number(row.created_at),
  };
}

export function toIdempotency(row: Row): IdempotencyRecord {
  return {
    tenant: String(row.tenant),
    apiKeyId: String(row.api_key_id),
    idempotencyKey: String(row.idempotency_key),
    requestHash: String(row.request_hash),
    response: String(row.response),
    createdAt: Number(row.created_at),
  };
}

export function toWalletPolicy(row: Row): WalletPolicyRecord {
  return {
    walletName: String(row.wallet_name),
    tenant: String(row.tenant),
    policy: String(row.policy),
    updatedAt: Number(row.updated_at),
    mac: String(row.mac),
  };
}

export function toPolicyUsage(row: Row): PolicyUsageRecord {
  return { walletName: String(row.wallet_name), auditSeq: Number(row.audit_seq), ts: Number(row.ts), amounts: String(row.amounts) };
}
