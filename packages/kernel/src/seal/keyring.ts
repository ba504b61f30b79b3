// The root keyring, the plaintext every unsealer seals: its type, its binary layout (version 1),
// encodeRootKeyring and decodeRootKeyring side by side, and wipeRootKeyring.
import { CustosError, invalidInput } from '../errors.js';

/** The master secret from which every wallet key is derived. */
export type RootMaster =
  | { kind: 'seed' /** BIP39/BIP32 seed, 16..64 bytes */; seed: Uint8Array }
  | { kind: 'xprv' /** 32 bytes */; privateKey: Uint8Array /** 32 bytes */; chainCode: Uint8Array };

/** The plaintext that is sealed: the barrier's record key and the derivation master. */
export type RootKeyring = {
  /** 32 bytes: the AES-256-GCM key of the barrier's records */
  barrierKey: Uint8Array;
  master: RootMaster;
};

/**
 * Binary layout of an encoded RootKeyring, version 1:
 *   [0]        version = 1
 *   [1..33)    barrierKey (32 bytes)
 *   [33]       kind: 1 = seed, 2 = xprv
 *   seed:  [34] = L (16..64), [35..35+L) seed            total 35 + L
 *   xprv:  [34..66) privateKey, [66..98) chainCode       total 98
 */
export const KEYRING_VERSION = 1;
export const KEYRING_KIND_SEED = 1;
export const KEYRING_KIND_XPRV = 2;
export const BARRIER_KEY_BYTES = 32;
export const SEED_MIN_BYTES = 16;
export const SEED_MAX_BYTES = 64;
export const XPRV_KEY_BYTES = 32;
export const XPRV_CHAIN_CODE_BYTES = 32;

function assertBytes(value: unknown, field: string, min: number, max: number): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length < min || value.length > max) {
    const expected = min === max ? `${min} bytes` : `${min}..${max} bytes`;
    throw invalidInput(field, expected, value instanceof Uint8Array ? `${value.length} bytes` : typeof value);
  }
  return value;
}

/**
 * Encodes a RootKeyring as the binary plaintext that sealRoot seals (layout above).
 * Returns a fresh buffer holding secrets: the caller wipes it after sealing.
 */
export function encodeRootKeyring(keyring: RootKeyring): Uint8Array {
  // An object with a 32-byte barrier key
  if (typeof keyring !== 'object' || keyring === null) throw invalidInput('keyring', 'an object', typeof keyring);
  const barrierKey = assertBytes(keyring.barrierKey, 'barrierKey', BARRIER_KEY_BYTES, BARRIER_KEY_BYTES);
  const master: unknown = keyring.master;
  if (typeof master !== 'object' || master === null) throw invalidInput('master', 'an object', typeof master);
  const { kind } = master as { kind?: unknown };
  // kind 'seed': a 16..64-byte BIP32 seed
  if (kind === 'seed') {
    const seed = assertBytes((master as { seed?: unknown }).seed, 'master.seed', SEED_MIN_BYTES, SEED_MAX_BYTES);
    const out = new Uint8Array(1 + BARRIER_KEY_BYTES + 2 + seed.length);
    out[0] = KEYRING_VERSION;
    out.set(barrierKey, 1);
    out[1 + BARRIER_KEY_BYTES] = KEYRING_KIND_SEED;
    out[2 + BARRIER_KEY_BYTES] = seed.length;
    out.set(seed, 3 + BARRIER_KEY_BYTES);
    return out;
  }
  // kind 'xprv': a 32-byte private key and a 32-byte chain code
  if (kind === 'xprv') {
    const { privateKey, chainCode } = master as { privateKey?: unknown; chainCode?: unknown };
    const key = assertBytes(privateKey, 'master.privateKey', XPRV_KEY_BYTES, XPRV_KEY_BYTES);
    const code = assertBytes(chainCode, 'master.chainCode', XPRV_CHAIN_CODE_BYTES, XPRV_CHAIN_CODE_BYTES);
    const out = new Uint8Array(1 + BARRIER_KEY_BYTES + 1 + XPRV_KEY_BYTES + XPRV_CHAIN_CODE_BYTES);
    out[0] = KEYRING_VERSION;
    out.set(barrierKey, 1);
    out[1 + BARRIER_KEY_BYTES] = KEYRING_KIND_XPRV;
    out.set(key, 2 + BARRIER_KEY_BYTES);
    out.set(code, 2 + BARRIER_KEY_BYTES + XPRV_KEY_BYTES);
    return out;
  }
  throw invalidInput('master.kind', '"seed" or "xprv"', typeof kind === 'string' ? 'another string' : typeof kind);
}

/** The keyring was authenticated by the seal, so a malformed one is a bug, not an attack. */
function malformed(reason: string): CustosError {
  return new CustosError('internal', `the unsealed root keyring is malformed: ${reason}`, { details: { reason } });
}

/** A copy of bytes [start, end) in its own buffer (a subarray, or Buffer#slice, would alias the input). */
function copy(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(bytes.subarray(start, end));
  return out;
}

/**
 * Decodes the plaintext of an unsealed root into a RootKeyring. Every length is checked; every
 * buffer returned is a fresh copy, so the caller can wipe the input at once (and should wipe the
 * result with wipeRootKeyring on seal). A malformed encoding throws 'internal'.
 */
export function decodeRootKeyring(bytes: Uint8Array): RootKeyring {
  // Bytes, starting with version 1
  if (!(bytes instanceof Uint8Array)) throw malformed(`expected bytes, got ${typeof bytes}`);
  const kindAt = 1 + BARRIER_KEY_BYTES;
  if (bytes.length < kindAt + 1) throw malformed(`${bytes.length} bytes is too short`);
  if (bytes[0] !== KEYRING_VERSION) throw malformed(`unknown version ${bytes[0]}`);
  const kind = bytes[kindAt];
  // kind seed: a length byte in 16..64, then exactly that many bytes
  if (kind === KEYRING_KIND_SEED) {
    const seedLength = bytes[kindAt + 1];
    if (seedLength === undefined) throw malformed('seed length missing');
    if (seedLength < SEED_MIN_BYTES || seedLength > SEED_MAX_BYTES) {
      throw malformed(`seed length ${seedLength} outside ${SEED_MIN_BYTES}..${SEED_MAX_BYTES}`);
    }
    const seedAt = kindAt + 2;
    if (bytes.length !== seedAt + seedLength) {
      throw malformed(`expected ${seedAt + seedLength} bytes for a ${seedLength}-byte seed, got ${bytes.length}`);
    }
    return {
      barrierKey: copy(bytes, 1, kindAt),
      master: { kind: 'seed', seed: copy(bytes, seedAt, seedAt + seedLength) },
    };
  }
  // kind xprv: exactly a 32-byte private key and a 32-byte chain code
  if (kind === KEYRING_KIND_XPRV) {
    const keyAt = kindAt + 1;
    const codeAt = keyAt + XPRV_KEY_BYTES;
    const end = codeAt + XPRV_CHAIN_CODE_BYTES;
    if (bytes.length !== end) throw malformed(`expected ${end} bytes for an xprv master, got ${bytes.length}`);
    return {
      barrierKey: copy(bytes, 1, kindAt),
      master: { kind: 'xprv', privateKey: copy(bytes, keyAt, codeAt), chainCode: copy(bytes, codeAt, end) },
    };
  }
  throw malformed(`unknown master kind ${kind}`);
}

/** Zeroes every buffer of a keyring in place (on seal, and after sealing a freshly made one). */
export function wipeRootKeyring(keyring: RootKeyring): void {
  keyring.barrierKey.fill(0);
  const { master } = keyring;
  if (master.kind === 'seed') {
    master.seed.fill(0);
  } else {
    master.privateKey.fill(0);
    master.chainCode.fill(0);
  }
}
