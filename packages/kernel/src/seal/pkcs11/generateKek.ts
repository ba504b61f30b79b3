import type { Template } from 'pkcs11js';
import { loadPkcs11js } from './loadPkcs11js.js';
import { invalidInput } from '../../errors.js';
import { drawRandom } from '../drawRandom.js';
import type { RandomBytes } from '../types.js';
import { assertPkcs11Label } from './assertPkcs11Label.js';
import { findSecretKeys } from './findSecretKeys.js';
import { pkcs11Error } from './pkcs11Error.js';
import type { Pkcs11Token } from './types.js';

/** Bytes of the random CKA_ID given to every KEK (hex in the sealed root's header). */
export const KEK_ID_BYTES = 16;
/** Longest key label accepted (UTF-8 bytes). */
export const KEK_LABEL_MAX_BYTES = 64;
/** A token label is 32 bytes in PKCS#11 (CK_TOKEN_INFO.label). */
export const TOKEN_LABEL_MAX_BYTES = 32;

export interface GenerateKekOptions {
  /** CKA_LABEL of the new key. */
  keyLabel: string;
  /** Create the key even if a key with this label exists (its CKA_ID still tells them apart). */
  allowExistingLabel?: boolean;
  /** Source of the 16-byte CKA_ID; defaults to the token's own C_GenerateRandom. */
  random?: RandomBytes;
}

/**
 * Generates the key-encryption key inside the token: AES-256 (CKM_AES_KEY_GEN), a token object
 * (CKA_TOKEN, survives the session), private (CKA_PRIVATE: visible only after login), sensitive and
 * not extractable (its value can never leave the token, not even wrapped), usable for
 * C_Encrypt/C_Decrypt only (no wrap, unwrap, sign, verify or derive), with a random 16-byte CKA_ID
 * so that labels may repeat while the id pins one key. Refuses a label already on the token unless
 * `allowExistingLabel`. Returns the id (hex) to put in the sealed root's header.
 */
export function generateKek(token: Pkcs11Token, { keyLabel, allowExistingLabel = false, random }: GenerateKekOptions): { keyId: string } {
  // The label: 1..64 UTF-8 bytes
  assertPkcs11Label(keyLabel, 'keyLabel', KEK_LABEL_MAX_BYTES);
  if (random !== undefined && typeof random !== 'function') throw invalidInput('random', 'a function (n) => Uint8Array', typeof random);
  const { module, session } = token.use();
  const p = loadPkcs11js();
  // An existing key of that label: refused unless asked for (a second KEK would be easy to confuse)
  if (!allowExistingLabel && findSecretKeys(module, session, { keyLabel }).length > 0) {
    throw invalidInput('keyLabel', 'a label that no AES key on the token carries yet (or allowExistingLabel)', JSON.stringify(keyLabel));
  }
  let id: Uint8Array;
  if (random !== undefined) id = drawRandom(random, KEK_ID_BYTES, 'keyId');
  else {
    try {
      id = module.C_GenerateRandom(session, Buffer.alloc(KEK_ID_BYTES));
    } catch (error) {
      throw pkcs11Error('hsm_unavailable', 'C_GenerateRandom', error);
    }
  }
  const keyId = Buffer.from(id).toString('hex');
  const template: Template = [
    { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
    { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
    { type: p.CKA_VALUE_LEN, value: 32 },
    { type: p.CKA_TOKEN, value: true },
    { type: p.CKA_PRIVATE, value: true },
    { type: p.CKA_SENSITIVE, value: true },
    { type: p.CKA_EXTRACTABLE, value: false },
    { type: p.CKA_ENCRYPT, value: true },
    { type: p.CKA_DECRYPT, value: true },
    { type: p.CKA_WRAP, value: false },
    { type: p.CKA_UNWRAP, value: false },
    { type: p.CKA_SIGN, value: false },
    { type: p.CKA_VERIFY, value: false },
    { type: p.CKA_DERIVE, value: false },
    { type: p.CKA_LABEL, value: keyLabel },
    { type: p.CKA_ID, value: Buffer.from(id) },
  ];
  try {
    module.C_GenerateKey(session, { mechanism: p.CKM_AES_KEY_GEN }, template);
  } catch (error) {
    throw pkcs11Error('hsm_unavailable', 'C_GenerateKey', error);
  }
  return { keyId };
}
