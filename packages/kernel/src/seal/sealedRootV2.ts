import { canonicalJson } from '../util/canonicalJson.js';

/**
 * The sealed root, version 2: the same AES-256-GCM envelope as version 1, but the key-encryption key
 * comes from an **unsealer** other than a passphrase. Version 1 (scrypt of a passphrase) stays the
 * passphrase format; version 2 carries the unsealer's public parameters in its header:
 *   - `shamir`: the KEK is 32 random bytes split M-of-N among operators (shamir-secret-sharing);
 *     `shareSetId` names the set, so that a share of another set (or another signer) is refused
 *     before any combining, and the recombined KEK is checked by the AEAD tag.
 *   - `pkcs11`: the KEK is a non-extractable AES-256 key inside a PKCS#11 token; the HSM itself runs
 *     AES-GCM over the root (C_Encrypt / C_Decrypt), so the KEK never enters this process.
 * Every header field is authenticated: the associated data is `sealedRootAadV2(header)`.
 */
export const SEALED_ROOT_V2 = 2;

export type ShamirUnsealerParams = {
  type: 'shamir';
  /** M: shares needed to unseal (2..255). */
  threshold: number;
  /** N: shares issued (threshold..255). */
  shares: number;
  /** base64 of 16 random bytes, drawn for each new share set (init, rekey). */
  shareSetId: string;
  /**
   * base64 of the Ed25519 public key of the share set's one-time signing key (see signShareSet):
   * every share file of the set carries a signature under it, checked before a share is kept.
   * Absent from a share set made before shares were signed (its files are version 1, unsigned):
   * such a set keeps working until `custos rekey` issues a signed one. Part of the header, so
   * covered by the AEAD's associated data like every other member.
   */
  shareKey?: string;
};

export type Pkcs11UnsealerParams = {
  type: 'pkcs11';
  /** CKA_LABEL of the token (the slot is found by its token's label). */
  tokenLabel: string;
  /** CKA_LABEL of the AES key object. */
  keyLabel: string;
  /** CKA_ID of the AES key object, hex (labels can repeat; the id pins the key). */
  keyId: string;
};

export type UnsealerParamsV2 = ShamirUnsealerParams | Pkcs11UnsealerParams;

export type SealedRootV2 = {
  format: 'custos.sealed-root';
  version: 2;
  unsealer: UnsealerParamsV2;
  cipher: { name: 'aes-256-gcm' /** base64, 12 bytes */; iv: string };
  /** base64 of AES-256-GCM ciphertext ‖ 16-byte tag */
  ciphertext: string;
};

export type SealedRootV2Header = Omit<SealedRootV2, 'ciphertext'>;

/**
 * The associated data of a version-2 sealed root: a domain prefix and the canonical JSON of the
 * whole header (format, version, unsealer parameters, cipher and IV). Changing any of them — the
 * threshold, the share set, the HSM key id, the IV — makes the tag fail.
 */
export function sealedRootAadV2(header: SealedRootV2Header): Uint8Array {
  const { format, version, unsealer, cipher } = header;
  return new Uint8Array(Buffer.from(`custos.sealed-root.v2\n${canonicalJson({ format, version, unsealer, cipher })}`, 'utf8'));
}
