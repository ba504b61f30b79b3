import { createHash } from 'node:crypto';
import { canonicalJson } from '../util/canonicalJson.js';
import type { AuditEntry } from './types.js';

/**
 * hash_n = SHA-256("custos.audit.v1\0" ‖ canonicalJson({ seq, prevHash, ...entry })), hex.
 * Each record commits to its predecessor's hash, so removing, reordering or editing any record
 * breaks every hash after it.
 */
export function computeAuditHash(entry: AuditEntry, seq: number, prevHash: string): string {
  const body = canonicalJson({
    seq,
    prevHash,
    ts: entry.ts,
    appId: entry.appId,
    walletName: entry.walletName,
    action: entry.action,
    opHash: entry.opHash,
    decision: entry.decision,
    reason: entry.reason,
    detail: entry.detail,
  });
  return createHash('sha256').update('custos.audit.v1\0').update(body).digest('hex');
}
