// The barrier's record envelope `v1.<iv>.<ciphertext‖tag>`: its constants and associated data,
// encryptRecord and decryptRecord side by side.
import { CustosError, invalidInput } from '../errors.js';
import { GCM_IV_BYTES, GCM_TAG_BYTES, openAesGcm, sealAesGcm } from './aesGcm.js';
import { isCanonicalBase64 } from './isCanonicalBase64.js';
import { drawRandom, type RandomBytes } from './random.js';

/** Constants of the barrier's record envelope `v1.<iv>.<ciphertext‖tag>` (base64url, no padding). */
export const RECORD_VERSION = 'v1';
/** The associated data is this prefix followed by the record key, as UTF-8. */
export const RECORD_AAD_PREFIX = 'custos.record.v1\0';
export const RECORD_KEY_BYTES = 32;

const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * The associated data of a barrier record: UTF-8("custos.record.v1\0" + recordKey). Binding the
 * record key means a ciphertext copied into another record (another wallet's row) does not open.
 * The record key must be non-empty, well-formed Unicode: two different strings with lone
 * surrogates would encode to the same UTF-8 bytes, and so to the same associated data.
 */
export function recordAad(recordKey: unknown): Uint8Array {
  if (typeof recordKey !== 'string' || recordKey.length === 0) {
    throw invalidInput('recordKey', 'a non-empty string', typeof recordKey === 'string' ? 'an empty string' : typeof recordKey);
  }
  if (LONE_SURROGATE.test(recordKey)) throw invalidInput('recordKey', 'well-formed Unicode (no lone surrogates)');
  return new Uint8Array(Buffer.from(RECORD_AAD_PREFIX + recordKey, 'utf8'));
}

/**
 * Encrypts one record for the store: AES-256-GCM under the barrier key, a fresh 12-byte IV, and
 * the record key as associated data. Returns `v1.<base64url iv>.<base64url ciphertext ‖ tag>`.
 * Synchronous (hot path). The key and plaintext are only read, never kept.
 */
export function encryptRecord(key: Uint8Array, recordKey: string, plaintext: Uint8Array, random: RandomBytes): string {
  // A 32-byte key
  if (!(key instanceof Uint8Array) || key.length !== RECORD_KEY_BYTES) {
    throw invalidInput('key', `${RECORD_KEY_BYTES} bytes`, key instanceof Uint8Array ? `${key.length} bytes` : typeof key);
  }
  // A non-empty, well-formed record key, bound as associated data
  const aad = recordAad(recordKey);
  // Plaintext bytes (may be empty)
  if (!(plaintext instanceof Uint8Array)) throw invalidInput('plaintext', 'bytes', typeof plaintext);
  const iv = drawRandom(random, GCM_IV_BYTES, 'record iv');
  const body = sealAesGcm(key, iv, aad, plaintext);
  return `${RECORD_VERSION}.${Buffer.from(iv).toString('base64url')}.${body.toString('base64url')}`;
}

/**
 * Decrypts a record written by encryptRecord under the same key and record key. Any failure of
 * the envelope — malformed, unknown version, bad tag, another record's ciphertext, another key —
 * is 'record_unreadable' naming the record (never its content); the caller refuses to act.
 * Returns a fresh buffer the caller owns (and wipes). Synchronous (hot path).
 */
export function decryptRecord(key: Uint8Array, recordKey: string, envelope: string): Uint8Array {
  // A 32-byte key (a wrong-length key is a caller bug, not an unreadable record)
  if (!(key instanceof Uint8Array) || key.length !== RECORD_KEY_BYTES) {
    throw invalidInput('key', `${RECORD_KEY_BYTES} bytes`, key instanceof Uint8Array ? `${key.length} bytes` : typeof key);
  }
  // A non-empty, well-formed record key, bound as associated data
  const aad = recordAad(recordKey);
  const unreadable = (reason: string, cause?: unknown): CustosError =>
    new CustosError('record_unreadable', `record ${recordKey} cannot be read`, {
      details: { recordKey, reason },
      ...(cause === undefined ? {} : { cause }),
    });
  // Three dot-separated parts, version v1
  if (typeof envelope !== 'string') throw unreadable('not a string');
  const parts = envelope.split('.');
  if (parts.length !== 3) throw unreadable('malformed');
  const [version, ivText, bodyText] = parts as [string, string, string];
  if (version !== RECORD_VERSION) throw unreadable('unknown version');
  // Canonical base64url: a 12-byte IV, a body of at least the 16-byte tag
  if (!isCanonicalBase64(ivText, 'base64url') || !isCanonicalBase64(bodyText, 'base64url')) throw unreadable('malformed');
  const iv = Buffer.from(ivText, 'base64url');
  const body = Buffer.from(bodyText, 'base64url');
  if (iv.length !== GCM_IV_BYTES || body.length < GCM_TAG_BYTES) throw unreadable('malformed');
  // Authenticated decryption
  return openAesGcm(key, iv, aad, body, (cause) => unreadable('authentication failed', cause));
}
