import { CustosError, invalidInput } from '../errors.js';
import { openAesGcm } from './aesGcm.js';
import { KEK_BYTES } from './deriveKek.js';
import { readSealedRootV2 } from './readSealedRootV2.js';
import { sealedRootAadV2 } from './sealedRootV2.js';

/**
 * Opens a version-2 sealed root with a KEK held in this process (the recombined Shamir KEK) and
 * returns the plaintext root (the caller's copy: wipe it). The envelope is read strictly first. A
 * wrong KEK — a corrupted or foreign share recombined into the wrong key — or any change to the
 * envelope, unsealer parameters included, fails the tag: `unseal_failed`, never a wrong root.
 */
export function unsealRootWithKek(envelope: unknown, kek: Uint8Array): Uint8Array {
  if (!(kek instanceof Uint8Array) || kek.length !== KEK_BYTES) throw invalidInput('kek', `${KEK_BYTES} bytes`);
  const { envelope: checked, iv, body } = readSealedRootV2(envelope);
  return openAesGcm(
    kek,
    iv,
    sealedRootAadV2(checked),
    body,
    (cause) =>
      new CustosError('unseal_failed', 'the shares do not open the sealed root (a wrong, corrupted or foreign share), or the envelope was altered', {
        cause,
      }),
  );
}
