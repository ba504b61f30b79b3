import { randomBytes, timingSafeEqual } from 'node:crypto';
import { CustosError, isCustosError } from '../errors.js';
import { decodeRootKeyring } from '../seal/decodeRootKeyring.js';
import { describeUnsealer } from '../seal/describeUnsealer.js';
import { openSealedRoot } from '../seal/openSealedRoot.js';
import { parseShareFile } from '../seal/parseShareFile.js';
import { sealRootFor } from '../seal/sealRootFor.js';
import type { ShareFileOut, UnsealCredential, UnsealerSpec, UnsealerType } from '../seal/unsealerTypes.js';
import { wipeRootKeyring } from '../seal/wipeRootKeyring.js';
import type { Store } from '../store/types.js';

/**
 * The named steps of a rekey, in order. A crash at any of them leaves the old or the new envelope
 * valid, never neither: the store switches (one compare-and-swap) only after the new envelope has
 * been checked to open with the new credentials and the new share files are durably written.
 *   - `opened`: the current envelope was opened with the current credentials (nothing written);
 *   - `sealed`: the root is sealed under the new unsealer and checked to open (nothing written);
 *   - `shares-written`: the new share files are on disk (fsynced); the store still holds the old
 *     envelope, so the old credentials still work and the new shares are not yet valid;
 *   - `swapped`: the store holds the new envelope and the `sys.rekey` audit record (one commit).
 */
export const REKEY_STEPS = ['opened', 'sealed', 'shares-written', 'swapped'] as const;
export type RekeyStep = (typeof REKEY_STEPS)[number];

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
}

/**
 * Re-wraps the root under a new KEK — a new passphrase, a new share set, passphrase → Shamir or
 * back — without changing the root: every address stays. The old credentials stop working at the
 * switch. See REKEY_STEPS for the order and why a crash cannot lose the root.
 */
export async function rekeySigner(options: RekeySignerOptions): Promise<{ signerId: string; from: UnsealerType; to: UnsealerType }> {
  const { store, current, next, onStep, now = Date.now } = options;
  const random = options.random ?? ((n: number) => new Uint8Array(randomBytes(n)));
  if (next.type === 'shamir' && options.persistShares === undefined) throw new CustosError('invalid_input', 'persistShares: required for a Shamir rekey');
  const meta = await store.getMeta();
  if (meta === undefined) throw new CustosError('not_initialized', 'the store holds no initialised signer');
  const from = describeUnsealer(meta.sealedRoot).type;
  const root = await openSealedRoot(meta.sealedRoot, meta.signerId, current);
  try {
    // The root must be a valid keyring before it is sealed again (a check, wiped at once).
    wipeRootKeyring(decodeRootKeyring(root));
    await onStep?.('opened');
    const { sealedRoot, shareFiles } = await sealRootFor(root, next, { signerId: meta.signerId, random });
    // Check the new envelope opens with the new credentials and gives the same root, before
    // anything is written: a rekey never switches to an envelope nobody can open.
    await assertOpensToSameRoot(sealedRoot, meta.signerId, next, shareFiles, root);
    await onStep?.('sealed');
    if (shareFiles.length > 0) {
      await options.persistShares?.(shareFiles, meta.signerId);
      await onStep?.('shares-written');
    }
    await store.transact(async (tx) => {
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
        detail: { from, to: next.type, ...(next.type === 'shamir' ? { threshold: next.threshold, shares: next.shares } : {}) },
      });
    });
    await onStep?.('swapped');
    return { signerId: meta.signerId, from, to: next.type };
  } finally {
    root.fill(0);
  }
}

async function assertOpensToSameRoot(sealedRoot: unknown, signerId: string, next: UnsealerSpec, shareFiles: ShareFileOut[], root: Uint8Array): Promise<void> {
  let credential: UnsealCredential;
  if (next.type === 'passphrase') credential = { type: 'passphrase', passphrase: next.passphrase };
  else if (next.type === 'shamir') credential = { type: 'shamir', shares: shareFiles.slice(0, next.threshold).map((f) => parseShareFile(f.text)) };
  else throw new CustosError('unsealer_unavailable', 'this kernel cannot seal under a PKCS#11 unsealer yet');
  let reopened: Uint8Array | undefined;
  try {
    reopened = await openSealedRoot(sealedRoot, signerId, credential);
    if (reopened.length !== root.length || !timingSafeEqual(reopened, root)) throw new Error('the new envelope opens to another root');
  } catch (error) {
    throw new CustosError('internal', 'the new sealed root does not open with the new credentials; nothing was changed', {
      cause: isCustosError(error) ? error : undefined,
    });
  } finally {
    reopened?.fill(0);
    if (credential.type === 'shamir') for (const s of credential.shares) s.share.fill(0);
  }
}
