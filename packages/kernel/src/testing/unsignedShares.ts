import { randomBytes } from 'node:crypto';
import { split } from 'shamir-secret-sharing';
import { CustosError } from '../errors.js';
import { drawRandom, type RandomBytes } from '../seal/random.js';
import { KEK_BYTES, type SealedRootV2, sealRootWithKek } from '../seal/sealedRoot.js';
import { encodeShareFile } from '../seal/shareFile.js';
import { openSealedRoot, type ShareFileOut, type UnsealCredential } from '../seal/unsealers.js';
import type { Store } from '../store/types.js';

/**
 * TEST ONLY (never called by init or rekey): a Shamir share set as Custos made it before shares
 * were signed — no `shareKey` in the sealed root's header, version-1 share files without a
 * signature — so that tests can show such a set keeps working (`sharesSigned: false`) until
 * `custos rekey` issues a signed one.
 */
export async function sealRootShamirUnsigned(
  root: Uint8Array,
  {
    signerId,
    threshold,
    shares,
    random = (n) => new Uint8Array(randomBytes(n)),
  }: { signerId: string; threshold: number; shares: number; random?: RandomBytes },
): Promise<{ sealedRoot: SealedRootV2; shareFiles: ShareFileOut[] }> {
  const kek = drawRandom(random, KEK_BYTES, 'kek');
  const shareSetId = Buffer.from(drawRandom(random, 16, 'shareSetId')).toString('base64');
  let parts: Uint8Array[] = [];
  try {
    const sealedRoot = sealRootWithKek(root, kek, { type: 'shamir', threshold, shares, shareSetId }, random);
    parts = await split(kek, shares, threshold);
    const shareFiles = parts.map((share, i) => ({
      index: i + 1,
      name: `share-${i + 1}.json`,
      text: encodeShareFile({ signerId, shareSetId, index: i + 1, threshold, shares, share }),
    }));
    return { sealedRoot, shareFiles };
  } finally {
    kek.fill(0);
    for (const part of parts) part.fill(0);
  }
}

/**
 * TEST ONLY: turns an initialised signer into one whose Shamir share set predates signed shares —
 * opens its root with `current`, seals it again with sealRootShamirUnsigned and swaps the stored
 * envelope (the root, hence every address, is unchanged). Returns the new (version-1) share files.
 */
export async function resealWithUnsignedShares(
  store: Store,
  current: UnsealCredential,
  { threshold, shares }: { threshold: number; shares: number },
): Promise<ShareFileOut[]> {
  const meta = await store.getMeta();
  if (meta === undefined) throw new CustosError('not_initialized', 'no signer to reseal');
  const root = await openSealedRoot(meta.sealedRoot, meta.signerId, current);
  try {
    const { sealedRoot, shareFiles } = await sealRootShamirUnsigned(root, { signerId: meta.signerId, threshold, shares });
    await store.transact(async (tx) => {
      if (!(await tx.swapSealedRoot(meta.sealedRoot, sealedRoot))) throw new CustosError('sealed_root_changed', 'the sealed root changed');
    });
    return shareFiles;
  } finally {
    root.fill(0);
  }
}
