import { CustosError } from '../../errors.js';
import { GCM_TAG_BYTES } from '../sealedRootFormat.js';
import { sealedRootAadV2 } from '../sealedRootV2.js';
import { aesGcmMechanism } from './aesGcmMechanism.js';
import { findSecretKeys } from './findSecretKeys.js';
import { parsePkcs11SealedRoot } from './parsePkcs11SealedRoot.js';
import { pkcs11Error, pkcs11ReturnCode } from './pkcs11Error.js';
import { kekDefect, readKekAttributes } from './readKekAttributes.js';
import type { Pkcs11Token } from './types.js';

/** Return codes of C_Decrypt that mean "the token is unusable" rather than "this does not open". */
const TOKEN_TROUBLE = /^CKR_(DEVICE_|TOKEN_|SESSION_|CRYPTOKI_|USER_NOT_LOGGED_IN|HOST_MEMORY|DEVICE_MEMORY)/;

/**
 * Opens a version-2 sealed root whose unsealer is this PKCS#11 token and returns the root (the
 * caller's own copy: wipe it when done). The envelope is untrusted: it is parsed strictly
 * (invalid_input naming the field). The key is looked up by CKA_ID and CKA_LABEL and must be a
 * proper KEK; the token runs AES-256-GCM decryption with the header as associated data. Another
 * token, a missing or ambiguous key, and any change to the envelope — a header field, the IV, the
 * ciphertext or the tag — are 'unseal_failed'; nothing but the authentic root is ever returned.
 */
export async function unsealRootWithPkcs11(envelope: unknown, token: Pkcs11Token): Promise<Uint8Array> {
  const { header, iv, body } = parsePkcs11SealedRoot(envelope);
  const { tokenLabel, keyLabel, keyId } = header.unsealer;
  const { module, session } = token.use();
  // The token: the one the envelope names
  if (tokenLabel !== token.tokenLabel) {
    throw new CustosError('unseal_failed', `the sealed root names token ${JSON.stringify(tokenLabel)}, not the open token ${JSON.stringify(token.tokenLabel)}`);
  }
  // The key: exactly one AES key with that id and label, fit to be a KEK
  const keys = findSecretKeys(module, session, { keyId, keyLabel });
  if (keys.length !== 1) {
    throw new CustosError('unseal_failed', `the token holds ${keys.length} AES keys with the sealed root's key id and label, expected one`, {
      details: { keyLabel, keyId },
    });
  }
  const key = keys[0] as Buffer;
  const defect = kekDefect(readKekAttributes(module, session, key), 'decrypt');
  if (defect !== undefined) throw new CustosError('unseal_failed', `the key named by the sealed root is not a proper KEK: ${defect}`, { details: { keyId } });

  let opened: Buffer | undefined;
  const out = Buffer.alloc(body.length);
  try {
    try {
      module.C_DecryptInit(session, aesGcmMechanism(iv, sealedRootAadV2(header)), key);
      opened = module.C_Decrypt(session, Buffer.from(body), out);
    } catch (error) {
      // SoftHSM2 reports a bad tag as CKR_GENERAL_ERROR, others as CKR_ENCRYPTED_DATA_INVALID
      const code = pkcs11ReturnCode(error);
      if (code !== undefined && TOKEN_TROUBLE.test(code)) throw pkcs11Error('hsm_unavailable', 'C_Decrypt (AES-GCM)', error);
      throw pkcs11Error('unseal_failed', 'C_Decrypt (AES-GCM)', error, 'this key does not open the sealed root, or the envelope was altered');
    }
    if (opened.length !== body.length - GCM_TAG_BYTES) {
      throw new CustosError('unseal_failed', `PKCS#11: AES-GCM returned ${opened.length} bytes for a ${body.length - GCM_TAG_BYTES}-byte root`);
    }
    const root = new Uint8Array(opened.length);
    root.set(opened);
    return root;
  } finally {
    out.fill(0);
  }
}
