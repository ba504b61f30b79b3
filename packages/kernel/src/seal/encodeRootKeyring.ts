import { invalidInput } from '../errors.js';
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

function assertBytes(value: unknown, field: string, min: number, max: number): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length < min || value.length > max) {
    const expected = min === max ? `${min} bytes` : `${min}..${max} bytes`;
    throw invalidInput(field, expected, value instanceof Uint8Array ? `${value.length} bytes` : typeof value);
  }
  return value;
}

/**
 * Encodes a RootKeyring as the binary plaintext that sealRoot seals (layout in keyringFormat.ts).
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
