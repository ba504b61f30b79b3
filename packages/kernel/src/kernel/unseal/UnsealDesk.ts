import { Barrier } from '../../barrier/Barrier.js';
import { CustosError } from '../../errors.js';
import { decodeRootKeyring, wipeRootKeyring } from '../../seal/keyring.js';
import { assertShareBelongs } from '../../seal/shamir.js';
import { parseShareFile } from '../../seal/shareFile.js';
import { openSealedRoot, type UnsealCredential, type UnsealShare } from '../../seal/unsealers.js';
import type { SignerMeta } from '../../store/types.js';
import { asCustosError } from '../context.js';
import type { ShareProgress } from '../types.js';
import { assertUnsealClient, LOCAL_UNSEAL_CLIENT, type UnsealClient } from './unsealClient.js';
import { UnsealQueue } from './UnsealQueue.js';
import { UnsealThrottles } from './UnsealThrottles.js';

/** What the unseal desk needs of the Kernel, which keeps the barrier and the seal epoch. */
export interface UnsealDeps {
  now(): number;
  /** The signer's meta read again from the store (a rekey may have replaced the sealed root). */
  refreshMeta(): Promise<SignerMeta>;
  /** Whether a barrier is installed. */
  unsealed(): boolean;
  /** Counts seals: an unseal asked for before a seal must not install its barrier after it. */
  sealEpoch(): number;
  /**
   * Installs an opened barrier: its `sys.unseal` record committed first, refused (and the barrier
   * wiped) when another was installed or a seal came since `epoch`.
   */
  install(barrier: Barrier, epoch: number, unsealer: UnsealCredential['type']): Promise<void>;
  /** Appends an operator record (`sys.unseal` denied, `sys.unseal.reset`). */
  auditSys(action: string, decision: 'allowed' | 'denied', reason: string | null, detail: Record<string, unknown>): Promise<void>;
  maxCachedWallets: number;
  /** How long submitted Shamir shares wait for the rest. */
  shareTtlMs: number;
}

/**
 * The unseal desk: how a sealed kernel is opened. Every attempt (passphrase, PIN, share
 * submission, reset) runs after the previous one ended, so that a combine never interleaves with a
 * submission, and parallel requests cannot slip past the back-off: each attempt sees the back-off
 * its predecessor's failure set. Bounded per network client, operators first (UnsealQueue). A
 * failed attempt's back-off is per client (UnsealThrottles, in memory: this process's unseal
 * endpoint is what it guards). Shamir shares are collected here one at a time (never more than
 * threshold − 1 kept, wiped when spent, discarded, expired or sealed).
 */
export class UnsealDesk {
  readonly #deps: UnsealDeps;
  readonly #queue = new UnsealQueue();
  readonly #throttles = new UnsealThrottles();
  /** Shamir shares submitted one at a time, and their set. */
  #pendingShares: UnsealShare[] = [];
  #pendingShareSetId: string | undefined;
  /** When the first pending share was submitted (ms, the kernel's clock). */
  #pendingSince = 0;

  constructor(deps: UnsealDeps) {
    this.#deps = deps;
  }

  /** Shares submitted so far (after dropping an expired set): what status shows while sealed. */
  submittedShares(): number {
    this.#expireShares();
    return this.#pendingShares.length;
  }

  /**
   * Opens the sealed root with the credential of its unsealer (passphrase, all M Shamir shares at
   * once, or PKCS#11). The sealed root is read from the store again first, so that a rekey done by
   * another process (`custos rekey`) is seen. `client`: who asks (the unit of the back-off).
   */
  unsealWith(credential: UnsealCredential, client: UnsealClient = LOCAL_UNSEAL_CLIENT): Promise<void> {
    assertUnsealClient(client);
    const epoch = this.#deps.sealEpoch();
    return this.#queue.run(client, async () => {
      this.#assertSealed();
      const meta = await this.#deps.refreshMeta();
      await this.#openAndInstall(meta, credential, epoch, client);
    });
  }

  /**
   * Shamir: takes one operator's share file (text, untrusted) and keeps it until `threshold` shares
   * are in; then recombines the KEK and unseals. A malformed share or bad checksum is
   * `share_invalid`, a share of another signer or set `share_foreign`, the same share twice
   * `share_duplicate` — each refused alone, the shares already in are kept. A combine that fails
   * (a corrupted share recombines into a wrong KEK, caught by the AEAD) is `unseal_failed` and
   * discards every pending share: the operators start again.
   */
  submitShare(text: unknown, client: UnsealClient = LOCAL_UNSEAL_CLIENT): Promise<ShareProgress> {
    assertUnsealClient(client);
    const epoch = this.#deps.sealEpoch();
    return this.#queue.run(client, () => this.#submitShare(text, epoch, client));
  }

  /**
   * Discards the Shamir shares submitted so far (wiped), on the proof of one share of the current
   * set (text, untrusted): checked as a submitted share is — signature included, so only an
   * operator can reset (a set made before shares were signed: checksum, signer and set id only) —
   * then wiped, never kept. The reset is audited (`sys.unseal.reset`: how many were discarded, the
   * index of the share shown) before the shares go; a refused reset writes no record, so that
   * unauthenticated noise cannot grow the log. Returns how many were discarded.
   */
  reset(text: unknown, client: UnsealClient = LOCAL_UNSEAL_CLIENT): Promise<{ discarded: number }> {
    assertUnsealClient(client);
    return this.#queue.run(client, async () => {
      this.#assertSealed();
      const share = parseShareFile(text);
      try {
        const meta = await this.#deps.refreshMeta();
        assertShareBelongs(meta.sealedRoot, meta.signerId, share);
      } finally {
        share.share.fill(0);
      }
      this.#expireShares();
      const discarded = this.#pendingShares.length;
      await this.#deps.auditSys('sys.unseal.reset', 'allowed', null, { discarded, shareIndex: share.index });
      this.discardShares();
      return { discarded };
    });
  }

  /** Wipes and forgets the pending shares (a seal, a reset, a spent combine, an expired or replaced set). */
  discardShares(): void {
    for (const p of this.#pendingShares) p.share.fill(0);
    this.#pendingShares = [];
    this.#pendingShareSetId = undefined;
  }

  #assertSealed(): void {
    if (this.#deps.unsealed()) throw new CustosError('already_unsealed', 'the signer is already unsealed');
  }

  async #submitShare(text: unknown, epoch: number, client: UnsealClient): Promise<ShareProgress> {
    this.#assertSealed();
    // While a failed combine's back-off runs, a share is refused before it is kept, so that the
    // shares already in are not spent by a combine that #openAndInstall would refuse.
    this.#throttles.assertNotThrottled(client.key, this.#deps.now());
    const share = parseShareFile(text);
    try {
      const meta = await this.#deps.refreshMeta();
      assertShareBelongs(meta.sealedRoot, meta.signerId, share);
      // Shares left too long are dropped; a rekey that replaced the share set since the first
      // submission makes what was pending useless.
      this.#expireShares();
      if (this.#pendingShareSetId !== share.shareSetId) this.discardShares();
      const x = share.share[share.share.length - 1];
      if (this.#pendingShares.some((p) => p.index === share.index || p.share[p.share.length - 1] === x))
        throw new CustosError('share_duplicate', `share ${share.index} was already submitted`, { details: { field: 'share.index' } });
      this.#pendingShareSetId = share.shareSetId;
      if (this.#pendingShares.length === 0) this.#pendingSince = this.#deps.now();
      this.#pendingShares.push({ ...share, share: Uint8Array.from(share.share) });
      const progress = { submitted: this.#pendingShares.length, threshold: share.threshold };
      if (this.#pendingShares.length < share.threshold) return { sealed: true, progress };
      const shares = this.#pendingShares;
      try {
        await this.#openAndInstall(meta, { type: 'shamir', shares }, epoch, client);
      } finally {
        // Unsealed or not, the shares are spent: a failed combine starts over.
        this.discardShares();
      }
      return { sealed: false, progress };
    } finally {
      share.share.fill(0);
    }
  }

  /**
   * `epoch`: the seal epoch when the unseal was asked for; a seal (or a shutdown) since then wins.
   * The one place a credential is tried: refused unheard while the back-off of an earlier failure
   * runs (not audited: a refused attempt costs nothing and must not flood the log); a failure
   * (`unseal_failed`: wrong passphrase, PIN or combine) is audited and starts the next back-off.
   * Both are the client's own: another client's failures never delay it. A PKCS#11 PIN from the
   * network is not tried when the token says a wrong one would lock it (`hsm_pin_protect`).
   */
  async #openAndInstall(meta: SignerMeta, credential: UnsealCredential, epoch: number, client: UnsealClient): Promise<void> {
    const deps = this.#deps;
    this.#throttles.assertNotThrottled(client.key, deps.now());
    let root: Uint8Array;
    try {
      root = await openSealedRoot(meta.sealedRoot, meta.signerId, credential, { protectPin: !client.operator });
    } catch (error) {
      const e = asCustosError(error);
      if (e.code === 'unseal_failed') {
        this.#throttles.recordFailure(client.key, deps.now());
        await deps.auditSys('sys.unseal', 'denied', e.code, { unsealer: credential.type }).catch(() => undefined);
      }
      throw e;
    }
    this.#throttles.recordSuccess(client.key);
    let keyring: ReturnType<typeof decodeRootKeyring>;
    try {
      keyring = decodeRootKeyring(root);
    } finally {
      root.fill(0);
    }
    let barrier: Barrier;
    try {
      barrier = new Barrier(keyring, meta.derivation, { maxCachedWallets: deps.maxCachedWallets });
    } finally {
      wipeRootKeyring(keyring);
    }
    await deps.install(barrier, epoch, credential.type);
    this.discardShares();
  }

  #expireShares(): void {
    if (this.#pendingShares.length > 0 && this.#deps.now() - this.#pendingSince > this.#deps.shareTtlMs) this.discardShares();
  }
}
