import { ed25519 } from '@noble/curves/ed25519.js';
import { CustosError, invalidInput } from '../errors.js';
import { canonicalJson } from '../util/canonicalJson.js';
import { SHARE_KEY_BYTES, SHARE_SIGNATURE_BYTES } from './shareFileFormat.js';
import type { UnsealShare } from './unsealerTypes.js';

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
    valid = share.signature.length === SHARE_SIGNATURE_BYTES && ed25519.verify(share.signature, shareSignatureMessage(share), publicKey);
  } catch {
    valid = false;
  }
  if (!valid)
    throw new CustosError('share_forged', 'the share’s signature does not verify under its share set’s key: a forged or altered share', {
      details: { field: 'share.signature' },
    });
}
