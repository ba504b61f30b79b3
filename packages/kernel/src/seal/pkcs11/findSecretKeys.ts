import type { PKCS11, Template } from 'pkcs11js';
import { loadPkcs11js } from './loadPkcs11js.js';
import { pkcs11Error } from './pkcs11Error.js';

/** At most this many matches are read: more than one is already an ambiguity the callers refuse. */
const MAX_MATCHES = 16;

/**
 * Handles of the AES secret-key objects on the session's token matching `keyId` (CKA_ID, hex) and,
 * when given, `keyLabel` (CKA_LABEL). Private objects are visible because the session is logged in.
 */
export function findSecretKeys(module: PKCS11, session: Buffer, { keyId, keyLabel }: { keyId?: string; keyLabel?: string }): Buffer[] {
  const p = loadPkcs11js();
  const template: Template = [
    { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
    { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
  ];
  if (keyId !== undefined) template.push({ type: p.CKA_ID, value: Buffer.from(keyId, 'hex') });
  if (keyLabel !== undefined) template.push({ type: p.CKA_LABEL, value: keyLabel });
  try {
    module.C_FindObjectsInit(session, template);
  } catch (error) {
    throw pkcs11Error('hsm_unavailable', 'C_FindObjectsInit', error);
  }
  try {
    return module.C_FindObjects(session, MAX_MATCHES);
  } catch (error) {
    throw pkcs11Error('hsm_unavailable', 'C_FindObjects', error);
  } finally {
    try {
      module.C_FindObjectsFinal(session);
    } catch {
      // a failed search has already been reported; the next C_FindObjectsInit would say more
    }
  }
}
