import { CustosError } from '../errors.js';
import { sealRoot } from './sealRoot.js';
import { sealRootShamir } from './sealRootShamir.js';
import type { SealedRootV2 } from './sealedRootV2.js';
import type { RandomBytes, SealedRoot } from './types.js';
import type { ShareFileOut, UnsealerSpec } from './unsealerTypes.js';

/**
 * Seals a root under a new unsealer (init, rekey): the one dispatch on the new unsealer's type.
 * Shamir returns the operators' share files too (to be written durably before the envelope is
 * stored). PKCS#11 is `unsealer_unavailable` until the HSM functions are plugged in here.
 */
export async function sealRootFor(
  root: Uint8Array,
  spec: UnsealerSpec,
  { signerId, random }: { signerId: string; random: RandomBytes },
): Promise<{ sealedRoot: SealedRoot | SealedRootV2; shareFiles: ShareFileOut[] }> {
  switch (spec.type) {
    case 'passphrase':
      return { sealedRoot: await sealRoot(root, spec.passphrase, spec.scrypt === undefined ? { random } : { random, scrypt: spec.scrypt }), shareFiles: [] };
    case 'shamir':
      return sealRootShamir(root, { signerId, threshold: spec.threshold, shares: spec.shares, random });
    case 'pkcs11':
      // Integration point: `return { sealedRoot: await sealRootWithPkcs11(root, {...}), shareFiles: [] }` (seal/pkcs11/).
      throw new CustosError('unsealer_unavailable', 'this kernel cannot seal under a PKCS#11 unsealer yet', { details: { unsealer: 'pkcs11' } });
  }
}
