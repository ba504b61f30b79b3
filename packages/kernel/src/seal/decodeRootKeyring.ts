import { CustosError } from '../errors.js';
import {
  BARRIER_KEY_BYTES,
  KEYRING_KIND_SEED,
  KEYRING_KIND_XPRV,
  KEYRING_VERSION,
  SEED_MAX_BYTES,
  SEED_MIN_BYTES,
  XPRV_CHAIN_CODE_BYTES,
  XPRV_KEY_BYTES,
} from './keyringFormat.js';
import type { RootKeyring } from './types.js';

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
