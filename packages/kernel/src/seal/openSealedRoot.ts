import { CustosError } from '../errors.js';
import { describeUnsealer } from './describeUnsealer.js';
import { openPkcs11Token } from './pkcs11/openPkcs11Token.js';
import { unsealRootWithPkcs11 } from './pkcs11/unsealRootWithPkcs11.js';
import { unsealRoot } from './unsealRoot.js';
import { unsealRootShamir } from './unsealRootShamir.js';
import type { UnsealCredential } from './unsealerTypes.js';

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
