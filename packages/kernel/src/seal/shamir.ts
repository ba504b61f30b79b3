// The Shamir unsealer (sealed root version 2): the KEK is 32 random bytes split M-of-N among operators.
// The share set's signatures, sealRootShamir, then assertShareBelongs and unsealRootShamir side by side.
// The share file itself: shareFile.ts.
import { ed25519 } from '@noble/curves/ed25519.js';
import { combine, split } from 'shamir-secret-sharing';
import { CustosError, invalidInput } from '../errors.js';
import { canonicalJson } from '../util/canonicalJson.js';
import { drawRandom, type RandomBytes } from './random.js';
import { describeUnsealer, KEK_BYTES, readSealedRootV2, type SealedRootV2, sealRootWithKek, unsealRootWithKek } from './sealedRoot.js';
import { encodeShareFile, SHARE_KEY_BYTES, SHARE_SIGNATURE_BYTES } from './shareFile.js';
import type { ShareFileOut, UnsealShare } from './unsealers.js';

/** Domain prefix of a share signature: these bytes can be nothing else Custos signs. */
const SHARE_SIGNATURE_DOMAIN = 'custos.share.v1\0';

/**
 * The message a share set's key signs for one share: the domain prefix, then the canonical JSON of
 * the whole share — signer, share set, index, threshold, share count and the share bytes (base64).
 * Changing any of them (a forged share under a known set id, an index or threshold edited by hand)
 * makes the signature fail.
 */
export function shareSignatureMessage(share: Omit<UnsealShare, 'signature'>): Uint8Array {
  const { signerId, shareSetId, index, threshold, shares } = share;
  const body = canonicalJson({ signerId, shareSetId, index, threshold, shares, share: Buffer.from(share.share).toString('base64') });
  return new Uint8Array(Buffer.from(`${SHARE_SIGNATURE_DOMAIN}${body}`, 'utf8'));
}

/**
 * Signs every share of a new set with a one-time Ed25519 key (@noble/curves) and returns its public
 * key (base64, for the sealed root's header) and one signature per share, in order. `seed` is the
 * one-time private key, 32 bytes from the CSPRNG: this function takes it over and wipes it before
 * returning, whatever happens — the key signs this set and nothing else, and no copy of it is kept
 * (@noble/curves' own intermediate values are not reachable to wipe; they are garbage).
 */
export function signShareSet(seed: Uint8Array, shares: readonly Omit<UnsealShare, 'signature'>[]): { shareKey: string; signatures: Uint8Array[] } {
  try {
    if (!(seed instanceof Uint8Array) || seed.length !== SHARE_KEY_BYTES) throw invalidInput('seed', `${SHARE_KEY_BYTES} bytes`);
    const shareKey = Buffer.from(ed25519.getPublicKey(seed)).toString('base64');
    const signatures = shares.map((share) => ed25519.sign(shareSignatureMessage(share), seed));
    return { shareKey, signatures };
  } finally {
    seed.fill(0);
  }
}

/**
 * Checks one share's signature against its set's public key (the sealed root's `unsealer.shareKey`,
 * base64). A missing signature (a version-1 file offered for a signed set) or one that does not
 * verify is `share_forged`: the share is refused before it is kept, so a forged share can neither
 * take an index nor spoil the combine. Returns nothing; throws.
 */
export function verifyShareSignature(share: UnsealShare, shareKey: string): void {
  if (share.signature === undefined)
    throw new CustosError('share_forged', 'the share set’s shares are signed, and this share file (version 1) carries no signature', {
      details: { field: 'share.signature' },
    });
  const publicKey = Buffer.from(shareKey, 'base64');
  let valid = false;
  try {
    valid = share.signature.length === SHARE_SIGNATURE_BYTES && ed25519.verify(share.signature, shareSignatureMessage(share), publicKey, { zip215: false });
  } catch {
    valid = false;
  }
  if (!valid)
    throw new CustosError('share_forged', 'the share’s signature does not verify under its share set’s key: a forged or altered share', {
      details: { field: 'share.signature' },
    });
}

export interface SealRootShamirOptions {
  /** The signer the shares belong to (written into every share file). */
  signerId: string;
  /** M: shares needed to unseal, 2..shares. */
  threshold: number;
  /** N: shares issued, 2..255. */
  shares: number;
  random: RandomBytes;
  /** Mark the envelope "an admin quorum is configured" (sealedRootQuorum). */
  quorum?: boolean;
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
  { signerId, threshold, shares, random, quorum = false }: SealRootShamirOptions,
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
    const sealedRoot = sealRootWithKek(root, kek, { type: 'shamir', threshold, shares, shareSetId, shareKey }, random, quorum);
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
  const kek = await combineShamirKek(envelope, signerId, shares);
  try {
    return unsealRootWithKek(envelope, kek);
  } finally {
    kek.fill(0);
  }
}

/**
 * The bootstrap of an admin quorum (issue 13): the same root sealed again under the same KEK — so
 * that every operator's share keeps working — with the quorum mark in the header (sealedRootQuorum).
 * The shares are checked and combined as for an unseal; the KEK is wiped.
 */
export async function resealRootShamirWithQuorum(
  envelope: unknown,
  signerId: string,
  shares: readonly UnsealShare[],
  random: RandomBytes,
): Promise<SealedRootV2> {
  const { unsealer } = readSealedRootV2(envelope).envelope;
  const kek = await combineShamirKek(envelope, signerId, shares);
  let root: Uint8Array | undefined;
  try {
    root = unsealRootWithKek(envelope, kek);
    return sealRootWithKek(root, kek, unsealer, random, true);
  } finally {
    kek.fill(0);
    root?.fill(0);
  }
}

/** The shares checked (set, signatures, duplicates, count) and combined into the KEK (the caller wipes it; the AEAD tag checks it). */
async function combineShamirKek(envelope: unknown, signerId: string, shares: readonly UnsealShare[]): Promise<Uint8Array> {
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
  try {
    return await combine(copies);
  } finally {
    for (const copy of copies) copy.fill(0);
  }
}
