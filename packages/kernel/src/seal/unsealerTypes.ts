import type { Pkcs11UnsealerParams, ShamirUnsealerParams } from './sealedRootV2.js';
import type { ScryptCost } from './types.js';

/**
 * The unsealers: where the key-encryption key (KEK) of the sealed root comes from. One kind is
 * chosen at init and changed only by a rekey.
 *   - `passphrase`: scrypt of an operator's passphrase (sealed root version 1);
 *   - `shamir`: 32 random bytes split M-of-N among operators (version 2);
 *   - `pkcs11`: a non-extractable AES-256 key generated inside a PKCS#11 token (version 2); the
 *     token runs AES-GCM over the root, the KEK never enters this process (seal/pkcs11/).
 */
export type UnsealerType = 'passphrase' | 'shamir' | 'pkcs11';

/** The public description of a sealed root's unsealer (status, CLI): no secret. */
export type UnsealerInfo = { type: 'passphrase' } | ShamirUnsealerParams | Pkcs11UnsealerParams;

/**
 * One operator's Shamir share, parsed and checksum-verified (see parseShareFile). Its signature is
 * checked against the sealed root (assertShareBelongs), not by the parser.
 */
export interface UnsealShare {
  signerId: string;
  shareSetId: string;
  /** 1..shares: the operator's number. */
  index: number;
  threshold: number;
  shares: number;
  /** The share bytes of shamir-secret-sharing (KEK length + 1: the last byte is the x coordinate). */
  share: Uint8Array;
  /** The set's Ed25519 signature over the share (shareSignature.ts); absent in a version-1 (unsigned) file. */
  signature?: Uint8Array;
}

/**
 * What opens a sealed root. The caller keeps (and wipes) the secret buffers it passes; the seal
 * module copies what it needs and wipes its copies.
 */
export type UnsealCredential =
  | { type: 'passphrase'; passphrase: Uint8Array }
  | { type: 'shamir'; shares: readonly UnsealShare[] }
  /**
   * The HSM: the PKCS#11 library to load and the token's user PIN (UTF-8). The token and the key are
   * named by the envelope's header.
   */
  | { type: 'pkcs11'; modulePath: string; pin: Uint8Array };

/** What a root is (re)sealed under: the new unsealer of an init or a rekey. */
export type UnsealerSpec =
  | { type: 'passphrase'; passphrase: Uint8Array; scrypt?: ScryptCost }
  | { type: 'shamir'; threshold: number; shares: number }
  /**
   * The HSM: a new KEK is generated on the token labelled `tokenLabel` (CKA_LABEL `keyLabel`; the
   * label may repeat, the random CKA_ID pins the key) and the token seals the root under it.
   */
  | { type: 'pkcs11'; modulePath: string; pin: Uint8Array; tokenLabel: string; keyLabel: string };

/** A share file to hand to one operator (init, rekey): its name and its text. Holds a secret. */
export interface ShareFileOut {
  index: number;
  /** `share-<index>.json` */
  name: string;
  /** The file's content (JSON text, see encodeShareFile). */
  text: string;
}
