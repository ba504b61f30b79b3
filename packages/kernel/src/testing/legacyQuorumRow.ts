import { Barrier } from '../barrier/Barrier.js';
import { CustosError } from '../errors.js';
import { parseQuorumSettings, QUORUM_SETTING, writeSetting } from '../kernel/quorum/settings.js';
import { decodeRootKeyring, wipeRootKeyring } from '../seal/keyring.js';
import { openSealedRoot, type UnsealCredential } from '../seal/unsealers.js';
import type { Store } from '../store/types.js';

/**
 * Tests only: writes the admin set's next row as a version before "every admin is told" did — an
 * admin without an e-mail address accepted — so that the upgrade path is tested on a real store: the
 * set keeps working, and the signer warns that those admins are told nothing (docs/quorum.md). The
 * root is opened with `credential` (as custos admin bootstrap does) and wiped when done.
 */
export async function writeLegacyQuorumRow(store: Store, credential: UnsealCredential, quorum: unknown, nowMs: number): Promise<void> {
  const meta = await store.getMeta();
  if (meta === undefined) throw new CustosError('not_initialized', 'the store holds no initialised signer');
  const root = await openSealedRoot(meta.sealedRoot, meta.signerId, credential);
  let barrier: Barrier | undefined;
  try {
    const keyring = decodeRootKeyring(root);
    try {
      barrier = new Barrier(keyring, meta.derivation, { maxCachedWallets: 1, maxCachedKeys: 1 });
    } finally {
      wipeRootKeyring(keyring);
    }
    const opened = barrier;
    await store.transact((tx) => writeSetting(tx, opened, QUORUM_SETTING, parseQuorumSettings(quorum), nowMs));
  } finally {
    root.fill(0);
    barrier?.wipe();
  }
}
