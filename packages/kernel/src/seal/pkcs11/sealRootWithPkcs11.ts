import { timingSafeEqual } from 'node:crypto';
import { CustosError, invalidInput } from '../../errors.js';
import { drawRandom } from '../drawRandom.js';
import { GCM_IV_BYTES, GCM_TAG_BYTES, MAX_ROOT_BYTES, SEALED_ROOT_CIPHER, SEALED_ROOT_FORMAT } from '../sealedRootFormat.js';
import { SEALED_ROOT_V2, type SealedRootV2, type SealedRootV2Header, sealedRootAadV2 } from '../sealedRootV2.js';
import type { RandomBytes } from '../types.js';
import { aesGcmMechanism } from './aesGcmMechanism.js';
import { assertKeyId } from './assertKeyId.js';
import { assertPkcs11Label } from './assertPkcs11Label.js';
import { findSecretKeys } from './findSecretKeys.js';
import { KEK_LABEL_MAX_BYTES } from './generateKek.js';
import { pkcs11Error } from './pkcs11Error.js';
import { kekDefect, readKekAttributes } from './readKekAttributes.js';
import type { Pkcs11Token } from './types.js';

export interface SealRootWithPkcs11Options {
  /** CKA_LABEL of the KEK (from generateKek). */
  keyLabel: string;
  /** CKA_ID of the KEK, hex (from generateKek). */
  keyId: string;
  /** Label of the token the KEK lives on; must be the open token's. Defaults to it. */
  tokenLabel?: string;
  /** Secure random bytes for the IV. */
  random: RandomBytes;
}

/**
 * Seals the root (an encoded RootKeyring) with a KEK that never leaves the token: the HSM runs
 * AES-256-GCM (C_Encrypt, 96-bit IV drawn from `random`, 128-bit tag) over the root, with
 * `sealedRootAadV2(header)` as associated data, so that the token, key label, key id and IV in the
 * header are all authenticated. The key must be a proper KEK (AES-256, sensitive, never
 * extractable). Before returning, the envelope is opened once by the token and compared with the
 * root, so that an HSM that silently truncated the tag or ignored the AAD is caught at seal time,
 * not at the next unseal. Returns a JSON-serialisable SealedRootV2 with no secret in the clear.
 */
export async function sealRootWithPkcs11(root: Uint8Array, token: Pkcs11Token, options: SealRootWithPkcs11Options): Promise<SealedRootV2> {
  const { keyLabel, keyId, tokenLabel = token.tokenLabel, random } = options;
  // The root: 1..MAX_ROOT_BYTES bytes
  if (!(root instanceof Uint8Array) || root.length === 0 || root.length > MAX_ROOT_BYTES) {
    throw invalidInput('root', `1..${MAX_ROOT_BYTES} bytes`, root instanceof Uint8Array ? `${root.length} bytes` : typeof root);
  }
  // The key: its label and id as generateKek gave them; the token: the open one
  assertPkcs11Label(keyLabel, 'keyLabel', KEK_LABEL_MAX_BYTES);
  assertKeyId(keyId, 'keyId');
  if (tokenLabel !== token.tokenLabel)
    throw invalidInput('tokenLabel', `the open token's label ${JSON.stringify(token.tokenLabel)}`, JSON.stringify(tokenLabel));
  // The random source: a function
  if (typeof random !== 'function') throw invalidInput('random', 'a function (n) => Uint8Array', typeof random);
  const { module, session } = token.use();
  const keys = findSecretKeys(module, session, { keyId, keyLabel });
  if (keys.length !== 1) {
    throw invalidInput('keyId', `the CKA_ID of exactly one AES key labelled ${JSON.stringify(keyLabel)} on the token`, `${keys.length} keys`);
  }
  const key = keys[0] as Buffer;
  const defect = kekDefect(readKekAttributes(module, session, key), 'encrypt');
  if (defect !== undefined) throw invalidInput('keyId', 'a sensitive, never-extractable AES-256 key', defect);

  const iv = drawRandom(random, GCM_IV_BYTES, 'cipher.iv');
  const header: SealedRootV2Header = {
    format: SEALED_ROOT_FORMAT,
    version: SEALED_ROOT_V2,
    unsealer: { type: 'pkcs11', tokenLabel, keyLabel, keyId },
    cipher: { name: SEALED_ROOT_CIPHER, iv: Buffer.from(iv).toString('base64') },
  };
  const mechanism = aesGcmMechanism(iv, sealedRootAadV2(header));
  // Copy the root now: the caller's buffer is theirs
  const plaintext = Buffer.from(root);
  let check: Buffer | undefined;
  try {
    let body: Buffer;
    try {
      module.C_EncryptInit(session, mechanism, key);
      // the output holds the ciphertext and the tag: sized for both, so no CKR_BUFFER_TOO_SMALL
      // (which would leave the operation active on the session)
      body = Buffer.from(module.C_Encrypt(session, plaintext, Buffer.alloc(plaintext.length + GCM_TAG_BYTES)));
    } catch (error) {
      throw pkcs11Error('hsm_unavailable', 'C_Encrypt (AES-GCM)', error);
    }
    // The tag: exactly 128 bits after the ciphertext (a 0-bit tag would authenticate nothing)
    if (body.length !== plaintext.length + GCM_TAG_BYTES) {
      throw new CustosError('internal', `PKCS#11: AES-GCM returned ${body.length} bytes for ${plaintext.length}, expected a 16-byte tag; nothing was sealed`);
    }
    // The check: the token opens what it sealed, with this header as AAD, to the same bytes
    try {
      module.C_DecryptInit(session, mechanism, key);
      check = module.C_Decrypt(session, body, Buffer.alloc(body.length));
    } catch (error) {
      throw pkcs11Error('hsm_unavailable', 'C_Decrypt (seal check)', error);
    }
    if (check.length !== plaintext.length || !timingSafeEqual(check, plaintext)) {
      throw new CustosError('internal', 'PKCS#11: the token did not decrypt the sealed root to the root; nothing was sealed');
    }
    return { ...header, ciphertext: body.toString('base64') };
  } finally {
    plaintext.fill(0);
    check?.fill(0);
  }
}
