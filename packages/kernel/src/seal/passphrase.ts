// The passphrase unsealer (sealed root version 1): the KEK is scrypt of an operator's passphrase. The
// scrypt parameters, their bounds and the derivation, then sealRoot and unsealRoot side by side.
import { scrypt } from 'node:crypto';
import { CustosError, invalidInput } from '../errors.js';
import { GCM_IV_BYTES, GCM_TAG_BYTES, openAesGcm, sealAesGcm } from './aesGcm.js';
import { drawRandom, type RandomBytes } from './random.js';
import {
  describeValue as describe,
  KEK_BYTES,
  MAX_ROOT_BYTES,
  readBase64,
  readObject,
  SEALED_ROOT_CIPHER,
  SEALED_ROOT_FORMAT,
  SEALED_ROOT_KDF,
  SEALED_ROOT_SALT_BYTES,
  SEALED_ROOT_VERSION,
  type SealedRoot,
  type SealedRootHeader,
  sealedRootAad,
  sealedRootQuorum,
} from './sealedRoot.js';

/** The cost parameters of scrypt (RFC 7914): CPU/memory cost N, block size r, parallelism p. */
export type ScryptCost = { readonly N: number; readonly r: number; readonly p: number };

/** Everything scrypt needs besides the passphrase. */
export type ScryptParams = { readonly N: number; readonly r: number; readonly p: number; readonly salt: Uint8Array };

/**
 * What Custos accepts for scrypt. An envelope asking for more is refused before scrypt runs: the
 * parameters come from a file an attacker may have written, and N·r·p decides how much memory
 * and time opening it costs (denial-of-service guard).
 */
export const SCRYPT_BOUNDS = Object.freeze({
  minN: 2 ** 10,
  maxN: 2 ** 20,
  minR: 1,
  maxR: 32,
  minP: 1,
  maxP: 16,
  minSaltBytes: 16,
  maxSaltBytes: 64,
  /** scrypt's large array, 128·r·N bytes: at most 256 MiB, twice what the default cost (N = 2^17, r = 8) needs. */
  maxMemoryBytes: 2 ** 28,
  /** The work, 128·r·N·p bytes mixed: at most 512 MiB, four times the default's. */
  maxWorkBytes: 2 ** 29,
});

function describeParam(value: unknown): string {
  return typeof value === 'number' ? String(value) : typeof value;
}

/**
 * Checks scrypt parameters against SCRYPT_BOUNDS; throws invalid_input naming `${field}.N`,
 * `${field}.r`, `${field}.p` or `${field}.salt` (expected vs. got; never the salt's bytes).
 */
export function validateScryptParams(params: unknown, field = 'scrypt'): asserts params is ScryptParams {
  const b = SCRYPT_BOUNDS;
  // An object holding the parameters
  if (typeof params !== 'object' || params === null) throw invalidInput(field, 'an object', describeParam(params));
  const { N, r, p, salt } = params as Record<string, unknown>;
  // N: a power of two in [2^10, 2^20]
  if (typeof N !== 'number' || !Number.isSafeInteger(N) || N < b.minN || N > b.maxN || (N & (N - 1)) !== 0) {
    throw invalidInput(`${field}.N`, 'a power of two in [2^10, 2^20]', describeParam(N));
  }
  // r: an integer in [1, 32]
  if (typeof r !== 'number' || !Number.isSafeInteger(r) || r < b.minR || r > b.maxR) {
    throw invalidInput(`${field}.r`, `an integer in [${b.minR}, ${b.maxR}]`, describeParam(r));
  }
  // RFC 7914 §2: N < 2^(128·r/8); only binds when r = 1 (N < 2^16)
  if (r === 1 && N >= 2 ** 16) throw invalidInput(`${field}.N`, 'N < 2^16 when r = 1 (RFC 7914)', describeParam(N));
  // p: an integer in [1, 16]
  if (typeof p !== 'number' || !Number.isSafeInteger(p) || p < b.minP || p > b.maxP) {
    throw invalidInput(`${field}.p`, `an integer in [${b.minP}, ${b.maxP}]`, describeParam(p));
  }
  // Each parameter within its bound is not enough: N = 2^20 with r = 32 asks for 4 GiB (and p = 16
  // times that work). The envelope comes from the store — someone who can write to it could make
  // every unseal exhaust the server's memory — so bound the products too.
  if (128 * r * N > b.maxMemoryBytes) {
    throw invalidInput(`${field}.r`, `N and r needing at most ${b.maxMemoryBytes / 2 ** 20} MiB (128·r·N bytes)`, `${(128 * r * N) / 2 ** 20} MiB`);
  }
  if (128 * r * N * p > b.maxWorkBytes) {
    throw invalidInput(
      `${field}.p`,
      `N, r and p costing at most ${b.maxWorkBytes / 2 ** 20} MiB of mixing (128·r·N·p bytes)`,
      `${(128 * r * N * p) / 2 ** 20} MiB`,
    );
  }
  // salt: 16..64 bytes
  if (!(salt instanceof Uint8Array) || salt.length < b.minSaltBytes || salt.length > b.maxSaltBytes) {
    const got = salt instanceof Uint8Array ? `${salt.length} bytes` : typeof salt;
    throw invalidInput(`${field}.salt`, `${b.minSaltBytes}..${b.maxSaltBytes} bytes`, got);
  }
}

/** The cost sealRoot uses unless told otherwise (≈128 MiB of memory per derivation). */
export const DEFAULT_SCRYPT: ScryptCost = Object.freeze({ N: 2 ** 17, r: 8, p: 1 });

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

export type SealRootOptions = {
  /** Secure random bytes: a fresh salt and IV are drawn for every seal. */
  random: RandomBytes;
  /** scrypt cost; defaults to DEFAULT_SCRYPT. Must lie within SCRYPT_BOUNDS. */
  scrypt?: ScryptCost;
  /** Mark the envelope "an admin quorum is configured" (sealedRootQuorum). */
  quorum?: boolean;
};

/**
 * Seals the root (an encoded RootKeyring) under a passphrase: KEK = scrypt(passphrase, fresh salt),
 * then AES-256-GCM with a fresh IV and the whole header as associated data. Returns a
 * JSON-serialisable envelope that holds no secret in the clear. The caller keeps (and wipes) its
 * own root and passphrase; the copies made here are wiped before returning.
 */
export async function sealRoot(
  root: Uint8Array,
  passphrase: Uint8Array,
  { random, scrypt = DEFAULT_SCRYPT, quorum = false }: SealRootOptions,
): Promise<SealedRoot> {
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
    ...(quorum ? { quorum: true as const } : {}),
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
  const top = readObject(envelope, 'envelope', ['format', 'version', 'kdf', 'cipher', 'ciphertext', 'quorum']);
  // The quorum mark (issue 13): authenticated with the rest of the header
  const quorum = sealedRootQuorum(top);
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
    ...(quorum ? { quorum: true as const } : {}),
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
