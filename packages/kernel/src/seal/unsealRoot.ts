import { CustosError, invalidInput } from '../errors.js';
import { openAesGcm } from './aesGcm.js';
import { deriveKek } from './deriveKek.js';
import { describeValue as describe, readBase64, readObject } from './readEnvelopeMembers.js';
import { sealedRootAad } from './sealedRootAad.js';
import {
  GCM_IV_BYTES,
  GCM_TAG_BYTES,
  MAX_ROOT_BYTES,
  SEALED_ROOT_CIPHER,
  SEALED_ROOT_FORMAT,
  SEALED_ROOT_KDF,
  SEALED_ROOT_VERSION,
} from './sealedRootFormat.js';
import type { SealedRootHeader } from './types.js';
import { SCRYPT_BOUNDS, validateScryptParams } from './validateScryptParams.js';

/**
 * Opens a sealed root with a passphrase and returns the plaintext (the caller's own copy: wipe it
 * when done). The envelope is untrusted input: its shape is checked strictly and its scrypt
 * parameters are bounds-checked before scrypt runs (invalid_input naming the field). A wrong
 * passphrase or any change to the envelope — ciphertext, tag, IV, salt, cost — is 'unseal_failed'.
 */
export async function unsealRoot(envelope: unknown, passphrase: Uint8Array): Promise<Uint8Array> {
  // The passphrase: a non-empty byte string
  if (!(passphrase instanceof Uint8Array) || passphrase.length === 0) {
    throw invalidInput('passphrase', 'a non-empty byte string');
  }
  // The envelope: an object of a known format and version (before looking at anything else)
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) {
    throw invalidInput('envelope', 'a sealed-root object', describe(envelope));
  }
  const { format, version } = envelope as Record<string, unknown>;
  if (format !== SEALED_ROOT_FORMAT) throw invalidInput('format', JSON.stringify(SEALED_ROOT_FORMAT), describe(format));
  if (version !== SEALED_ROOT_VERSION) throw invalidInput('version', String(SEALED_ROOT_VERSION), describe(version));
  const top = readObject(envelope, 'envelope', ['format', 'version', 'kdf', 'cipher', 'ciphertext']);
  // kdf: scrypt within SCRYPT_BOUNDS — checked here, before any scrypt runs
  const kdf = readObject(top.kdf, 'kdf', ['name', 'N', 'r', 'p', 'salt']);
  if (kdf.name !== SEALED_ROOT_KDF) throw invalidInput('kdf.name', JSON.stringify(SEALED_ROOT_KDF), describe(kdf.name));
  const salt = readBase64(kdf.salt, 'kdf.salt', SCRYPT_BOUNDS.minSaltBytes, SCRYPT_BOUNDS.maxSaltBytes);
  const params = { N: kdf.N, r: kdf.r, p: kdf.p, salt };
  validateScryptParams(params, 'kdf');
  // cipher: AES-256-GCM with a 12-byte IV
  const cipher = readObject(top.cipher, 'cipher', ['name', 'iv']);
  if (cipher.name !== SEALED_ROOT_CIPHER) {
    throw invalidInput('cipher.name', JSON.stringify(SEALED_ROOT_CIPHER), describe(cipher.name));
  }
  const iv = readBase64(cipher.iv, 'cipher.iv', GCM_IV_BYTES, GCM_IV_BYTES);
  // ciphertext: at least one byte of plaintext plus the 16-byte tag
  const body = readBase64(top.ciphertext, 'ciphertext', 1 + GCM_TAG_BYTES, MAX_ROOT_BYTES + GCM_TAG_BYTES);

  const header: SealedRootHeader = {
    format: SEALED_ROOT_FORMAT,
    version: SEALED_ROOT_VERSION,
    kdf: { name: SEALED_ROOT_KDF, N: params.N, r: params.r, p: params.p, salt: kdf.salt as string },
    cipher: { name: SEALED_ROOT_CIPHER, iv: cipher.iv as string },
  };
  const kek = await deriveKek(passphrase, params);
  try {
    return openAesGcm(
      kek,
      iv,
      sealedRootAad(header),
      body,
      (cause) => new CustosError('unseal_failed', 'the passphrase does not open the sealed root, or the envelope was altered', { cause }),
    );
  } finally {
    kek.fill(0);
  }
}
