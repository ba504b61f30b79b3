import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Barrier } from '../../barrier/Barrier.js';
import { CustosError } from '../../errors.js';
import { decodeRootKeyring, wipeRootKeyring } from '../../seal/keyring.js';
import { sealedRootQuorum } from '../../seal/sealedRoot.js';
import { openSealedRoot, sealRootWithQuorumMark, type UnsealCredential } from '../../seal/unsealers.js';
import type { Store } from '../../store/types.js';
import { resolveCandidates } from './adminPasskeys.js';
import { bootstrapQuorum } from './proposals.js';
import { parseDeploymentSettings, parseQuorumSettings, quorumRequired, readQuorumSettings } from './settings.js';

/**
 * `custos admin bootstrap`: the first admin set of an existing signer, offline, with the current
 * unseal credentials (the admin set's row and the API keys' MACs are made under the barrier, so
 * the root is opened here, as `custos rekey` opens it, and wiped when done). Refused when an admin
 * set exists (quorum_required: changing it is a proposal). The sealed root is sealed again with the
 * quorum mark in its authenticated header (sealedRootQuorum; same unsealer, same credentials) and
 * swapped in the unit that writes the set: from then on, deleting the set's row cannot switch the
 * quorum off (record_unreadable), and a second bootstrap is refused whatever the database says.
 */
export async function bootstrapQuorumOffline({
  store,
  credential,
  quorum,
  deployment,
  now = Date.now,
  random = (n: number) => new Uint8Array(randomBytes(n)),
}: {
  store: Store;
  credential: UnsealCredential;
  quorum: unknown;
  /** The deployment settings the quorum starts from (a `deployment.settings` payload; default the built-in ones). */
  deployment?: unknown;
  now?: () => number;
  random?: (n: number) => Uint8Array;
}): Promise<{ threshold: number; admins: number; apiKeysMacd: number }> {
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
    if (sealedRootQuorum(meta.sealedRoot)) {
      // Marked already: a set exists (quorum_required), or its row was deleted (record_unreadable).
      await store.transact((tx) => readQuorumSettings(tx, opened, { sealed: true }));
      throw quorumRequired('changing the admin set (a quorum.set proposal)');
    }
    // Passkey candidates named by their `pk:` id (custos admin bootstrap --admin pk:…): their registered credential, MAC checked.
    const resolved = await resolveCandidates(store, opened, quorum);
    parseQuorumSettings(resolved, { requireEmail: true }); // checked before anything is sealed (every admin with an address)
    if (deployment !== undefined) parseDeploymentSettings(deployment);
    // The same root, marked; checked to open with the same credentials to the same root before it is written.
    const sealedRoot = await sealRootWithQuorumMark(meta.sealedRoot, meta.signerId, credential, random);
    const check = await openSealedRoot(sealedRoot, meta.signerId, credential);
    try {
      if (check.length !== root.length || !timingSafeEqual(check, root) || !sealedRootQuorum(sealedRoot))
        throw new CustosError('internal', 'the marked sealed root does not open to the same root; nothing was changed');
    } finally {
      check.fill(0);
    }
    return await store.transact(async (tx) => {
      const done = await bootstrapQuorum(tx, opened, resolved, now(), [], { deployment });
      if (!(await tx.swapSealedRoot(meta.sealedRoot, sealedRoot)))
        throw new CustosError('sealed_root_changed', 'the sealed root changed during the bootstrap (a rekey?); nothing was changed');
      return done;
    });
  } finally {
    root.fill(0);
    barrier?.wipe();
  }
}
