/**
 * Binary layout of an encoded RootKeyring, version 1:
 *   [0]        version = 1
 *   [1..33)    barrierKey (32 bytes)
 *   [33]       kind: 1 = seed, 2 = xprv
 *   seed:  [34] = L (16..64), [35..35+L) seed            total 35 + L
 *   xprv:  [34..66) privateKey, [66..98) chainCode       total 98
 */
export const KEYRING_VERSION = 1;
export const KEYRING_KIND_SEED = 1;
export const KEYRING_KIND_XPRV = 2;
export const BARRIER_KEY_BYTES = 32;
export const SEED_MIN_BYTES = 16;
export const SEED_MAX_BYTES = 64;
export const XPRV_KEY_BYTES = 32;
export const XPRV_CHAIN_CODE_BYTES = 32;
