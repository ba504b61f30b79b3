import { CustosError } from '../errors.js';
import { describeUnsealer } from './describeUnsealer.js';
import { unsealRoot } from './unsealRoot.js';
import { unsealRootShamir } from './unsealRootShamir.js';
import type { UnsealCredential } from './unsealerTypes.js';

/**
 * Opens a sealed root with the credential of its unsealer and returns the plaintext root (the
 * caller's copy: wipe it). The one dispatch on the unsealer's type: a credential of another kind
 * than the envelope's is `unsealer_mismatch`; a PKCS#11 root is `unsealer_unavailable` until the
 * HSM functions are plugged in here.
 */
export async function openSealedRoot(envelope: unknown, signerId: string, credential: UnsealCredential): Promise<Uint8Array> {
  const unsealer = describeUnsealer(envelope);
  if (credential.type !== unsealer.type) {
    throw new CustosError('unsealer_mismatch', `this signer is sealed with ${unsealer.type}; a ${credential.type} credential cannot open it`, {
      details: { field: credential.type === 'shamir' ? 'share' : credential.type, expected: unsealer.type },
    });
  }
  switch (credential.type) {
    case 'passphrase':
      return unsealRoot(envelope, credential.passphrase);
    case 'shamir':
      return unsealRootShamir(envelope, signerId, credential.shares);
    case 'pkcs11':
      // Integration point: `return unsealRootWithPkcs11(envelope, { libraryPath, pin })` (seal/pkcs11/).
      throw new CustosError('unsealer_unavailable', 'this kernel cannot use a PKCS#11 unsealer yet', { details: { unsealer: 'pkcs11' } });
  }
}
