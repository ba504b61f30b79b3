import type { StoreTx } from '../store/types.js';
import type { AuditEntry, AuditRecord } from './types.js';

/**
 * The StoreTx a unit of work sees: the store's own, with the size of each audit record it appends
 * reported to `charge` (the kernel charges it to the caller's tenant's audit budget). Every other
 * member is the store's, unchanged, whatever methods StoreTx has.
 */
export function meterAuditAppends(tx: StoreTx, charge: (appId: string | null, bytes: number) => void): StoreTx {
  const appendAudit = async (entry: AuditEntry): Promise<AuditRecord> => {
    const record = await tx.appendAudit(entry);
    charge(record.appId, auditRecordBytes(record));
    return record;
  };
  return new Proxy(tx, {
    get(target, property) {
      if (property === 'appendAudit') return appendAudit;
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** About what an audit record takes in the store: its fields as JSON (its detail is bounded to 4 KB by the store's append). */
export function auditRecordBytes(record: AuditRecord): number {
  return Buffer.byteLength(JSON.stringify(record), 'utf8');
}
