import { ed25519 } from '@noble/curves/ed25519.js';
import { deriveAuditSigningKey } from '../audit/deriveAuditSigningKey.js';
import { createKeyDeriver } from '../crypto/createKeyDeriver.js';
import { addressFromPoint } from '../crypto/addressFromPoint.js';
import { getPublicKey } from '../crypto/getPublicKey.js';
import { masterKeyFromSeed } from '../crypto/masterKeyFromSeed.js';
import { signDigest } from '../crypto/signDigest.js';
import type { HDNode } from '../crypto/types.js';
import { CustosError } from '../errors.js';
import { decryptRecord } from '../seal/decryptRecord.js';
import { encryptRecord } from '../seal/encryptRecord.js';
import type { RootKeyring } from '../seal/types.js';
import type { DerivationScheme } from '../store/types.js';

/** A leaf key's public identity: not secret, cached so that signing need not recompute it. */
export interface LeafPublicKey {
  /** 33-byte compressed secp256k1 public key. */
  publicKey: Uint8Array;
  /** EIP-55 checksummed Ethereum address. */
  address: string;
}

export interface BarrierSignature extends LeafPublicKey {
  r: Uint8Array;
  s: Uint8Array;
  recovery: 0 | 1;
}

/**
 * The only holder of plaintext key material while unsealed: the record key that encrypts every
 * secret the store keeps, and the master node behind every wallet key. Private keys never leave
 * it: callers get signatures and public keys. `wipe()` zeroes everything (seal).
 */
export class Barrier {
  readonly #recordKey: Uint8Array;
  readonly #deriver: ReturnType<typeof createKeyDeriver>;
  /** (walletName, keyIndex) → public key and address, LRU of at most #maxCachedKeys. */
  readonly #leaves = new Map<string, LeafPublicKey>();
  readonly #maxCachedKeys: number;
  /** The audit log's Ed25519 secret (deriveAuditSigningKey), and its public key (not secret). */
  readonly #auditKey: Uint8Array;
  readonly #auditPublicKey: Uint8Array;
  #wiped = false;
  /** The audit key is wiped last: a seal signs its final checkpoint after the wallet keys are gone. */
  #auditKeyWiped = false;

  constructor(
    keyring: RootKeyring,
    scheme: DerivationScheme,
    { maxCachedWallets = 100_000, maxCachedKeys = 100_000 }: { maxCachedWallets?: number; maxCachedKeys?: number } = {},
  ) {
    this.#maxCachedKeys = maxCachedKeys;
    this.#recordKey = Uint8Array.from(keyring.barrierKey);
    this.#auditKey = deriveAuditSigningKey(keyring.barrierKey);
    this.#auditPublicKey = ed25519.getPublicKey(this.#auditKey);
    const master: HDNode =
      keyring.master.kind === 'seed' ? masterKeyFromSeed(keyring.master.seed) : { privateKey: keyring.master.privateKey, chainCode: keyring.master.chainCode };
    this.#deriver = createKeyDeriver({ master, scheme, maxCachedWallets });
    if (keyring.master.kind === 'seed') {
      master.privateKey.fill(0);
      master.chainCode.fill(0);
    }
  }

  #assertOpen(): void {
    if (this.#wiped) throw new CustosError('sealed', 'the signer is sealed');
  }

  /** The audit public key (Ed25519, 32 bytes): a copy. */
  get auditPublicKey(): Uint8Array {
    return Uint8Array.from(this.#auditPublicKey);
  }

  /** Signs an audit checkpoint's message (auditCheckpointMessage) with the audit key: Ed25519, 64 bytes. */
  signCheckpoint(message: Uint8Array): Uint8Array {
    if (this.#auditKeyWiped) throw new CustosError('sealed', 'the signer is sealed');
    return ed25519.sign(message, this.#auditKey);
  }

  encryptRecord(recordKey: string, plaintext: Uint8Array, random: (n: number) => Uint8Array): string {
    this.#assertOpen();
    return encryptRecord(this.#recordKey, recordKey, plaintext, random);
  }

  /** Throws record_unreadable when the record does not open under this barrier and record key. */
  decryptRecord(recordKey: string, envelope: string): Uint8Array {
    this.#assertOpen();
    return decryptRecord(this.#recordKey, recordKey, envelope);
  }

  publicKey(walletName: string, keyIndex: number): LeafPublicKey {
    this.#assertOpen();
    const cached = this.#cachedLeaf(walletName, keyIndex);
    if (cached !== undefined) return cached;
    const privateKey = this.#deriver.derivePrivateKey(walletName, keyIndex);
    try {
      return this.#rememberLeaf(walletName, keyIndex, privateKey);
    } finally {
      privateKey.fill(0);
    }
  }

  sign(walletName: string, keyIndex: number, digest: Uint8Array): BarrierSignature {
    this.#assertOpen();
    const privateKey = this.#deriver.derivePrivateKey(walletName, keyIndex);
    try {
      const { r, s, recovery } = signDigest(privateKey, digest);
      const leaf = this.#cachedLeaf(walletName, keyIndex) ?? this.#rememberLeaf(walletName, keyIndex, privateKey);
      return { r, s, recovery, ...leaf };
    } finally {
      privateKey.fill(0);
    }
  }

  #cachedLeaf(walletName: string, keyIndex: number): LeafPublicKey | undefined {
    const key = `${keyIndex}:${walletName}`;
    const leaf = this.#leaves.get(key);
    if (leaf !== undefined) {
      this.#leaves.delete(key);
      this.#leaves.set(key, leaf);
    }
    return leaf;
  }

  /** Computes the leaf's public key and address from its private key, and caches them. */
  #rememberLeaf(walletName: string, keyIndex: number, privateKey: Uint8Array): LeafPublicKey {
    // One point multiplication gives both: the uncompressed point for the address, and the
    // compressed key (SEC 1 §2.3.3: 0x02 for an even y, 0x03 for an odd one, then x).
    const point = getPublicKey(privateKey, false);
    const publicKey = new Uint8Array(33);
    publicKey[0] = 0x02 | ((point[64] as number) & 1);
    publicKey.set(point.subarray(1, 33), 1);
    const leaf = { publicKey, address: addressFromPoint(point) };
    if (this.#maxCachedKeys === 0) return leaf;
    this.#leaves.set(`${keyIndex}:${walletName}`, leaf);
    if (this.#leaves.size > this.#maxCachedKeys) {
      const oldest = this.#leaves.keys().next().value;
      if (oldest !== undefined) this.#leaves.delete(oldest);
    }
    return leaf;
  }

  get cachedWallets(): number {
    return this.#wiped ? 0 : this.#deriver.cachedWallets;
  }

  /**
   * How many secret buffers the barrier holds (record key, master node, cached wallet nodes) and how
   * many still hold a non-zero byte: 0 after wipe(). Counts only, never a byte of key material.
   */
  secretBufferState(): { buffers: number; nonZero: number } {
    const deriver = this.#deriver.secretBufferState();
    const recordKeyNonZero = this.#recordKey.some((byte) => byte !== 0) ? 1 : 0;
    const auditKeyNonZero = this.#auditKey.some((byte) => byte !== 0) ? 1 : 0;
    return { buffers: 2 + deriver.buffers, nonZero: recordKeyNonZero + auditKeyNonZero + deriver.nonZero };
  }

  /**
   * Wipes the record key and every wallet key, keeping only the audit key: what a seal does first,
   * so that its final checkpoint can still be signed (then wipe() takes the audit key too).
   */
  wipeAllButAuditKey(): void {
    if (this.#wiped) return;
    this.#wiped = true;
    this.#recordKey.fill(0);
    this.#deriver.wipe();
    this.#leaves.clear();
  }

  wipe(): void {
    this.wipeAllButAuditKey();
    if (this.#auditKeyWiped) return;
    this.#auditKeyWiped = true;
    this.#auditKey.fill(0);
  }

  toJSON(): string {
    return '[Barrier]';
  }
}
