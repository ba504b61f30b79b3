// The unsealers (passphrase, Shamir, PKCS#11) seen from outside: what each takes and gives (its
// types), and the one dispatch over them each way — openSealedRoot opens a sealed root with the
// credential of its unsealer, sealRootFor seals a root under a new one. Each unsealer itself:
// passphrase.ts, shamir.ts, pkcs11/unsealer.ts; which unsealer a sealed root names: describeUnsealer
// (sealedRoot.ts).
import { CustosError, isCustosError } from '../errors.js';
import { type ScryptCost, sealRoot, unsealRoot } from './passphrase.js';
import { destroyKek, generateKek } from './pkcs11/kek.js';
import { openPkcs11Token } from './pkcs11/token.js';
import { sealRootWithPkcs11, unsealRootWithPkcs11 } from './pkcs11/unsealer.js';
import type { RandomBytes } from './random.js';
import { describeUnsealer, type Pkcs11UnsealerParams, type SealedRoot, type SealedRootV2, type ShamirUnsealerParams, sealedRootQuorum } from './sealedRoot.js';
import { resealRootShamirWithQuorum, sealRootShamir, unsealRootShamir } from './shamir.js';

/**
 * The unsealers: where the key-encryption key (KEK) of the sealed root comes from. One kind is
 * chosen at init and changed only by a rekey.
 *   - `passphrase`: scrypt of an operator's passphrase (sealed root version 1);
 *   - `shamir`: 32 random bytes split M-of-N among operators (version 2);
 *   - `pkcs11`: a non-extractable AES-256 key generated inside a PKCS#11 token (version 2); the
 *     token runs AES-GCM over the root, the KEK never enters this process (seal/pkcs11/).
 */
export type UnsealerType = 'passphrase' | 'shamir' | 'pkcs11';

/** The public description of a sealed root's unsealer (status, CLI): no secret. */
export type UnsealerInfo = { type: 'passphrase' } | ShamirUnsealerParams | Pkcs11UnsealerParams;

/**
 * One operator's Shamir share, parsed and checksum-verified (see parseShareFile). Its signature is
 * checked against the sealed root (assertShareBelongs), not by the parser.
 */
export interface UnsealShare {
  signerId: string;
  shareSetId: string;
  /** 1..shares: the operator's number. */
  index: number;
  threshold: number;
  shares: number;
  /** The share bytes of shamir-secret-sharing (KEK length + 1: the last byte is the x coordinate). */
  share: Uint8Array;
  /** The set's Ed25519 signature over the share (signShareSet, shamir.ts); absent in a version-1 (unsigned) file. */
  signature?: Uint8Array;
}

/**
 * What opens a sealed root. The caller keeps (and wipes) the secret buffers it passes; the seal
 * module copies what it needs and wipes its copies.
 */
export type UnsealCredential =
  | { type: 'passphrase'; passphrase: Uint8Array }
  | { type: 'shamir'; shares: readonly UnsealShare[] }
  /**
   * The HSM: the PKCS#11 library to load and the token's user PIN (UTF-8). The token and the key are
   * named by the envelope's header.
   */
  | { type: 'pkcs11'; modulePath: string; pin: Uint8Array };

/** What a root is (re)sealed under: the new unsealer of an init or a rekey. */
export type UnsealerSpec =
  | { type: 'passphrase'; passphrase: Uint8Array; scrypt?: ScryptCost }
  | { type: 'shamir'; threshold: number; shares: number }
  /**
   * The HSM: a new KEK is generated on the token labelled `tokenLabel` (CKA_LABEL `keyLabel`; the
   * label may repeat, the random CKA_ID pins the key) and the token seals the root under it.
   */
  | { type: 'pkcs11'; modulePath: string; pin: Uint8Array; tokenLabel: string; keyLabel: string };

/** A share file to hand to one operator (init, rekey): its name and its text. Holds a secret. */
export interface ShareFileOut {
  index: number;
  /** `share-<index>.json` */
  name: string;
  /** The file's content (JSON text, see encodeShareFile). */
  text: string;
}

/** How openSealedRoot tries the credential. */
export interface OpenSealedRootOptions {
  /**
   * PKCS#11: read the token's PIN flags first and refuse (`hsm_pin_protect`) rather than try a PIN
   * that, if wrong, would lock the token or bring it to its last try (see openPkcs11Token). The
   * kernel sets it for PINs that come from the network.
   */
  protectPin?: boolean;
}

/**
 * Opens a sealed root with the credential of its unsealer and returns the plaintext root (the
 * caller's copy: wipe it). The one dispatch on the unsealer's type: a credential of another kind
 * than the envelope's is `unsealer_mismatch`. PKCS#11: the token the envelope names is opened
 * with the PIN for this one decryption and closed again (no session outlives the unseal).
 */
export async function openSealedRoot(
  envelope: unknown,
  signerId: string,
  credential: UnsealCredential,
  options: OpenSealedRootOptions = {},
): Promise<Uint8Array> {
  try {
    return await openWith(envelope, signerId, credential, options);
  } catch (error) {
    throw asStoredEnvelopeError(error);
  }
}

/** The fields of the caller's credential: a refusal naming one of these is the caller's to fix. */
const CREDENTIAL_FIELD = /^(passphrase|pin|modulePath|shares?)(\.|\[|$)/;

/**
 * The envelope comes from the store, not from the caller: an `invalid_input` naming one of its
 * fields (`version`, `kdf.N`, `cipher.name`…) would tell the operator their request was wrong
 * (a 400 naming a field they never sent). It becomes `unseal_failed` — the code docs/errors.md
 * gives for "the sealed envelope in the store was altered", whose advice (treat the data
 * directory as tampered with, restore from a backup) is the right one — not `internal`, which
 * says "retry" and hides that the stored root itself is the problem.
 */
function asStoredEnvelopeError(error: unknown): unknown {
  if (!(error instanceof CustosError) || error.code !== 'invalid_input') return error;
  const field = typeof error.details.field === 'string' ? error.details.field : '';
  if (CREDENTIAL_FIELD.test(field)) return error;
  return new CustosError('unseal_failed', `the stored sealed root is unreadable (${field || 'envelope'}); the data directory may be damaged or tampered with`, {
    cause: error,
    details: { field: 'sealedRoot', envelopeField: field },
  });
}

async function openWith(envelope: unknown, signerId: string, credential: UnsealCredential, { protectPin = false }: OpenSealedRootOptions): Promise<Uint8Array> {
  const unsealer = describeUnsealer(envelope);
  if (credential.type !== unsealer.type) {
    throw new CustosError('unsealer_mismatch', `this signer is sealed with ${unsealer.type}; a ${credential.type} credential cannot open it`, {
      details: { field: credential.type === 'shamir' ? 'share' : credential.type === 'pkcs11' ? 'pin' : credential.type, expected: unsealer.type },
    });
  }
  switch (credential.type) {
    case 'passphrase':
      return unsealRoot(envelope, credential.passphrase);
    case 'shamir':
      return unsealRootShamir(envelope, signerId, credential.shares);
    case 'pkcs11': {
      if (unsealer.type !== 'pkcs11') throw new CustosError('internal', 'unsealer dispatch');
      const token = openPkcs11Token({ modulePath: credential.modulePath, tokenLabel: unsealer.tokenLabel, pin: credential.pin, protectPin });
      try {
        return await unsealRootWithPkcs11(envelope, token);
      } finally {
        token.close();
      }
    }
  }
}

/** The steps inside sealRootFor that a caller may observe (rekey's fault injection). */
export type SealStep = 'key-generated';

/**
 * Seals a root under a new unsealer (init, rekey): the one dispatch on the new unsealer's type.
 * Shamir returns the operators' share files too (to be written durably before the envelope is
 * stored). PKCS#11 generates a new non-extractable KEK on the token (`onStep('key-generated')` once
 * it exists) and lets the token seal the root under it; if sealing then fails, the new key is
 * destroyed again (best effort: a key left behind is an orphan no envelope names, see
 * docs/operations.md). Labels may repeat on the token — an orphan of a crashed rekey, or the key
 * being rotated away — because the envelope pins its key by the random CKA_ID.
 */
export async function sealRootFor(
  root: Uint8Array,
  spec: UnsealerSpec,
  { signerId, random, onStep, quorum = false }: { signerId: string; random: RandomBytes; onStep?: (step: SealStep) => void | Promise<void>; quorum?: boolean },
): Promise<{ sealedRoot: SealedRoot | SealedRootV2; shareFiles: ShareFileOut[] }> {
  switch (spec.type) {
    case 'passphrase':
      return {
        sealedRoot: await sealRoot(root, spec.passphrase, spec.scrypt === undefined ? { random, quorum } : { random, scrypt: spec.scrypt, quorum }),
        shareFiles: [],
      };
    case 'shamir':
      return sealRootShamir(root, { signerId, threshold: spec.threshold, shares: spec.shares, random, quorum });
    case 'pkcs11': {
      const token = openPkcs11Token({ modulePath: spec.modulePath, tokenLabel: spec.tokenLabel, pin: spec.pin });
      try {
        const { keyId } = generateKek(token, { keyLabel: spec.keyLabel, allowExistingLabel: true, random });
        try {
          await onStep?.('key-generated');
          return { sealedRoot: await sealRootWithPkcs11(root, token, { keyLabel: spec.keyLabel, keyId, random, quorum }), shareFiles: [] };
        } catch (error) {
          try {
            destroyKek(token, keyId);
          } catch {
            // the seal failure is what the caller needs to see; the key stays an orphan (documented)
          }
          throw isCustosError(error) ? error : new CustosError('internal', 'sealing under the new PKCS#11 key failed', { cause: error });
        }
      } finally {
        token.close();
      }
    }
  }
}

/**
 * The bootstrap of an admin quorum on an existing signer (issue 13): the same root sealed again with
 * the quorum mark in its header (sealedRootQuorum), under the same unsealer and the same credentials
 * — the same passphrase (a fresh salt, the same scrypt cost), the same KEK split among the same
 * shares, the same HSM key — so that nothing the operators hold changes. Opens the envelope with
 * `credential` first (a wrong credential changes nothing). An envelope marked already is returned as it is.
 */
export async function sealRootWithQuorumMark(
  envelope: unknown,
  signerId: string,
  credential: UnsealCredential,
  random: RandomBytes,
): Promise<SealedRoot | SealedRootV2> {
  const root = await openSealedRoot(envelope, signerId, credential);
  try {
    if (sealedRootQuorum(envelope)) return envelope as SealedRoot | SealedRootV2;
    switch (credential.type) {
      case 'passphrase': {
        const { kdf } = envelope as SealedRoot;
        // the cost the envelope carried (checked by the open above); sealRoot draws a fresh salt and IV
        return await sealRoot(root, credential.passphrase, { random, scrypt: { N: kdf.N, r: kdf.r, p: kdf.p }, quorum: true });
      }
      case 'shamir':
        return await resealRootShamirWithQuorum(envelope, signerId, credential.shares, random);
      case 'pkcs11': {
        const unsealer = describeUnsealer(envelope);
        if (unsealer.type !== 'pkcs11') throw new CustosError('internal', 'unsealer dispatch');
        const token = openPkcs11Token({ modulePath: credential.modulePath, tokenLabel: unsealer.tokenLabel, pin: credential.pin });
        try {
          return await sealRootWithPkcs11(root, token, { keyLabel: unsealer.keyLabel, keyId: unsealer.keyId, random, quorum: true });
        } finally {
          token.close();
        }
      }
    }
  } finally {
    root.fill(0);
  }
}
