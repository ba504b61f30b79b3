import { invalidInput } from '../../errors.js';
import { readSealedRootV2 } from '../readSealedRootV2.js';
import type { Pkcs11UnsealerParams, SealedRootV2Header } from '../sealedRootV2.js';

/** A version-2 sealed root whose unsealer is a PKCS#11 token, parsed: its header, IV and body. */
export interface ParsedPkcs11SealedRoot {
  header: SealedRootV2Header & { unsealer: Pkcs11UnsealerParams };
  iv: Uint8Array;
  /** ciphertext ‖ 16-byte tag */
  body: Uint8Array;
}

/**
 * Parses an untrusted version-2 envelope with a `pkcs11` unsealer: the one strict reader of version
 * 2 (readSealedRootV2: known members only, every field of the expected type and size, invalid_input
 * naming the field), then the unsealer must be `pkcs11`. Nothing here says the envelope is
 * authentic: the AES-GCM tag does, over the header rebuilt from the parsed fields.
 */
export function parsePkcs11SealedRoot(envelope: unknown): ParsedPkcs11SealedRoot {
  const { envelope: checked, iv, body } = readSealedRootV2(envelope);
  const { unsealer } = checked;
  if (unsealer.type !== 'pkcs11') throw invalidInput('unsealer.type', '"pkcs11"', JSON.stringify(unsealer.type));
  const { ciphertext: _ciphertext, ...header } = checked;
  return { header: { ...header, unsealer }, iv, body };
}
