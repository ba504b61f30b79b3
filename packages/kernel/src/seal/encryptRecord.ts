import { invalidInput } from '../errors.js';
import { sealAesGcm } from './aesGcm.js';
import { drawRandom } from './drawRandom.js';
import { recordAad } from './recordAad.js';
import { RECORD_KEY_BYTES, RECORD_VERSION } from './recordFormat.js';
import { GCM_IV_BYTES } from './sealedRootFormat.js';
import type { RandomBytes } from './types.js';

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
