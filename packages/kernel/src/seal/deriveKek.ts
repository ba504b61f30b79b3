import { scrypt } from 'node:crypto';
import { CustosError, invalidInput } from '../errors.js';
import type { ScryptCost, ScryptParams } from './types.js';
import { validateScryptParams } from './validateScryptParams.js';

export type { ScryptCost, ScryptParams } from './types.js';

/** The cost sealRoot uses unless told otherwise (≈128 MiB of memory per derivation). */
export const DEFAULT_SCRYPT: ScryptCost = Object.freeze({ N: 2 ** 17, r: 8, p: 1 });

/** Length of the key-encryption key: an AES-256 key. */
export const KEK_BYTES = 32;

/**
 * Derives the 32-byte key-encryption key from a passphrase with scrypt (node:crypto, run off the
 * event loop). The parameters are bounds-checked first. The passphrase and salt are copied in
 * before anything is awaited, the returned key is the caller's own copy: wipe it when done.
 */
export async function deriveKek(passphrase: Uint8Array, params: ScryptParams): Promise<Uint8Array> {
  // A non-empty byte string (text passphrases are UTF-8 encoded by the caller)
  if (!(passphrase instanceof Uint8Array) || passphrase.length === 0) {
    throw invalidInput('passphrase', 'a non-empty byte string');
  }
  // Bounds before any work
  validateScryptParams(params);
  const { N, r, p } = params;
  const password = Uint8Array.from(passphrase);
  const salt = Uint8Array.from(params.salt);
  // scrypt needs 128·r·(N + 2) bytes for V plus 128·r·p for B; OpenSSL refuses more than maxmem
  const maxmem = 128 * r * (N + 2 + p);
  let derived: Buffer;
  try {
    derived = await new Promise<Buffer>((resolve, reject) => {
      scrypt(password, salt, KEK_BYTES, { N, r, p, maxmem }, (err, key) => (err ? reject(err) : resolve(key)));
    });
  } catch (cause) {
    throw new CustosError('internal', 'scrypt failed to derive the key-encryption key', { cause });
  } finally {
    password.fill(0);
  }
  const kek = Uint8Array.from(derived);
  derived.fill(0);
  return kek;
}
