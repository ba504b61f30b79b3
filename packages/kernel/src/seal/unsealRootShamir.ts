import { combine } from 'shamir-secret-sharing';
import { CustosError } from '../errors.js';
import { describeUnsealer } from './describeUnsealer.js';
import { readSealedRootV2 } from './readSealedRootV2.js';
import { verifyShareSignature } from './shareSignature.js';
import { unsealRootWithKek } from './unsealRootWithKek.js';
import type { UnsealShare } from './unsealerTypes.js';

/**
 * Checks one share against the sealed root's Shamir parameters (and the signer): a share of another
 * signer or another share set is `share_foreign`; for a signed set (`unsealer.shareKey`), a share
 * whose signature is missing or does not verify — forged, or its index, threshold or bytes edited —
 * is `share_forged`; all named before any combining. A set made before shares were signed has no
 * key: its version-1 shares pass on their checksum and set id alone (the AEAD tag still catches a
 * wrong share at the combine), and a signed share offered for it is refused. Returns nothing; throws.
 */
export function assertShareBelongs(envelope: unknown, signerId: string, share: UnsealShare): void {
  const unsealer = describeUnsealer(envelope);
  if (unsealer.type !== 'shamir')
    throw new CustosError('unsealer_mismatch', `this signer is sealed with ${unsealer.type}, not Shamir shares`, { details: { field: 'share' } });
  if (share.signerId !== signerId) throw new CustosError('share_foreign', 'the share belongs to another signer', { details: { field: 'share.signerId' } });
  if (share.shareSetId !== unsealer.shareSetId)
    throw new CustosError('share_foreign', 'the share belongs to another share set (an earlier init or rekey)', { details: { field: 'share.shareSetId' } });
  if (unsealer.shareKey !== undefined) verifyShareSignature(share, unsealer.shareKey);
  else if (share.signature !== undefined)
    throw new CustosError('share_forged', 'a signed share for a share set whose shares are unsigned', { details: { field: 'share.signature' } });
  if (share.threshold !== unsealer.threshold || share.shares !== unsealer.shares)
    throw new CustosError('share_foreign', 'the share’s threshold or share count differs from the sealed root’s', { details: { field: 'share.threshold' } });
}

/**
 * Opens a Shamir-sealed root with `threshold` shares: each is checked to belong to the set, indexes
 * and x coordinates must be distinct, then the KEK is recombined and checked by the AEAD tag (a
 * corrupted share recombines into a wrong KEK: `unseal_failed`, never a wrong root). The recombined
 * KEK is wiped; the root returned is the caller's to wipe.
 */
export async function unsealRootShamir(envelope: unknown, signerId: string, shares: readonly UnsealShare[]): Promise<Uint8Array> {
  const { unsealer } = readSealedRootV2(envelope).envelope;
  if (unsealer.type !== 'shamir')
    throw new CustosError('unsealer_mismatch', `this signer is sealed with ${unsealer.type}, not Shamir shares`, { details: { field: 'share' } });
  for (const share of shares) assertShareBelongs(envelope, signerId, share);
  const indexes = new Set(shares.map((s) => s.index));
  const xs = new Set(shares.map((s) => s.share[s.share.length - 1]));
  if (indexes.size !== shares.length || xs.size !== shares.length)
    throw new CustosError('share_duplicate', 'the same share was given twice', { details: { field: 'share.index' } });
  if (shares.length < unsealer.threshold)
    throw new CustosError('unseal_failed', `${shares.length} of ${unsealer.threshold} shares: not enough to unseal`, { details: { field: 'share' } });
  const copies = shares.map((s) => Uint8Array.from(s.share));
  let kek: Uint8Array | undefined;
  try {
    kek = await combine(copies);
    return unsealRootWithKek(envelope, kek);
  } finally {
    kek?.fill(0);
    for (const copy of copies) copy.fill(0);
  }
}
