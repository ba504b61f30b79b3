import { ed25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';

/**
 * The HKDF `info` of the audit signing key: the documented derivation path (docs/audit.md).
 * Changing it changes every signer's audit public key.
 */
export const AUDIT_KEY_INFO = 'custos.audit.v1 checkpoint signing key';

/**
 * The audit log's Ed25519 signing key (its 32-byte secret, RFC 8032 §5.1.5) derived from the sealed
 * root's barrier key: HKDF-SHA256 (RFC 5869) with IKM = the 32-byte barrier key, no salt, info =
 * AUDIT_KEY_INFO, L = 32. The barrier key is random at init and kept by every rekey, so the audit
 * key is fixed for the signer's life. The caller wipes the result.
 */
export function deriveAuditSigningKey(barrierKey: Uint8Array): Uint8Array {
  if (barrierKey.length !== 32) throw new TypeError(`barrier key: expected 32 bytes, got ${barrierKey.length}`);
  return hkdf(sha256, barrierKey, undefined, new TextEncoder().encode(AUDIT_KEY_INFO), 32);
}

/** The audit public key (32 bytes, Ed25519) of a barrier key; the derived secret is wiped. */
export function deriveAuditPublicKey(barrierKey: Uint8Array): Uint8Array {
  const secret = deriveAuditSigningKey(barrierKey);
  try {
    return ed25519.getPublicKey(secret);
  } finally {
    secret.fill(0);
  }
}
