/** A source of cryptographically secure random bytes, passed in (never a module-level global). */
export type RandomBytes = (n: number) => Uint8Array;

/** The cost parameters of scrypt (RFC 7914): CPU/memory cost N, block size r, parallelism p. */
export type ScryptCost = { readonly N: number; readonly r: number; readonly p: number };

/** Everything scrypt needs besides the passphrase. */
export type ScryptParams = { readonly N: number; readonly r: number; readonly p: number; readonly salt: Uint8Array };

/**
 * The sealed root at rest: a versioned, JSON-serialisable envelope. Holds no secret in the clear;
 * every header field is authenticated (it is the AEAD's associated data), so lowering N or
 * swapping the salt or IV makes opening fail.
 */
export type SealedRoot = {
  format: 'custos.sealed-root';
  version: 1;
  kdf: { name: 'scrypt'; N: number; r: number; p: number /** base64, 16..64 bytes */; salt: string };
  cipher: { name: 'aes-256-gcm' /** base64, 12 bytes */; iv: string };
  /** base64 of AES-256-GCM ciphertext ‖ 16-byte tag */
  ciphertext: string;
};

/** The header of a sealed root: the envelope without its ciphertext. */
export type SealedRootHeader = Omit<SealedRoot, 'ciphertext'>;

/** The master secret from which every wallet key is derived. */
export type RootMaster =
  | { kind: 'seed' /** BIP39/BIP32 seed, 16..64 bytes */; seed: Uint8Array }
  | { kind: 'xprv' /** 32 bytes */; privateKey: Uint8Array /** 32 bytes */; chainCode: Uint8Array };

/** The plaintext that is sealed: the barrier's record key and the derivation master. */
export type RootKeyring = {
  /** 32 bytes: the AES-256-GCM key of the barrier's records */
  barrierKey: Uint8Array;
  master: RootMaster;
};
