import { toHex } from '../util/hex.js';
import { type AuditCheckpoint, verifyAuditCheckpointSignature } from './auditCheckpoint.js';
import { computeAuditHash } from './computeAuditHash.js';
import { AUDIT_GENESIS_HASH, type AuditRecord } from './types.js';

/** Why a log is refused: the chain itself, or a checkpoint it no longer matches. */
export type AuditLogFault =
  | { kind: 'chain'; seq: number; reason: 'gap' | 'prev_hash_mismatch' | 'hash_mismatch' }
  /** A checkpoint commits to a different hash at its seq: records up to it were rewritten. */
  | { kind: 'checkpoint_mismatch'; seq: number; source: 'store' | 'external'; checkpointHash: string; logHash: string }
  /** A checkpoint commits to a record the log no longer has: the log was cut short. */
  | { kind: 'checkpoint_beyond_head'; seq: number; source: 'store' | 'external'; headSeq: number }
  /** A checkpoint whose signature does not verify under the key it is checked against. */
  | { kind: 'checkpoint_signature_invalid'; seq: number; source: 'store' | 'external' }
  /** A checkpoint that names another key than the one it is checked against. */
  | { kind: 'checkpoint_key_mismatch'; seq: number; source: 'store' | 'external'; publicKey: string; expected: string }
  /** A checkpoint of another signer. */
  | { kind: 'checkpoint_foreign'; seq: number; source: 'store' | 'external'; signerId: string }
  /** An audit public key was given and no checkpoint at all verified under it. */
  | { kind: 'no_checkpoint' };

export interface AuditLogReport {
  ok: boolean;
  /** The first fault found (ok false), in log order. */
  fault?: AuditLogFault;
  /** Records verified (the whole log when ok). */
  records: number;
  headSeq: number;
  headHash: string;
  /** The key checkpoints were checked against (hex) and whether it was given from outside the log. */
  key: { publicKey: string; trusted: boolean } | null;
  /** Stored checkpoints verified, and the highest seq one of them (or an external one) covers. */
  checkpoints: number;
  externalCheckpoints: number;
  lastCheckpointSeq: number;
  /** Records after the last checkpoint: nothing protects them against a database writer. */
  unprotected: number;
}

export interface VerifyAuditLogOptions {
  /** The log's records, ascending seq, in pages. */
  records: AsyncIterable<AuditRecord[]>;
  /** The stored checkpoints, ascending seq, in pages. */
  checkpoints: AsyncIterable<AuditCheckpoint[]>;
  signerId: string;
  /**
   * The audit public key as printed by `custos init` (kept outside the data directory). Without
   * it, checkpoints are checked against the key the first stored one names: the log's own key,
   * which a database writer can replace along with every checkpoint.
   */
  trustedKey?: Uint8Array;
  /** Checkpoints kept elsewhere (an exported file): the log must still extend each of them. */
  external?: readonly AuditCheckpoint[];
}

/**
 * Recomputes the hash chain (see verifyAuditChain) and holds the log to its checkpoints: every
 * stored and every external checkpoint must be signed by the audit key, be this signer's, and name
 * a record the log still has, with the hash the log has. Reads the log and the checkpoints page by
 * page, so a large log is never loaded whole.
 */
export async function verifyAuditLog({ records, checkpoints, signerId, trustedKey, external = [] }: VerifyAuditLogOptions): Promise<AuditLogReport> {
  let key: { bytes: Uint8Array; hex: string; trusted: boolean } | null =
    trustedKey === undefined ? null : { bytes: Uint8Array.from(trustedKey), hex: toHex(trustedKey), trusted: true };
  const stored = flatten(checkpoints);
  let nextStored = await stored.next();
  const outside = [...external].sort((a, b) => a.seq - b.seq);
  let outsideAt = 0;
  let expectedSeq = 1;
  let prevHash = AUDIT_GENESIS_HASH;
  let count = 0;
  let storedOk = 0;
  let lastCheckpointSeq = 0;

  const report = (fault?: AuditLogFault): AuditLogReport => ({
    ok: fault === undefined,
    ...(fault === undefined ? {} : { fault }),
    records: count,
    headSeq: expectedSeq - 1,
    headHash: prevHash,
    key: key === null ? null : { publicKey: key.hex, trusted: key.trusted },
    checkpoints: storedOk,
    externalCheckpoints: outsideAt,
    lastCheckpointSeq,
    unprotected: expectedSeq - 1 - lastCheckpointSeq,
  });

  /** The checks every checkpoint passes before its hash is compared; a fault, or undefined. */
  const checkSigned = (checkpoint: AuditCheckpoint, source: 'store' | 'external'): AuditLogFault | undefined => {
    const { seq } = checkpoint;
    if (checkpoint.signerId !== signerId) return { kind: 'checkpoint_foreign', seq, source, signerId: checkpoint.signerId };
    // Without a trusted key, the first checkpoint's own key becomes the log's key.
    if (key === null) key = { bytes: Uint8Array.from(Buffer.from(checkpoint.publicKey, 'hex')), hex: checkpoint.publicKey, trusted: false };
    if (checkpoint.publicKey !== key.hex) return { kind: 'checkpoint_key_mismatch', seq, source, publicKey: checkpoint.publicKey, expected: key.hex };
    if (!verifyAuditCheckpointSignature(checkpoint, key.bytes)) return { kind: 'checkpoint_signature_invalid', seq, source };
    return undefined;
  };

  /** Holds the log (verified up to `record`) to one checkpoint at or below record.seq. */
  const checkAt = (checkpoint: AuditCheckpoint, source: 'store' | 'external', record: AuditRecord): AuditLogFault | undefined => {
    const signed = checkSigned(checkpoint, source);
    if (signed !== undefined) return signed;
    // A seq below the record's was passed over: only a stored list out of order (or a duplicate) gets here.
    if (checkpoint.seq !== record.seq || checkpoint.headHash !== record.hash)
      return {
        kind: 'checkpoint_mismatch',
        seq: checkpoint.seq,
        source,
        checkpointHash: checkpoint.headHash,
        logHash: checkpoint.seq === record.seq ? record.hash : '',
      };
    lastCheckpointSeq = Math.max(lastCheckpointSeq, checkpoint.seq);
    return undefined;
  };

  for await (const page of records) {
    for (const record of page) {
      if (record.seq !== expectedSeq) return report({ kind: 'chain', seq: expectedSeq, reason: 'gap' });
      if (record.prevHash !== prevHash) return report({ kind: 'chain', seq: record.seq, reason: 'prev_hash_mismatch' });
      if (computeAuditHash(record, record.seq, record.prevHash) !== record.hash) return report({ kind: 'chain', seq: record.seq, reason: 'hash_mismatch' });
      prevHash = record.hash;
      expectedSeq += 1;
      count += 1;
      while (!nextStored.done && nextStored.value.seq <= record.seq) {
        const fault = checkAt(nextStored.value, 'store', record);
        if (fault !== undefined) return report(fault);
        storedOk += 1;
        nextStored = await stored.next();
      }
      for (let cp = outside[outsideAt]; cp !== undefined && cp.seq <= record.seq; cp = outside[outsideAt]) {
        const fault = checkAt(cp, 'external', record);
        if (fault !== undefined) return report(fault);
        outsideAt += 1;
      }
    }
  }
  // What is left commits to records past the log's head: the log was cut short (or the
  // checkpoint is forged: either way the log does not extend it).
  const headSeq = expectedSeq - 1;
  const left: Array<[AuditCheckpoint, 'store' | 'external']> = [];
  if (!nextStored.done) left.push([nextStored.value, 'store']);
  const firstOutside = outside[outsideAt];
  if (firstOutside !== undefined) left.push([firstOutside, 'external']);
  for (const [checkpoint, source] of left) {
    const fault = checkSigned(checkpoint, source) ?? { kind: 'checkpoint_beyond_head', seq: checkpoint.seq, source, headSeq };
    return report(fault);
  }
  if (key?.trusted === true && lastCheckpointSeq === 0 && count > 0) return report({ kind: 'no_checkpoint' });
  return report();
}

async function* flatten<T>(pages: AsyncIterable<T[]>): AsyncGenerator<T> {
  for await (const page of pages) yield* page;
}
