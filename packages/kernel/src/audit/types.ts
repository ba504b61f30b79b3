/** What the kernel decides to record. Never contains a secret: codes, keys and secrets stay out. */
export interface AuditEntry {
  /** Milliseconds since the epoch, server clock. */
  ts: number;
  /** API key id of the calling app, or null for operator actions from the CLI. */
  appId: string | null;
  walletName: string | null;
  /** What was asked: `sign.hash`, `totp.enroll`, `key.derive`, `apikey.create`, … */
  action: string;
  /** Hex SHA-256 of the canonical operation, for signing decisions. */
  opHash: string | null;
  decision: 'allowed' | 'denied';
  /** The error code of a denial; null when allowed. */
  reason: string | null;
  /** Non-secret context (key index, consent evidence such as the TOTP step). */
  detail: Record<string, unknown>;
}

/** A record as stored: the entry, its position in the one chain, and the chain hashes. */
export interface AuditRecord extends AuditEntry {
  seq: number;
  prevHash: string;
  hash: string;
}

export const AUDIT_GENESIS_HASH = '0'.repeat(64);

/**
 * A filtered page of the audit log (GET /v1/audit, `custos audit list|export`): records with
 * seq > `afterSeq`, ascending, that match every filter given, at most `limit`. Paging by seq keeps
 * a cursor stable while records are appended (they only come after it).
 */
export interface AuditQuery {
  afterSeq: number;
  limit: number;
  walletName?: string;
  appId?: string;
  /** An action, or every action under a prefix: `sign.*`. */
  action?: string;
  decision?: 'allowed' | 'denied';
  opHash?: string;
  /** ts ≥ since (ms since the epoch). */
  since?: number;
  /** ts < until (ms since the epoch). */
  until?: number;
}
