import { CustosError, invalidInput } from '../errors.js';
import { openAesGcm } from './aesGcm.js';
import { isCanonicalBase64 } from './isCanonicalBase64.js';
import { recordAad } from './recordAad.js';
import { RECORD_KEY_BYTES, RECORD_VERSION } from './recordFormat.js';
import { GCM_IV_BYTES, GCM_TAG_BYTES } from './sealedRootFormat.js';

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
