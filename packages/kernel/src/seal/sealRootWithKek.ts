import { invalidInput } from '../errors.js';
import { sealAesGcm } from './aesGcm.js';
import { KEK_BYTES } from './deriveKek.js';
import { drawRandom } from './drawRandom.js';
import { GCM_IV_BYTES, MAX_ROOT_BYTES, SEALED_ROOT_CIPHER, SEALED_ROOT_FORMAT } from './sealedRootFormat.js';
import { SEALED_ROOT_V2, type SealedRootV2, type SealedRootV2Header, sealedRootAadV2, type UnsealerParamsV2 } from './sealedRootV2.js';
import type { RandomBytes } from './types.js';

/**
 * Seals the root under a KEK held in this process (the Shamir unsealer: the KEK is random and then
 * split): AES-256-GCM with a fresh IV and the version-2 header — unsealer parameters included — as
 * associated data. The caller keeps and wipes its root and KEK; the copy of the root is wiped here.
 */
export function sealRootWithKek(root: Uint8Array, kek: Uint8Array, unsealer: UnsealerParamsV2, random: RandomBytes): SealedRootV2 {
  // The root: 1..MAX_ROOT_BYTES bytes
  if (!(root instanceof Uint8Array) || root.length === 0 || root.length > MAX_ROOT_BYTES) {
    throw invalidInput('root', `1..${MAX_ROOT_BYTES} bytes`, root instanceof Uint8Array ? `${root.length} bytes` : typeof root);
  }
  // The KEK: an AES-256 key
  if (!(kek instanceof Uint8Array) || kek.length !== KEK_BYTES) throw invalidInput('kek', `${KEK_BYTES} bytes`);
  const iv = drawRandom(random, GCM_IV_BYTES, 'cipher.iv');
  const header: SealedRootV2Header = {
    format: SEALED_ROOT_FORMAT,
    version: SEALED_ROOT_V2,
    unsealer,
    cipher: { name: SEALED_ROOT_CIPHER, iv: Buffer.from(iv).toString('base64') },
  };
  const plaintext = Uint8Array.from(root);
  try {
    const body = sealAesGcm(kek, iv, sealedRootAadV2(header), plaintext);
    return { ...header, ciphertext: body.toString('base64') };
  } finally {
    plaintext.fill(0);
  }
}
