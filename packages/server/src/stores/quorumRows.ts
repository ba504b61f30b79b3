import { CustosError, type ProposalApprovalRecord, type ProposalRecord, type SettingRecord } from '@custos/kernel';
import type { Row } from './rows.js';

/**
 * The rows of migration 15 (both stores; issue 13, the admin quorum): kernel settings (one MAC'd
 * JSON row per name), proposals and their approvals, and the API keys' MAC column.
 * `$n` placeholders as in rows.ts.
 */
export const QUORUM_SQL = {
  getSetting: 'SELECT * FROM kernel_settings WHERE name = $1',
  putSetting:
    'INSERT INTO kernel_settings (name, value, version, updated_at, mac) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET value = excluded.value, version = excluded.version, updated_at = excluded.updated_at, mac = excluded.mac',
  listApiKeys: 'SELECT * FROM api_keys ORDER BY created_at, id',
  setApiKeyMac: 'UPDATE api_keys SET mac = $1 WHERE id = $2',
  insertProposal:
    'INSERT INTO proposals (id, kind, payload, payload_hash, proposer, proposer_signature, created_at, expires_at, state, decided_at, result, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING',
  getProposal: 'SELECT * FROM proposals WHERE id = $1',
  updateProposal: 'UPDATE proposals SET state = $1, decided_at = $2, result = $3, mac = $4 WHERE id = $5',
  listProposals: 'SELECT * FROM proposals ORDER BY created_at DESC, id DESC LIMIT $1',
  insertProposalApproval:
    'INSERT INTO proposal_approvals (proposal_id, admin, signature, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (proposal_id, admin) DO NOTHING',
  listProposalApprovals: 'SELECT * FROM proposal_approvals WHERE proposal_id = $1 ORDER BY created_at, admin',
  // The audit detail is JSON.stringify'd (appendChained.ts); the id is 32 hex digits (no LIKE wildcard).
  hasProposalAudit: "SELECT 1 AS one FROM audit_log WHERE action IN ('quorum.propose', 'quorum.apply') AND decision = 'allowed' AND detail LIKE $1 LIMIT 1",
} as const;

/** The LIKE pattern of hasProposalAudit (the id checked: 32 lowercase hex digits). */
export function proposalAuditPattern(proposalId: string): string {
  if (!/^[0-9a-f]{32}$/.test(proposalId)) throw new CustosError('invalid_input', 'id: expected a proposal id', { details: { field: 'id' } });
  return `%"proposalId":"${proposalId}"%`;
}

export function toSetting(row: Row): SettingRecord {
  return { name: String(row.name), value: String(row.value), version: Number(row.version), updatedAt: Number(row.updated_at), mac: String(row.mac) };
}

export function settingParams(r: SettingRecord): unknown[] {
  return [r.name, r.value, r.version, r.updatedAt, r.mac];
}

export function toProposal(row: Row): ProposalRecord {
  return {
    id: String(row.id),
    kind: String(row.kind),
    payload: String(row.payload),
    payloadHash: String(row.payload_hash),
    proposer: String(row.proposer),
    proposerSignature: String(row.proposer_signature),
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    state: String(row.state) as ProposalRecord['state'],
    decidedAt: row.decided_at === null || row.decided_at === undefined ? null : Number(row.decided_at),
    result: row.result === null || row.result === undefined ? null : String(row.result),
    mac: String(row.mac),
  };
}

export function proposalParams(r: ProposalRecord): unknown[] {
  return [r.id, r.kind, r.payload, r.payloadHash, r.proposer, r.proposerSignature, r.createdAt, r.expiresAt, r.state, r.decidedAt, r.result, r.mac];
}

export function toProposalApproval(row: Row): ProposalApprovalRecord {
  return { proposalId: String(row.proposal_id), admin: String(row.admin), signature: String(row.signature), createdAt: Number(row.created_at) };
}

export function duplicateProposal(): CustosError {
  return new CustosError('proposal_exists', 'a proposal with that id exists already', { details: { field: 'id' } });
}

/** Migration 15's tables; `int` is INTEGER (SQLite) or BIGINT (PostgreSQL), `text` adds a collation on PostgreSQL keys. */
export function quorumMigrationSql(int: string, key: string): string {
  return `
      ALTER TABLE api_keys ADD COLUMN mac TEXT;
      ALTER TABLE sessions ADD COLUMN mac TEXT;
      CREATE TABLE kernel_settings (
        name ${key} PRIMARY KEY,
        value TEXT NOT NULL,
        version ${int} NOT NULL CHECK (version >= 1),
        updated_at ${int} NOT NULL,
        mac TEXT NOT NULL
      );
      CREATE TABLE proposals (
        id ${key} PRIMARY KEY,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        payload_hash TEXT NOT NULL,
        proposer TEXT NOT NULL,
        proposer_signature TEXT NOT NULL,
        created_at ${int} NOT NULL,
        expires_at ${int} NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'applied', 'expired', 'consumed')),
        decided_at ${int},
        result TEXT,
        mac TEXT NOT NULL
      );
      CREATE INDEX proposals_created_at ON proposals (created_at, id);
      CREATE TABLE proposal_approvals (
        proposal_id ${key} NOT NULL REFERENCES proposals(id),
        admin ${key} NOT NULL,
        signature TEXT NOT NULL,
        created_at ${int} NOT NULL,
        PRIMARY KEY (proposal_id, admin)
      );
    `;
}
