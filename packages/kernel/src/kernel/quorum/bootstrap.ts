import { Barrier } from '../../barrier/Barrier.js';
import { CustosError } from '../../errors.js';
import { decodeRootKeyring, wipeRootKeyring } from '../../seal/keyring.js';
import { openSealedRoot, type UnsealCredential } from '../../seal/unsealers.js';
import type { Store } from '../../store/types.js';
import { bootstrapQuorum } from './proposals.js';

/**
 * `custos admin bootstrap`: the first admin set of an existing signer, offline, with the current
 * unseal credentials (the admin set's row and the API keys' MACs are made under the barrier, so
 * the root is opened here, as `custos rekey` opens it, and wiped when done). Refused when an admin
 * set exists (quorum_required: changing it is a proposal).
 */
export async function bootstrapQuorumOffline({
  store,
  credential,
  quorum,
  now = Date.now,
}: {
  store: Store;
  credential: UnsealCredential;
  quorum: unknown;
  now?: () => number;
}): Promise<{ threshold: number; admins: number; apiKeysMacd: number }> {
  const meta = await store.getMeta();
  if (meta === undefined) throw new CustosError('not_initialized', 'the store holds no initialised signer');
  const root = await openSealedRoot(meta.sealedRoot, meta.signerId, credential);
  let barrier: Barrier;
  try {
    const keyring = decodeRootKeyring(root);
    try {
      barrier = new Barrier(keyring, meta.derivation, { maxCachedWallets: 1, maxCachedKeys: 1 });
    } finally {
      wipeRootKeyring(keyring);
    }
  } finally {
    root.fill(0);
  }
  try {
    return await store.transact((tx) => bootstrapQuorum(tx, barrier, quorum, now()));
  } finally {
    barrier.wipe();
  }
}
