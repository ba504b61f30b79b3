import { ed25519 } from '@noble/curves/ed25519.js';
import { invalidInput } from '../errors.js';
import { assertHex } from '../util/assertHex.js';
import { canonicalJson } from '../util/canonicalJson.js';
import { toHex } from '../util/hex.js';

/**
 * A checkpoint of the audit log: the kernel's Ed25519 signature (audit key, see
 * deriveAuditSigningKey) over the chain's head at `seq`. As a Certificate Transparency log is
 * held to its signed tree heads, a log that no longer holds record `seq` with hash `headHash`
 * (rewritten, cut short) is caught by whoever kept the checkpoint. Stored in the store's
 * audit_checkpoints table and exported as one JSON line each.
 */
export interface AuditCheckpoint {
  format: 'custos.audit-checkpoint';
  version: 1;
  signerId: string;
  /** The seq of the head record it commits to (≥ 1). */
  seq: number;
  /** That record's chain hash, 64 lower-case hex digits. */
  headHash: string;
  /** When it was signed, ms since the epoch (the kernel's clock). */
  ts: number;
  /** The audit public key, 32 bytes, lower-case hex (64 digits). */
  publicKey: string;
  /** Ed25519 signature over auditCheckpointMessage(…), 64 bytes, lower-case hex. */
  signature: string;
}

export type AuditCheckpointBody = Pick<AuditCheckpoint, 'signerId' | 'seq' | 'headHash' | 'ts'>;

const DOMAIN = 'custos.audit-checkpoint.v1\0';

/** The signed bytes: UTF-8 of DOMAIN ‖ canonicalJson of every member except the signature. */
export function auditCheckpointMessage(checkpoint: Omit<AuditCheckpoint, 'signature'>): Uint8Array {
  const { format, version, signerId, seq, headHash, ts, publicKey } = checkpoint;
  return new TextEncoder().encode(DOMAIN + canonicalJson({ format, version, signerId, seq, headHash, ts, publicKey }));
}

/** Makes a checkpoint; `sign` is the barrier's signCheckpoint (the private key never leaves it). */
export function createAuditCheckpoint(
  body: AuditCheckpointBody,
  signer: { auditPublicKey: Uint8Array; signCheckpoint(message: Uint8Array): Uint8Array },
): AuditCheckpoint {
  const unsigned = {
    format: 'custos.audit-checkpoint' as const,
    version: 1 as const,
    signerId: body.signerId,
    seq: body.seq,
    headHash: body.headHash,
    ts: body.ts,
    publicKey: toHex(signer.auditPublicKey),
  };
  return { ...unsigned, signature: toHex(signer.signCheckpoint(auditCheckpointMessage(unsigned))) };
}

/** Whether the checkpoint's signature verifies under `publicKey` (its own `publicKey` member is not trusted). */
export function verifyAuditCheckpointSignature(checkpoint: AuditCheckpoint, publicKey: Uint8Array): boolean {
  try {
    return ed25519.verify(Buffer.from(checkpoint.signature, 'hex'), auditCheckpointMessage(checkpoint), publicKey, { zip215: false });
  } catch {
    return false;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

/**
 * Validates a checkpoint read from outside (a file line, a row): every member of the right type
 * and form, nothing else. Throws invalid_input naming `field`.
 */
export function parseAuditCheckpoint(value: unknown, field = 'checkpoint'): AuditCheckpoint {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidInput(field, 'a custos.audit-checkpoint object', typeof value);
  const v = value as Record<string, unknown>;
  const keys = Object.keys(v).sort().join(',');
  if (keys !== 'format,headHash,publicKey,seq,signature,signerId,ts,version')
    throw invalidInput(field, 'the members format, version, signerId, seq, headHash, ts, publicKey, signature', keys);
  if (v.format !== 'custos.audit-checkpoint' || v.version !== 1) throw invalidInput(`${field}.format`, 'custos.audit-checkpoint version 1');
  if (typeof v.signerId !== 'string' || v.signerId.length === 0 || v.signerId.length > 128) throw invalidInput(`${field}.signerId`, 'a signer id');
  if (!Number.isSafeInteger(v.seq) || (v.seq as number) < 1) throw invalidInput(`${field}.seq`, 'an integer ≥ 1');
  if (!Number.isSafeInteger(v.ts) || (v.ts as number) < 0) throw invalidInput(`${field}.ts`, 'an integer ≥ 0 (ms since the epoch)');
  if (typeof v.headHash !== 'string' || !HEX64.test(v.headHash)) throw invalidInput(`${field}.headHash`, '64 lower-case hex digits');
  if (typeof v.publicKey !== 'string' || !HEX64.test(v.publicKey)) throw invalidInput(`${field}.publicKey`, '64 lower-case hex digits');
  if (typeof v.signature !== 'string' || !HEX128.test(v.signature)) throw invalidInput(`${field}.signature`, '128 lower-case hex digits');
  return {
    format: 'custos.audit-checkpoint',
    version: 1,
    signerId: v.signerId,
    seq: v.seq as number,
    headHash: v.headHash,
    ts: v.ts as number,
    publicKey: v.publicKey,
    signature: v.signature,
  };
}

/** An audit public key given as hex (32 bytes, optional 0x). Throws invalid_input naming `field`. */
export function parseAuditPublicKey(value: unknown, field = 'auditPublicKey'): Uint8Array {
  return assertHex(typeof value === 'string' ? value.trim() : value, field, 32);
}
