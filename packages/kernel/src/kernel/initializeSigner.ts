import { randomBytes, randomUUID } from 'node:crypto';
import { deriveAuditPublicKey } from '../audit/deriveAuditSigningKey.js';
import { CustosError, invalidInput } from '../errors.js';
import { encodeRootKeyring, type RootKeyring, wipeRootKeyring } from '../seal/keyring.js';
import type { ScryptParams } from '../seal/passphrase.js';
import { sealRootFor, type ShareFileOut, type UnsealerSpec } from '../seal/unsealers.js';
import type { ApiKeyRecord, DerivationScheme, Store } from '../store/types.js';
import { toHex } from '../util/hex.js';
import { assertOpensToSameRoot } from './assertOpensToSameRoot.js';
import { macRecordsAtInitEntry } from './walletRecord.js';
import { Barrier } from '../barrier/Barrier.js';
import { bootstrapQuorum } from './quorum/proposals.js';
import { parseDeploymentSettings, parseQuorumSettings } from './quorum/settings.js';

export interface InitializeSignerOptions {
  store: Store;
  /** The passphrase unsealer (shorthand for `unsealer: { type: 'passphrase', passphrase, scrypt }`). */
  passphrase?: Uint8Array;
  /** The unsealer the root is sealed under; give this or `passphrase`. */
  unsealer?: UnsealerSpec;
  /**
   * Shamir: writes the operators' share files durably. Called before the signer is stored, so that a
   * crash never leaves a stored signer whose shares were not written. Required for Shamir.
   */
  persistShares?: (files: ShareFileOut[], signerId: string) => Promise<void>;
  /** The master source: a BIP39/BIP32 seed, or a BIP32 master node (from an xprv). Copied, not kept. */
  master: RootKeyring['master'];
  derivation: DerivationScheme;
  random?: (n: number) => Uint8Array;
  now?: () => number;
  scrypt?: Omit<ScryptParams, 'salt'>;
  /** The first admin set and M (issue 13: quorum), fixed at init: `{ threshold, admins }` (quorum/settings.ts). */
  quorum?: unknown;
  /** API keys made with the admin set (the operator's `admin` key: under a quorum no key can be made directly), MAC'd. */
  quorumApiKeys?: ApiKeyRecord[];
  /** With `quorum`: the deployment settings the quorum starts from (a `deployment.settings` payload; default the built-in ones). */
  deployment?: unknown;
}

/**
 * Creates a signer: a fresh barrier key, the master source, sealed under the chosen unsealer
 * (passphrase → scrypt KEK, or Shamir → random KEK split M-of-N), and a new signerId. Refuses an
 * initialised store (never overwrites a seed). Returns the audit public key (hex) too: the anchor
 * that `custos audit verify --audit-public-key` checks the log's checkpoints against.
 */
export async function initializeSigner(options: InitializeSignerOptions): Promise<{ signerId: string; auditPublicKey: string }> {
  const { store, derivation, now = Date.now } = options;
  const random = options.random ?? ((n: number) => new Uint8Array(randomBytes(n)));
  const unsealer: UnsealerSpec | undefined =
    options.unsealer ??
    (options.passphrase === undefined
      ? undefined
      : { type: 'passphrase', passphrase: options.passphrase, ...(options.scrypt === undefined ? {} : { scrypt: options.scrypt }) });
  if (unsealer === undefined) throw invalidInput('unsealer', 'a passphrase or an unsealer');
  if (unsealer.type === 'shamir' && options.persistShares === undefined) throw invalidInput('persistShares', 'a function that writes the share files');
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
  const auditPublicKey = toHex(deriveAuditPublicKey(keyring.barrierKey));
  // The admin set is checked before anything is written; its row is MAC'd under this barrier.
  if (options.quorum !== undefined) parseQuorumSettings(options.quorum, { requireEmail: true });
  if (options.deployment !== undefined) parseDeploymentSettings(options.deployment);
  const barrier = options.quorum === undefined ? undefined : new Barrier(keyring, derivation, { maxCachedWallets: 1, maxCachedKeys: 1 });
  wipeRootKeyring(keyring);
  try {
    const signerId = randomUUID();
    // With an admin set, the root carries the quorum mark (sealedRootQuorum) from the start.
    const { sealedRoot, shareFiles } = await sealRootFor(root, unsealer, { signerId, random, quorum: options.quorum !== undefined });
    // Shamir: the new shares are combined once (as rekey does) before any is handed out, so that
    // init never hands the operators a set that does not open the signer.
    if (unsealer.type === 'shamir') await assertOpensToSameRoot(sealedRoot, signerId, unsealer, shareFiles, root);
    if (shareFiles.length > 0) await options.persistShares?.(shareFiles, signerId);
    await store.initMeta({ signerId, derivation, sealedRoot, createdAt: now() });
    // Its rows are MAC'd from the start: this record refuses the upgrade's MAC pass on this signer.
    await store.transact(async (tx) => {
      // The first record of the chain is init itself: who made this signer, how it is sealed, and the
      // audit key its checkpoints are signed with (nothing secret: the key is public).
      await tx.appendAudit({
        ts: now(),
        appId: null,
        walletName: null,
        action: 'sys.init',
        opHash: null,
        decision: 'allowed',
        reason: null,
        detail: { signerId, derivation, unsealer: unsealer.type, auditPublicKey, quorum: options.quorum !== undefined },
      });
      await tx.appendAudit(macRecordsAtInitEntry(now()));
      if (barrier !== undefined) await bootstrapQuorum(tx, barrier, options.quorum, now(), options.quorumApiKeys, { deployment: options.deployment });
    });
    return { signerId, auditPublicKey };
  } finally {
    root.fill(0);
    barrier?.wipe();
  }
}
