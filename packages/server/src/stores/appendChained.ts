import { type AuditEntry, type AuditRecord, boundAuditDetail, computeAuditHash, CustosError } from '@custos/kernel';

/**
 * Appends one audit record after `head` on any store: bounds its detail (boundAuditDetail: the one
 * place every record of every store passes), computes its place and hash in the chain and runs the
 * store's INSERT (the parameters of SQL.insertAudit, in order). A failed insert is
 * audit_unavailable — the unit of work then rolls back, and nothing is signed.
 */
export async function appendChained(head: { seq: number; hash: string }, given: AuditEntry, insert: (params: unknown[]) => unknown): Promise<AuditRecord> {
  // Every record, allowed or denied, keeps its detail whole only up to 4 KB (else its hash and a preview).
  const entry = { ...given, detail: boundAuditDetail(given.detail) };
  const seq = head.seq + 1;
  const prevHash = head.hash;
  const hash = computeAuditHash(entry, seq, prevHash);
  try {
    await insert([
      seq,
      entry.ts,
      entry.appId,
      entry.walletName,
      entry.action,
      entry.opHash,
      entry.decision,
      entry.reason,
      JSON.stringify(entry.detail),
      prevHash,
      hash,
    ]);
  } catch (error) {
    throw new CustosError('audit_unavailable', 'the audit record could not be written; nothing was signed', { cause: error });
  }
  return { ...entry, seq, prevHash, hash };
}
