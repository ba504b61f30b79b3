import { invalidInput } from '../errors.js';
import { isCanonicalBase64 } from './isCanonicalBase64.js';
import { GCM_IV_BYTES, GCM_TAG_BYTES, MAX_ROOT_BYTES, SEALED_ROOT_CIPHER, SEALED_ROOT_FORMAT } from './sealedRootFormat.js';
import { SEALED_ROOT_V2, type SealedRootV2, type UnsealerParamsV2 } from './sealedRootV2.js';

function describe(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return value.length <= 40 ? JSON.stringify(value) : 'another string';
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

function readObject(value: unknown, field: string, allowed: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidInput(field, 'an object', describe(value));
  const prefix = field === 'envelope' ? '' : `${field}.`;
  for (const key of Object.keys(value)) if (!allowed.includes(key)) throw invalidInput(`${prefix}${key}`, 'no such member (unknown field)');
  return value as Record<string, unknown>;
}

function readBase64(value: unknown, field: string, minBytes: number, maxBytes: number): Uint8Array {
  const expected = minBytes === maxBytes ? `base64 of ${minBytes} bytes` : `base64 of ${minBytes}..${maxBytes} bytes`;
  if (typeof value !== 'string') throw invalidInput(field, expected, describe(value));
  if (value.length > 4 * Math.ceil(maxBytes / 3)) throw invalidInput(field, expected, `${value.length} characters`);
  if (!isCanonicalBase64(value, 'base64')) throw invalidInput(field, `${expected} (canonical, padded)`, 'malformed base64');
  const bytes = new Uint8Array(Buffer.from(value, 'base64'));
  if (bytes.length < minBytes || bytes.length > maxBytes) throw invalidInput(field, expected, `${bytes.length} bytes`);
  return bytes;
}

function readInt(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw invalidInput(field, `an integer ${min}..${max}`, describe(value));
  return value;
}

function readLabel(value: unknown, field: string, pattern: RegExp, expected: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) throw invalidInput(field, expected, describe(value));
  return value;
}

/**
 * Reads a version-2 sealed root (untrusted JSON from the store) strictly: known members only,
 * canonical base64, bounded sizes, unsealer parameters in range. Returns the envelope rebuilt from
 * the checked values, plus its decoded IV and body. invalid_input names the first bad field.
 */
export function readSealedRootV2(envelope: unknown): { envelope: SealedRootV2; iv: Uint8Array; body: Uint8Array } {
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) throw invalidInput('envelope', 'a sealed-root object', describe(envelope));
  const { format, version } = envelope as Record<string, unknown>;
  if (format !== SEALED_ROOT_FORMAT) throw invalidInput('format', JSON.stringify(SEALED_ROOT_FORMAT), describe(format));
  if (version !== SEALED_ROOT_V2) throw invalidInput('version', String(SEALED_ROOT_V2), describe(version));
  const top = readObject(envelope, 'envelope', ['format', 'version', 'unsealer', 'cipher', 'ciphertext']);
  const u = readObject(top.unsealer, 'unsealer', ['type', 'threshold', 'shares', 'shareSetId', 'tokenLabel', 'keyLabel', 'keyId']);
  let unsealer: UnsealerParamsV2;
  if (u.type === 'shamir') {
    readObject(u, 'unsealer', ['type', 'threshold', 'shares', 'shareSetId']);
    const shares = readInt(u.shares, 'unsealer.shares', 2, 255);
    const threshold = readInt(u.threshold, 'unsealer.threshold', 2, shares);
    readBase64(u.shareSetId, 'unsealer.shareSetId', 16, 16);
    unsealer = { type: 'shamir', threshold, shares, shareSetId: u.shareSetId as string };
  } else if (u.type === 'pkcs11') {
    readObject(u, 'unsealer', ['type', 'tokenLabel', 'keyLabel', 'keyId']);
    const tokenLabel = readLabel(u.tokenLabel, 'unsealer.tokenLabel', /^[\x20-\x7e]{1,32}$/, '1..32 printable ASCII characters');
    const keyLabel = readLabel(u.keyLabel, 'unsealer.keyLabel', /^[\x20-\x7e]{1,128}$/, '1..128 printable ASCII characters');
    const keyId = readLabel(u.keyId, 'unsealer.keyId', /^([0-9a-f]{2}){1,64}$/, '1..64 bytes of lowercase hex');
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
