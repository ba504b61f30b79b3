import { invalidInput } from '../errors.js';
import { assertKeyId } from './pkcs11/assertKeyId.js';
import { assertPkcs11Label } from './pkcs11/assertPkcs11Label.js';
import { KEK_LABEL_MAX_BYTES, TOKEN_LABEL_MAX_BYTES } from './pkcs11/generateKek.js';
import { describeValue as describe, readBase64, readObject } from './readEnvelopeMembers.js';
import { GCM_IV_BYTES, GCM_TAG_BYTES, MAX_ROOT_BYTES, SEALED_ROOT_CIPHER, SEALED_ROOT_FORMAT } from './sealedRootFormat.js';
import { SHARE_KEY_BYTES } from './shareFileFormat.js';
import { SEALED_ROOT_V2, type SealedRootV2, type UnsealerParamsV2 } from './sealedRootV2.js';

function readInt(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw invalidInput(field, `an integer ${min}..${max}`, describe(value));
  return value;
}

/**
 * Reads a version-2 sealed root (untrusted JSON from the store) strictly: known members only,
 * canonical base64, bounded sizes, unsealer parameters in range (PKCS#11: labels as
 * assertPkcs11Label accepts them — 1..32 / 1..64 UTF-8 bytes, no control characters, no edge
 * blanks — and the key id as generateKek draws it, 16 bytes in lower-case hex). Returns the envelope rebuilt from
 * the checked values, plus its decoded IV and body. invalid_input names the first bad field.
 */
export function readSealedRootV2(envelope: unknown): { envelope: SealedRootV2; iv: Uint8Array; body: Uint8Array } {
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) throw invalidInput('envelope', 'a sealed-root object', describe(envelope));
  const { format, version } = envelope as Record<string, unknown>;
  if (format !== SEALED_ROOT_FORMAT) throw invalidInput('format', JSON.stringify(SEALED_ROOT_FORMAT), describe(format));
  if (version !== SEALED_ROOT_V2) throw invalidInput('version', String(SEALED_ROOT_V2), describe(version));
  const top = readObject(envelope, 'envelope', ['format', 'version', 'unsealer', 'cipher', 'ciphertext']);
  const u = readObject(top.unsealer, 'unsealer', ['type', 'threshold', 'shares', 'shareSetId', 'shareKey', 'tokenLabel', 'keyLabel', 'keyId']);
  let unsealer: UnsealerParamsV2;
  if (u.type === 'shamir') {
    readObject(u, 'unsealer', ['type', 'threshold', 'shares', 'shareSetId', 'shareKey']);
    const shares = readInt(u.shares, 'unsealer.shares', 2, 255);
    const threshold = readInt(u.threshold, 'unsealer.threshold', 2, shares);
    readBase64(u.shareSetId, 'unsealer.shareSetId', 16, 16);
    unsealer = { type: 'shamir', threshold, shares, shareSetId: u.shareSetId as string };
    // the share set's signing public key (absent: a set made before shares were signed)
    if (u.shareKey !== undefined) {
      readBase64(u.shareKey, 'unsealer.shareKey', SHARE_KEY_BYTES, SHARE_KEY_BYTES);
      unsealer.shareKey = u.shareKey as string;
    }
  } else if (u.type === 'pkcs11') {
    readObject(u, 'unsealer', ['type', 'tokenLabel', 'keyLabel', 'keyId']);
    // the same rules as when the token is opened and the key generated (one reader for both)
    const tokenLabel = assertPkcs11Label(u.tokenLabel, 'unsealer.tokenLabel', TOKEN_LABEL_MAX_BYTES);
    const keyLabel = assertPkcs11Label(u.keyLabel, 'unsealer.keyLabel', KEK_LABEL_MAX_BYTES);
    const keyId = assertKeyId(u.keyId, 'unsealer.keyId');
    unsealer = { type: 'pkcs11', tokenLabel, keyLabel, keyId };
  } else {
    throw invalidInput('unsealer.type', '"shamir" or "pkcs11"', describe(u.type));
  }
  const cipher = readObject(top.cipher, 'cipher', ['name', 'iv']);
  if (cipher.name !== SEALED_ROOT_CIPHER) throw invalidInput('cipher.name', JSON.stringify(SEALED_ROOT_CIPHER), describe(cipher.name));
  const iv = readBase64(cipher.iv, 'cipher.iv', GCM_IV_BYTES, GCM_IV_BYTES);
  const body = readBase64(top.ciphertext, 'ciphertext', 1 + GCM_TAG_BYTES, MAX_ROOT_BYTES + GCM_TAG_BYTES);
  return {
    envelope: {
      format: SEALED_ROOT_FORMAT,
      version: SEALED_ROOT_V2,
      unsealer,
      cipher: { name: SEALED_ROOT_CIPHER, iv: cipher.iv as string },
      ciphertext: top.ciphertext as string,
    },
    iv,
    body,
  };
}
