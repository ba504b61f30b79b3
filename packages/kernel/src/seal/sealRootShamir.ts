import { split } from 'shamir-secret-sharing';
import { invalidInput } from '../errors.js';
import { KEK_BYTES } from './deriveKek.js';
import { drawRandom } from './drawRandom.js';
import { encodeShareFile } from './encodeShareFile.js';
import { sealRootWithKek } from './sealRootWithKek.js';
import { SHARE_KEY_BYTES } from './shareFileFormat.js';
import { signShareSet } from './shareSignature.js';
import type { SealedRootV2 } from './sealedRootV2.js';
import type { RandomBytes } from './types.js';
import type { ShareFileOut } from './unsealerTypes.js';

export interface SealRootShamirOptions {
  /** The signer the shares belong to (written into every share file). */
  signerId: string;
  /** M: shares needed to unseal, 2..shares. */
  threshold: number;
  /** N: shares issued, 2..255. */
  shares: number;
  random: RandomBytes;
}

/**
 * Seals the root under a fresh random 32-byte KEK and splits the KEK M-of-N with
 * shamir-secret-sharing (audited). Returns the version-2 envelope and one share file per operator.
 * A new share set id is drawn each time, so that shares of an earlier set are refused by name. Each
 * share is signed by a one-time Ed25519 key drawn here (signShareSet): its public key goes into the
 * envelope's header (`unsealer.shareKey`, authenticated as associated data), its private key is
 * wiped as soon as the N shares are signed — nobody can sign another share of this set, so a forged
 * share is refused before it is kept. The KEK and the raw shares are wiped before returning; the
 * share file texts are the only copies.
 */
export async function sealRootShamir(
  root: Uint8Array,
  { signerId, threshold, shares, random }: SealRootShamirOptions,
): Promise<{ sealedRoot: SealedRootV2; shareFiles: ShareFileOut[] }> {
  // N: 2..255 (the share's x coordinate is one byte); M: 2..N
  if (!Number.isInteger(shares) || shares < 2 || shares > 255) throw invalidInput('shares', 'an integer 2..255', String(shares));
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > shares)
    throw invalidInput('threshold', `an integer 2..${shares} (the number of shares)`, String(threshold));
  if (typeof signerId !== 'string' || signerId.length === 0) throw invalidInput('signerId', 'a signer id');
  const kek = drawRandom(random, KEK_BYTES, 'kek');
  const shareSetId = Buffer.from(drawRandom(random, 16, 'shareSetId')).toString('base64');
  let parts: Uint8Array[] = [];
  try {
    parts = await split(kek, shares, threshold);
    const unsigned = parts.map((share, i) => ({ signerId, shareSetId, index: i + 1, threshold, shares, share }));
    // The one-time signing key: drawn, used for these N signatures, wiped by signShareSet
    const { shareKey, signatures } = signShareSet(drawRandom(random, SHARE_KEY_BYTES, 'shareSigningKey'), unsigned);
    const sealedRoot = sealRootWithKek(root, kek, { type: 'shamir', threshold, shares, shareSetId, shareKey }, random);
    const shareFiles = unsigned.map((share, i) => ({
      index: share.index,
      name: `share-${share.index}.json`,
      text: encodeShareFile({ ...share, signature: signatures[i] as Uint8Array }),
    }));
    return { sealedRoot, shareFiles };
  } finally {
    kek.fill(0);
    for (const part of parts) part.fill(0);
  }
}
