import { randomBytes } from 'node:crypto';
import { CustosError, isCustosError } from '../errors.js';
import { decodeRootKeyring, wipeRootKeyring } from '../seal/keyring.js';
import { destroyKek } from '../seal/pkcs11/kek.js';
import { openPkcs11Token } from '../seal/pkcs11/token.js';
import { describeUnsealer, sealedRootQuorum } from '../seal/sealedRoot.js';
import { openSealedRoot, sealRootFor, type ShareFileOut, type UnsealCredential, type UnsealerSpec, type UnsealerType } from '../seal/unsealers.js';
import type { Store } from '../store/types.js';
import { assertOpensToSameRoot } from './assertOpensToSameRoot.js';
import { Barrier } from '../barrier/Barrier.js';
import type { UnsealerChangePayload } from './quorum/proposalKinds.js';
import { consumeUnsealerChange } from './quorum/proposals.js';
import { readQuorumSettings } from './quorum/settings.js';

/**
 * The named steps of a rekey, in order. A crash at any of them leaves the old or the new envelope
 * valid, never neither: the store switches (one compare-and-swap) only after the new envelope has
 * been checked to open with the new credentials and the new share files are durably written; an
 * old HSM key is destroyed only after that switch committed.
 *   - `opened`: the current envelope was opened with the current credentials (nothing written);
 *   - `key-generated`: PKCS#11 (new unsealer): the new KEK exists on the token; no envelope names it
 *     yet (a crash here leaves it an orphan: harmless, see docs/operations.md);
 *   - `sealed`: the root is sealed under the new unsealer and checked to open (nothing written);
 *   - `shares-written`: Shamir (new unsealer): the new share files are on disk (fsynced); the store
 *     still holds the old envelope, so the old credentials still work and the new shares are not yet valid;
 *   - `swapped`: the store holds the new envelope and the `sys.rekey` audit record (one commit);
 *   - `old-key-destroyed`: PKCS#11 (current unsealer): the old KEK is destroyed on its token, so
 *     that the old envelope (in backups) no longer opens. A crash before it leaves the old key as
 *     an orphan the new envelope does not name.
 * Steps that do not apply to a rekey (a passphrase rekey generates no key) are not reached.
 */
export const REKEY_STEPS = ['opened', 'key-generated', 'sealed', 'shares-written', 'swapped', 'old-key-destroyed'] as const;
export type RekeyStep = (typeof REKEY_STEPS)[number];

/** The steps a rekey from `from` to `to` goes through, in order (tests, help text). */
export function rekeyStepsFor(from: UnsealerType, to: UnsealerType): RekeyStep[] {
  return REKEY_STEPS.filter(
    (step) =>
      (step !== 'key-generated' || to === 'pkcs11') && (step !== 'shares-written' || to === 'shamir') && (step !== 'old-key-destroyed' || from === 'pkcs11'),
  );
}

/** What a rekey did. `oldKey`: from PKCS#11, the rotated-away KEK and whether it is gone (false: an orphan, with the reason). */
export interface RekeyResult {
  signerId: string;
  from: UnsealerType;
  to: UnsealerType;
  oldKey?: { tokenLabel: string; keyLabel: string; keyId: string; destroyed: boolean; reason?: string };
}

export interface RekeySignerOptions {
  store: Store;
  /** The credentials of the current unsealer. */
  current: UnsealCredential;
  /** The new unsealer. */
  next: UnsealerSpec;
  /** Shamir: writes the new share files durably (before the switch). Required when next is Shamir. */
  persistShares?: (files: ShareFileOut[], signerId: string) => Promise<void>;
  /** Called at each named step (the CLI's test-only fault injection hooks in here). */
  onStep?: (step: RekeyStep) => void | Promise<void>;
  random?: (n: number) => Uint8Array;
  now?: () => number;
  /**
   * Under an admin quorum (issue 13): the id of the applied `unsealer.change` proposal that allows
   * this rekey (its payload must name the new unsealer); consumed in the unit of the switch.
   */
  proposalId?: string;
}

/**
 * Re-wraps the root under a new KEK — a new passphrase, a new share set, a new HSM key, from any
 * unsealer to any other — without changing the root: every address stays. The old credentials stop working at the
 * switch. See REKEY_STEPS for the order and why a crash cannot lose the root.
 */
export async function rekeySigner(options: RekeySignerOptions): Promise<RekeyResult> {
  const { store, current, next, onStep, now = Date.now } = options;
  const random = options.random ?? ((n: number) => new Uint8Array(randomBytes(n)));
  if (next.type === 'shamir' && options.persistShares === undefined) throw new CustosError('invalid_input', 'persistShares: required for a Shamir rekey');
  const meta = await store.getMeta();
  if (meta === undefined) throw new CustosError('not_initialized', 'the store holds no initialised signer');
  const fromUnsealer = describeUnsealer(meta.sealedRoot);
  const from = fromUnsealer.type;
  const root = await openSealedRoot(meta.sealedRoot, meta.signerId, current);
  let barrier: Barrier | undefined;
  try {
    // The root must be a valid keyring before it is sealed again (a check, wiped at once); its
    // barrier checks the quorum's proposal (issue 13), before anything is generated or written.
    const keyring = decodeRootKeyring(root);
    try {
      barrier = new Barrier(keyring, meta.derivation, { maxCachedWallets: 1, maxCachedKeys: 1 });
    } finally {
      wipeRootKeyring(keyring);
    }
    const allowed = barrier;
    // The quorum mark of the opened envelope (authenticated by the open) is carried over, and a
    // signer whose admin set predates the mark gets it now: a rekey never drops it.
    const sealed = sealedRootQuorum(meta.sealedRoot);
    const quorum = await store.transact(async (tx) => {
      await consumeUnsealerChange(tx, allowed, options.proposalId, unsealerChangeOf(next), now(), { dryRun: true, sealed });
      return sealed || (await readQuorumSettings(tx, allowed)) !== undefined;
    });
    await onStep?.('opened');
    const { sealedRoot, shareFiles } = await sealRootFor(root, next, {
      signerId: meta.signerId,
      random,
      quorum,
      ...(onStep === undefined ? {} : { onStep }),
    });
    // Check the new envelope opens with the new credentials and gives the same root, before
    // anything is written: a rekey never switches to an envelope nobody can open.
    try {
      await assertOpensToSameRoot(sealedRoot, meta.signerId, next, shareFiles, root);
    } catch (error) {
      discardNewKek(sealedRoot, next);
      throw error;
    }
    await onStep?.('sealed');
    if (shareFiles.length > 0) {
      await options.persistShares?.(shareFiles, meta.signerId);
      await onStep?.('shares-written');
    }
    try {
      await store.transact(async (tx) => {
        const proposal = await consumeUnsealerChange(tx, barrier as Barrier, options.proposalId, unsealerChangeOf(next), now(), { sealed });
        const swapped = await tx.swapSealedRoot(meta.sealedRoot, sealedRoot);
        if (!swapped) throw new CustosError('sealed_root_changed', 'the sealed root changed during the rekey (another rekey?); nothing was changed');
        await tx.appendAudit({
          ts: now(),
          appId: null,
          walletName: null,
          action: 'sys.rekey',
          opHash: null,
          decision: 'allowed',
          reason: null,
          detail: { from, to: next.type, ...unsealerDetail(sealedRoot), ...(proposal === undefined ? {} : { proposalId: proposal }) },
        });
      });
    } catch (error) {
      // Certainly not switched (unlike a failed commit, whose outcome may be unknown): the new key can go.
      if (isCustosError(error) && error.code !== 'store_unavailable' && error.code !== 'audit_unavailable') discardNewKek(sealedRoot, next);
      throw error;
    }
    await onStep?.('swapped');
    const result: RekeyResult = { signerId: meta.signerId, from, to: next.type };
    // The old HSM key goes only now, after the switch committed: before it, the old envelope was the valid one.
    if (fromUnsealer.type === 'pkcs11' && current.type === 'pkcs11') {
      const { tokenLabel, keyLabel, keyId } = fromUnsealer;
      result.oldKey = { tokenLabel, keyLabel, keyId, ...destroyKekOn(current.modulePath, current.pin, tokenLabel, keyId) };
      if (result.oldKey.destroyed) await onStep?.('old-key-destroyed');
    }
    return result;
  } finally {
    root.fill(0);
    barrier?.wipe();
  }
}

/** The `unsealer.change` payload that allows a rekey to `next` (quorum/proposalKinds.ts). */
function unsealerChangeOf(next: UnsealerSpec): UnsealerChangePayload {
  if (next.type === 'shamir') return { unsealer: 'shamir', shares: next.shares, threshold: next.threshold };
  if (next.type === 'pkcs11') return { unsealer: 'pkcs11', tokenLabel: next.tokenLabel, keyLabel: next.keyLabel };
  return { unsealer: 'passphrase' };
}

/** The new unsealer's public parameters for the audit record (never a secret). */
function unsealerDetail(sealedRoot: unknown): Record<string, unknown> {
  const info = describeUnsealer(sealedRoot);
  if (info.type === 'shamir') return { threshold: info.threshold, shares: info.shares };
  if (info.type === 'pkcs11') return { tokenLabel: info.tokenLabel, keyLabel: info.keyLabel, keyId: info.keyId };
  return {};
}

/**
 * A new HSM key that no stored envelope will name (the rekey stopped before the switch, knowing it
 * did not happen): destroyed, best effort — a key left behind is an orphan (docs/operations.md).
 */
function discardNewKek(sealedRoot: unknown, next: UnsealerSpec): void {
  if (next.type !== 'pkcs11') return;
  const info = describeUnsealer(sealedRoot);
  if (info.type === 'pkcs11') destroyKekOn(next.modulePath, next.pin, info.tokenLabel, info.keyId);
}

/**
 * Destroys a KEK no envelope in the store names any more (the rotated-away one, after the switch).
 * The rekey's outcome is already decided when this runs, so a failure here (token unreachable, key
 * already gone) changes nothing: it is reported, and the key stays as an orphan for the operator
 * to remove (docs/operations.md).
 */
function destroyKekOn(modulePath: string, pin: Uint8Array, tokenLabel: string, keyId: string): { destroyed: boolean; reason?: string } {
  try {
    const token = openPkcs11Token({ modulePath, tokenLabel, pin });
    try {
      destroyKek(token, keyId);
    } finally {
      token.close();
    }
    return { destroyed: true };
  } catch (error) {
    return { destroyed: false, reason: isCustosError(error) ? `${error.code}: ${error.message}` : 'an unexpected error' };
  }
}
