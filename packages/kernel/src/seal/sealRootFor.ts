import { CustosError, isCustosError } from '../errors.js';
import { destroyKek } from './pkcs11/destroyKek.js';
import { generateKek } from './pkcs11/generateKek.js';
import { openPkcs11Token } from './pkcs11/openPkcs11Token.js';
import { sealRootWithPkcs11 } from './pkcs11/sealRootWithPkcs11.js';
import { sealRoot } from './sealRoot.js';
import { sealRootShamir } from './sealRootShamir.js';
import type { SealedRootV2 } from './sealedRootV2.js';
import type { RandomBytes, SealedRoot } from './types.js';
import type { ShareFileOut, UnsealerSpec } from './unsealerTypes.js';

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
  { signerId, random, onStep }: { signerId: string; random: RandomBytes; onStep?: (step: SealStep) => void | Promise<void> },
): Promise<{ sealedRoot: SealedRoot | SealedRootV2; shareFiles: ShareFileOut[] }> {
  switch (spec.type) {
    case 'passphrase':
      return { sealedRoot: await sealRoot(root, spec.passphrase, spec.scrypt === undefined ? { random } : { random, scrypt: spec.scrypt }), shareFiles: [] };
    case 'shamir':
      return sealRootShamir(root, { signerId, threshold: spec.threshold, shares: spec.shares, random });
    case 'pkcs11': {
      const token = openPkcs11Token({ modulePath: spec.modulePath, tokenLabel: spec.tokenLabel, pin: spec.pin });
      try {
        const { keyId } = generateKek(token, { keyLabel: spec.keyLabel, allowExistingLabel: true, random });
        try {
          await onStep?.('key-generated');
          return { sealedRoot: await sealRootWithPkcs11(root, token, { keyLabel: spec.keyLabel, keyId, random }), shareFiles: [] };
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
