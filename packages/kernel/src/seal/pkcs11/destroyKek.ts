import { CustosError, invalidInput } from '../../errors.js';
import { assertKeyId } from './assertKeyId.js';
import { findSecretKeys } from './findSecretKeys.js';
import { pkcs11Error } from './pkcs11Error.js';
import type { Pkcs11Token } from './types.js';

/**
 * Destroys the KEK with CKA_ID `keyId` (hex) on the token — after a rekey has sealed the root under
 * a new key, so that the old envelope can no longer be opened. Exactly one AES key must carry the
 * id: none is `not_found`, several are refused (invalid_input) rather than destroying a guess.
 */
export function destroyKek(token: Pkcs11Token, keyId: string): void {
  assertKeyId(keyId, 'keyId');
  const { module, session } = token.use();
  const keys = findSecretKeys(module, session, { keyId });
  if (keys.length === 0) {
    throw new CustosError('not_found', `PKCS#11: no AES key with CKA_ID ${keyId} on token ${JSON.stringify(token.tokenLabel)}`, {
      details: { field: 'keyId' },
    });
  }
  if (keys.length > 1) throw invalidInput('keyId', 'the CKA_ID of exactly one key', `${keys.length} keys`);
  try {
    module.C_DestroyObject(session, keys[0] as Buffer);
  } catch (error) {
    throw pkcs11Error('hsm_unavailable', 'C_DestroyObject', error);
  }
}
