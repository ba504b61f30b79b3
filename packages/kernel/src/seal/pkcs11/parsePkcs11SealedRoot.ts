import { invalidInput } from '../../errors.js';
import { isCanonicalBase64 } from '../isCanonicalBase64.js';
import { GCM_IV_BYTES, GCM_TAG_BYTES, MAX_ROOT_BYTES, SEALED_ROOT_CIPHER, SEALED_ROOT_FORMAT } from '../sealedRootFormat.js';
import { type Pkcs11UnsealerParams, SEALED_ROOT_V2, type SealedRootV2Header } from '../sealedRootV2.js';
import { assertKeyId } from './assertKeyId.js';
import { assertPkcs11Label } from './assertPkcs11Label.js';
import { KEK_LABEL_MAX_BYTES, TOKEN_LABEL_MAX_BYTES } from './generateKek.js';

function describe(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return value.length <= 40 ? JSON.stringify(value) : 'another string';
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

/** A plain JSON object whose members are all among `allowed`; names the first stray member. */
function readObject(value: unknown, field: string, allowed: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidInput(field, 'an object', describe(value));
  const prefix = field === 'envelope' ? '' : `${field}.`;
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw invalidInput(`${prefix}${key}`, 'no such member (unknown field)');
  }
  return value as Record<string, unknown>;
}

/** Canonical base64 of minBytes..maxBytes bytes, decoded; the length is checked on the text first. */
function readBase64(value: unknown, field: string, minBytes: number, maxBytes: number): Uint8Array {
  const expected = minBytes === maxBytes ? `base64 of ${minBytes} bytes` : `base64 of ${minBytes}..${maxBytes} bytes`;
  if (typeof value !== 'string') throw invalidInput(field, expected, describe(value));
  if (value.length > 4 * Math.ceil(maxBytes / 3)) throw invalidInput(field, expected, `${value.length} characters`);
  if (!isCanonicalBase64(value, 'base64')) throw invalidInput(field, `${expected} (canonical, padded)`, 'malformed base64');
  const bytes = new Uint8Array(Buffer.from(value, 'base64'));
  if (bytes.length < minBytes || bytes.length > maxBytes) throw invalidInput(field, expected, `${bytes.length} bytes`);
  return bytes;
}

/** A version-2 sealed root whose unsealer is a PKCS#11 token, parsed: its header, IV and body. */
export interface ParsedPkcs11SealedRoot {
  header: SealedRootV2Header & { unsealer: Pkcs11UnsealerParams };
  iv: Uint8Array;
  /** ciphertext ‖ 16-byte tag */
  body: Uint8Array;
}

/**
 * Parses an untrusted version-2 envelope with a `pkcs11` unsealer, strictly (the style of
 * unsealRoot): a known format and version first, no unknown member anywhere, every field of the
 * expected type and size; invalid_input names the field. Nothing here says the envelope is
 * authentic: the AES-GCM tag does, over the header rebuilt from these parsed fields.
 */
export function parsePkcs11SealedRoot(envelope: unknown): ParsedPkcs11SealedRoot {
  // The envelope: an object of a known format and version (before looking at anything else)
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) {
    throw invalidInput('envelope', 'a sealed-root object', describe(envelope));
  }
  const { format, version } = envelope as Record<string, unknown>;
  if (format !== SEALED_ROOT_FORMAT) throw invalidInput('format', JSON.stringify(SEALED_ROOT_FORMAT), describe(format));
  if (version !== SEALED_ROOT_V2) throw invalidInput('version', String(SEALED_ROOT_V2), describe(version));
  const top = readObject(envelope, 'envelope', ['format', 'version', 'unsealer', 'cipher', 'ciphertext']);
  // unsealer: a PKCS#11 token, key label and key id
  const unsealer = readObject(top.unsealer, 'unsealer', ['type', 'tokenLabel', 'keyLabel', 'keyId']);
  if (unsealer.type !== 'pkcs11') throw invalidInput('unsealer.type', '"pkcs11"', describe(unsealer.type));
  const tokenLabel = assertPkcs11Label(unsealer.tokenLabel, 'unsealer.tokenLabel', TOKEN_LABEL_MAX_BYTES);
  const keyLabel = assertPkcs11Label(unsealer.keyLabel, 'unsealer.keyLabel', KEK_LABEL_MAX_BYTES);
  const keyId = assertKeyId(unsealer.keyId, 'unsealer.keyId');
  // cipher: AES-256-GCM with a 12-byte IV
  const cipher = readObject(top.cipher, 'cipher', ['name', 'iv']);
  if (cipher.name !== SEALED_ROOT_CIPHER) throw invalidInput('cipher.name', JSON.stringify(SEALED_ROOT_CIPHER), describe(cipher.name));
  const iv = readBase64(cipher.iv, 'cipher.iv', GCM_IV_BYTES, GCM_IV_BYTES);
  // ciphertext: at least one byte of plaintext plus the 16-byte tag
  const body = readBase64(top.ciphertext, 'ciphertext', 1 + GCM_TAG_BYTES, MAX_ROOT_BYTES + GCM_TAG_BYTES);
  return {
    header: {
      format: SEALED_ROOT_FORMAT,
      version: SEALED_ROOT_V2,
      unsealer: { type: 'pkcs11', tokenLabel, keyLabel, keyId },
      cipher: { name: SEALED_ROOT_CIPHER, iv: cipher.iv as string },
    },
    iv,
    body,
  };
}
