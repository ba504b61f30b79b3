import { invalidInput } from '../errors.js';
import { sealAesGcm } from './aesGcm.js';
import { DEFAULT_SCRYPT, deriveKek } from './deriveKek.js';
import { drawRandom } from './drawRandom.js';
import { sealedRootAad } from './sealedRootAad.js';
import {
  GCM_IV_BYTES,
  MAX_ROOT_BYTES,
  SEALED_ROOT_CIPHER,
  SEALED_ROOT_FORMAT,
  SEALED_ROOT_KDF,
  SEALED_ROOT_SALT_BYTES,
  SEALED_ROOT_VERSION,
} from './sealedRootFormat.js';
import type { RandomBytes, ScryptCost, SealedRoot, SealedRootHeader } from './types.js';
import { validateScryptParams } from './validateScryptParams.js';

export type SealRootOptions = {
  /** Secure random bytes: a fresh salt and IV are drawn for every seal. */
  random: RandomBytes;
  /** scrypt cost; defaults to DEFAULT_SCRYPT. Must lie within SCRYPT_BOUNDS. */
  scrypt?: ScryptCost;
};

/**
 * Seals the root (an encoded RootKeyring) under a passphrase: KEK = scrypt(passphrase, fresh salt),
 * then AES-256-GCM with a fresh IV and the whole header as associated data. Returns a
 * JSON-serialisable envelope that holds no secret in the clear. The caller keeps (and wipes) its
 * own root and passphrase; the copies made here are wiped before returning.
 */
export async function sealRoot(root: Uint8Array, passphrase: Uint8Array, { random, scrypt = DEFAULT_SCRYPT }: SealRootOptions): Promise<SealedRoot> {
  // The root: 1..MAX_ROOT_BYTES bytes
  if (!(root instanceof Uint8Array) || root.length === 0 || root.length > MAX_ROOT_BYTES) {
    throw invalidInput('root', `1..${MAX_ROOT_BYTES} bytes`, root instanceof Uint8Array ? `${root.length} bytes` : typeof root);
  }
  // The passphrase: a non-empty byte string
  if (!(passphrase instanceof Uint8Array) || passphrase.length === 0) {
    throw invalidInput('passphrase', 'a non-empty byte string');
  }
  // The random source: a function
  if (typeof random !== 'function') throw invalidInput('random', 'a function (n) => Uint8Array', typeof random);
  // The cost: within bounds (checked again with the salt by deriveKek)
  const salt = drawRandom(random, SEALED_ROOT_SALT_BYTES, 'kdf.salt');
  const params = { N: scrypt.N, r: scrypt.r, p: scrypt.p, salt };
  validateScryptParams(params, 'scrypt');
  const iv = drawRandom(random, GCM_IV_BYTES, 'cipher.iv');

  const header: SealedRootHeader = {
    format: SEALED_ROOT_FORMAT,
    version: SEALED_ROOT_VERSION,
    kdf: { name: SEALED_ROOT_KDF, N: params.N, r: params.r, p: params.p, salt: Buffer.from(salt).toString('base64') },
    cipher: { name: SEALED_ROOT_CIPHER, iv: Buffer.from(iv).toString('base64') },
  };
  // Copy the root now: the caller's buffer may change while scrypt runs
  const plaintext = Uint8Array.from(root);
  let kek: Uint8Array | undefined;
  try {
    kek = await deriveKek(passphrase, params);
    const body = sealAesGcm(kek, iv, sealedRootAad(header), plaintext);
    return { ...header, ciphertext: body.toString('base64') };
  } finally {
    kek?.fill(0);
    plaintext.fill(0);
  }
}
