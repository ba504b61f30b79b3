import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { deriveAuditSigningKey } from '../audit/deriveAuditSigningKey.js';
import { createKeyDeriver, DEFAULT_MAX_CACHED_WALLETS } from '../crypto/createKeyDeriver.js';
import { addressFromPoint } from '../crypto/addressFromPoint.js';
import { getPublicKey } from '../crypto/getPublicKey.js';
import { masterKeyFromSeed } from '../crypto/masterKeyFromSeed.js';
import { signDigest } from '../crypto/signDigest.js';
import type { HDNode } from '../crypto/types.js';
import { CustosError } from '../errors.js';
import type { RootKeyring } from '../seal/keyring.js';
import { decryptRecord, encryptRecord } from '../seal/recordEnvelope.js';
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
 * The domain label of the record MAC key: HKDF-SHA256 (RFC 5869) of the root keyring's barrier key,
 * no salt, this info string, 32 bytes. A key of its own, so that a MAC never shares a key with the
 * AES-GCM that encrypts records; it exists only inside the barrier and is wiped with it.
 */
export const RECORD_MAC_KEY_INFO = 'custos.barrier.record-mac.v1';

/**
 * The only holder of plaintext key material while unsealed: the record key that encrypts every
 * secret the store keeps, the record MAC key that authenticates the rows the kernel decides on
 * (wallets, factor states), and the master node behind every wallet key. Private keys never leave
 * it: callers get signatures, MACs and public keys. `wipe()` zeroes everything (seal).
 */
export class Barrier {
  readonly #recordKey: Uint8Array;
  readonly #macKey: Uint8Array;
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
    { maxCachedWallets = DEFAULT_MAX_CACHED_WALLETS, maxCachedKeys = DEFAULT_MAX_CACHED_WALLETS }: { maxCachedWallets?: number; maxCachedKeys?: number } = {},
  ) {
    this.#maxCachedKeys = maxCachedKeys;
    this.#recordKey = Uint8Array.from(keyring.barrierKey);
    this.#macKey = new Uint8Array(hkdfSync('sha256', keyring.barrierKey, new Uint8Array(0), RECORD_MAC_KEY_INFO, 32));
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

  /**
   * HMAC-SHA256 under the record MAC key of `label` ‖ 0x00 ‖ `bytes`, hex. The label separates the
   * kinds of record (a wallet's MAC can never pass for a factor's).
   */
  macRecord(label: string, bytes: Uint8Array): string {
    this.#assertOpen();
    return this.#mac(label, bytes).toString('hex');
  }

  /** Whether `mac` (hex) is the MAC of this record; compared in constant time. A malformed MAC is false. */
  verifyRecordMac(label: string, bytes: Uint8Array, mac: string): boolean {
    this.#assertOpen();
    if (!/^[0-9a-f]{64}$/.test(mac)) return false;
    return timingSafeEqual(this.#mac(label, bytes), Buffer.from(mac, 'hex'));
  }

  #mac(label: string, bytes: Uint8Array): Buffer {
    if (label.includes('\0')) throw new TypeError('macRecord: the label must not contain NUL');
    return createHmac('sha256', this.#macKey)
      .update(label)
      .update(new Uint8Array([0]))
      .update(bytes)
      .digest();
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
   * How many secret buffers the barrier holds (record key, MAC key, master node, cached wallet nodes) and how
   * many still hold a non-zero byte: 0 after wipe(). Counts only, never a byte of key material.
   */
  secretBufferState(): { buffers: number; nonZero: number } {
    const deriver = this.#deriver.secretBufferState();
    const own = [this.#recordKey, this.#macKey, this.#auditKey].filter((key) => key.some((byte) => byte !== 0)).length;
    return { buffers: 3 + deriver.buffers, nonZero: own + deriver.nonZero };
  }

  /**
   * Wipes the record key and every wallet key, keeping only the audit key: what a seal does first,
   * so that its final checkpoint can still be signed (then wipe() takes the audit key too).
   */
  wipeAllButAuditKey(): void {
    if (this.#wiped) return;
    this.#wiped = true;
    this.#recordKey.fill(0);
    this.#macKey.fill(0);
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
