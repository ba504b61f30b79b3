import { AUDIT_GENESIS_HASH, type AuditRecord } from './types.js';
import { computeAuditHash } from './computeAuditHash.js';

export type AuditChainVerdict =
  | { ok: true; records: number; headSeq: number; headHash: string }
  | { ok: false; records: number; firstBrokenSeq: number; reason: 'gap' | 'prev_hash_mismatch' | 'hash_mismatch' };

/**
 * Recomputes the chain over records given in ascending seq order (pages from the store, so a
 * large log is never loaded whole) and names the first record that does not fit: a gap in the
 * sequence, a prevHash that is not its predecessor's hash, or a hash that is not its content's.
 */
export async function verifyAuditChain(pages: AsyncIterable<AuditRecord[]>): Promise<AuditChainVerdict> {
  let expectedSeq = 1;
  let prevHash = AUDIT_GENESIS_HASH;
  let count = 0;
  for await (const page of pages) {
    for (const record of page) {
      if (record.seq !== expectedSeq) return { ok: false, records: count, firstBrokenSeq: expectedSeq, reason: 'gap' };
      if (record.prevHash !== prevHash) return { ok: false, records: count, firstBrokenSeq: record.seq, reason: 'prev_hash_mismatch' };
      if (computeAuditHash(record, record.seq, record.prevHash) !== record.hash) {
        return { ok: false, records: count, firstBrokenSeq: record.seq, reason: 'hash_mismatch' };
      }
      prevHash = record.hash;
      expectedSeq += 1;
      count += 1;
    }
  }
  return { ok: true, records: count, headSeq: expectedSeq - 1, headHash: prevHash };
}
