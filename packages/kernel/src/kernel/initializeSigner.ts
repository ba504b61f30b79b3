import { randomBytes, randomUUID } from 'node:crypto';
import { CustosError } from '../errors.js';
import { encodeRootKeyring } from '../seal/encodeRootKeyring.js';
import { sealRoot } from '../seal/sealRoot.js';
import type { ScryptParams } from '../seal/deriveKek.js';
import type { RootKeyring } from '../seal/types.js';
import { wipeRootKeyring } from '../seal/wipeRootKeyring.js';
import type { DerivationScheme, Store } from '../store/types.js';

export interface InitializeSignerOptions {
  store: Store;
  passphrase: Uint8Array;
  /** The master source: a BIP39/BIP32 seed, or a BIP32 master node (from an xprv). Copied, not kept. */
  master: RootKeyring['master'];
  derivation: DerivationScheme;
  random?: (n: number) => Uint8Array;
  now?: () => number;
  scrypt?: Omit<ScryptParams, 'salt'>;
}

/**
 * Creates a signer: a fresh barrier key, the master source, sealed under a KEK derived from the
 * passphrase, and a new signerId. Refuses an initialised store (never overwrites a seed).
 */
export async function initializeSigner(options: InitializeSignerOptions): Promise<{ signerId: string }> {
  const { store, passphrase, derivation, now = Date.now } = options;
  const random = options.random ?? ((n: number) => new Uint8Array(randomBytes(n)));
  if ((await store.getMeta()) !== undefined) {
    throw new CustosError('already_initialized', 'the store already holds an initialised signer');
  }
  const keyring: RootKeyring = {
    barrierKey: random(32),
    master:
      options.master.kind === 'seed'
        ? { kind: 'seed', seed: Uint8Array.from(options.master.seed) }
        : { kind: 'xprv', privateKey: Uint8Array.from(options.master.privateKey), chainCode: Uint8Array.from(options.master.chainCode) },
  };
  const root = encodeRootKeyring(keyring);
  wipeRootKeyring(keyring);
  try {
    const sealedRoot = await sealRoot(root, passphrase, options.scrypt === undefined ? { random } : { random, scrypt: options.scrypt });
    const signerId = randomUUID();
    await store.initMeta({ signerId, derivation, sealedRoot, createdAt: now() });
    return { signerId };
  } finally {
    root.fill(0);
  }
}
