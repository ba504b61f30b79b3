import { createKeyDeriver } from '../crypto/createKeyDeriver.js';
import { getPublicKey } from '../crypto/getPublicKey.js';
import { masterKeyFromSeed } from '../crypto/masterKeyFromSeed.js';
import { signDigest } from '../crypto/signDigest.js';
import type { HDNode } from '../crypto/types.js';
import { CustosError } from '../errors.js';
import { decryptRecord } from '../seal/decryptRecord.js';
import { encryptRecord } from '../seal/encryptRecord.js';
import type { RootKeyring } from '../seal/types.js';
import type { DerivationScheme } from '../store/types.js';

export interface BarrierSignature {
  r: Uint8Array;
  s: Uint8Array;
  recovery: 0 | 1;
  /** The signing key's 33-byte compressed public key. */
  publicKey: Uint8Array;
}

/**
 * The only holder of plaintext key material while unsealed: the record key that encrypts every
 * secret the store keeps, and the master node behind every wallet key. Private keys never leave
 * it: callers get signatures and public keys. `wipe()` zeroes everything (seal).
 */
export class Barrier {
  readonly #recordKey: Uint8Array;
  readonly #deriver: ReturnType<typeof createKeyDeriver>;
  #wiped = false;

  constructor(keyring: RootKeyring, scheme: DerivationScheme, { maxCachedWallets = 100_000 }: { maxCachedWallets?: number } = {}) {
    this.#recordKey = Uint8Array.from(keyring.barrierKey);
    const master: HDNode =
      keyring.master.kind === 'seed'
        ? masterKeyFromSeed(keyring.master.seed)
        : { privateKey: keyring.master.privateKey, chainCode: keyring.master.chainCode };
    this.#deriver = createKeyDeriver({ master, scheme, maxCachedWallets });
    if (keyring.master.kind === 'seed') {
      master.privateKey.fill(0);
      master.chainCode.fill(0);
    }
  }

  #assertOpen(): void {
    if (this.#wiped) throw new CustosError('sealed', 'the signer is sealed');
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

  publicKey(walletName: string, keyIndex: number): Uint8Array {
    this.#assertOpen();
    const privateKey = this.#deriver.derivePrivateKey(walletName, keyIndex);
    try {
      return getPublicKey(privateKey, true);
    } finally {
      privateKey.fill(0);
    }
  }

  sign(walletName: string, keyIndex: number, digest: Uint8Array): BarrierSignature {
    this.#assertOpen();
    const privateKey = this.#deriver.derivePrivateKey(walletName, keyIndex);
    try {
      const { r, s, recovery } = signDigest(privateKey, digest);
      return { r, s, recovery, publicKey: getPublicKey(privateKey, true) };
    } finally {
      privateKey.fill(0);
    }
  }

  get cachedWallets(): number {
    return this.#wiped ? 0 : this.#deriver.cachedWallets;
  }

  wipe(): void {
    if (this.#wiped) return;
    this.#wiped = true;
    this.#recordKey.fill(0);
    this.#deriver.wipe();
  }

  toJSON(): string {
    return '[Barrier]';
  }
}
