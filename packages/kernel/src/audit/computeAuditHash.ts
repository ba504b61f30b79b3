import { createHash } from 'node:crypto';
import { canonicalJson } from '../util/canonicalJson.js';
import type { AuditEntry } from './types.js';

/**
 * hash_n = SHA-256("custos.audit.v1\0" ‖ canonicalJson({ seq, prevHash, ...entry })), hex.
 * Each record commits to its predecessor's hash, so removing, reordering or editing any record
 * breaks every hash after it.
 */
export function computeAuditHash(entry: AuditEntry, seq: number, prevHash: string): string {
  return createHash('sha256')
    .update('custos.audit.v1\0')
    .update(auditBody(entry, seq, prevHash))
    .digest('hex');
}

/**
 * canonicalJson of the record, written out with its keys already in canonical order (this runs once
 * per audit record, on the hot path): the same bytes as the generic encoder, which it falls back to
 * for any field that is not a plain string, null or finite number as the AuditEntry type says.
 */
function auditBody(entry: AuditEntry, seq: number, prevHash: string): string {
  const { action, appId, decision, detail, opHash, reason, ts, walletName } = entry;
  if (
    typeof action === 'string' &&
    typeof decision === 'string' &&
    typeof prevHash === 'string' &&
    isStringOrNull(appId) &&
    isStringOrNull(opHash) &&
    isStringOrNull(reason) &&
    isStringOrNull(walletName) &&
    detail !== undefined &&
    Number.isFinite(seq) &&
    Number.isFinite(ts)
  ) {
    // keys in UTF-16 code unit order, as canonicalJson sorts them
    return (
      `{"action":${JSON.stringify(action)},"appId":${JSON.stringify(appId)},"decision":${JSON.stringify(decision)},` +
      `"detail":${canonicalJson(detail)},"opHash":${JSON.stringify(opHash)},"prevHash":${JSON.stringify(prevHash)},` +
      `"reason":${JSON.stringify(reason)},"seq":${JSON.stringify(seq)},"ts":${JSON.stringify(ts)},"walletName":${JSON.stringify(walletName)}}`
    );
  }
  return canonicalJson({ seq, prevHash, ts, appId, walletName, action, opHash, decision, reason, detail });
}

function isStringOrNull(value: unknown): boolean {
  return value === null || typeof value === 'string';
}
