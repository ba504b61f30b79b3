/**
 * A BIP32 extended private key without its position in a tree (depth, parent fingerprint and
 * child number are not kept: a node parsed from an xprv is used as the master of its own tree).
 * Both fields are secret; whoever holds an HDNode wipes both with `.fill(0)` when done.
 */
export interface HDNode {
  /** 32-byte secp256k1 private key, in [1, n - 1]. */
  readonly privateKey: Uint8Array;
  /** 32-byte BIP32 chain code. */
  readonly chainCode: Uint8Array;
}

/** The wallet-name-to-path schemes Custos derives keys with (docs/derivation.md). */
export type DerivationScheme = 'custos-v1' | 'fortanix-v1';

/** BIP32: indexes at or above 2^31 are hardened. */
export const HARDENED_OFFSET = 0x80000000;
