import type { RootKeyring } from './types.js';

/** Zeroes every buffer of a keyring in place (on seal, and after sealing a freshly made one). */
export function wipeRootKeyring(keyring: RootKeyring): void {
  keyring.barrierKey.fill(0);
  const { master } = keyring;
  if (master.kind === 'seed') {
    master.seed.fill(0);
  } else {
    master.privateKey.fill(0);
    master.chainCode.fill(0);
  }
}
