import { sha256 } from '@noble/hashes/sha2.js';
import { createBase58check } from '@scure/base';
import { CustosError } from '../errors.js';
import { loadSecp256k1 } from './loadSecp256k1.js';
import type { HDNode } from './types.js';

const base58check = createBase58check(sha256);

/** BIP32 serialisation version bytes of extended private keys. */
const PRIVATE_VERSIONS = new Set([0x0488ade4 /* xprv, mainnet */, 0x04358394 /* tprv, testnet */]);
/** ... and of extended public keys, recognised only to say what is wrong. */
const PUBLIC_VERSIONS = new Set([0x0488b21e /* xpub */, 0x043587cf /* tpub */]);
/** 78 bytes encode to 111 base58 characters (plus a few for leading zero bytes, which versions never have). */
const MAX_CHARS = 120;

// The xprv is secret: no message, detail or cause may contain it or any part of it (the base58
// decoder's own error names the offending character, so it is not passed on as `cause`).
function badXprv(expected: string): CustosError {
  return new CustosError('invalid_input', `xprv: expected ${expected}`, { details: { field: 'xprv' } });
}

/**
 * Parses a base58check BIP32 extended private key (`xprv…` mainnet or `tprv…` testnet) into the
 * node it carries. Depth, parent fingerprint and child number are ignored: the node is used as a
 * master. Returns fresh buffers the caller wipes.
 */
export function masterKeyFromXprv(xprv: string): HDNode {
  const expected = 'a base58check BIP32 extended private key (xprv or tprv)';
  if (typeof xprv !== 'string') throw badXprv(`${expected}, got ${typeof xprv}`);
  if (xprv.length === 0 || xprv.length > MAX_CHARS) throw badXprv(`${expected} of at most ${MAX_CHARS} characters`);
  let payload: Uint8Array;
  try {
    payload = base58check.decode(xprv);
  } catch {
    throw badXprv(`${expected}: not base58 or bad checksum`);
  }
  try {
    // BIP32 "Serialization format": 4 version ‖ 1 depth ‖ 4 fingerprint ‖ 4 child number ‖ 32 chain code ‖ 33 key
    if (payload.length !== 78) throw badXprv(`${expected}: a 78-byte payload, got ${payload.length} bytes`);
    const version = new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0, false);
    if (PUBLIC_VERSIONS.has(version)) throw badXprv(`${expected}, got an extended public key`);
    if (!PRIVATE_VERSIONS.has(version)) throw badXprv(`${expected}: unknown version bytes`);
    // private key data is 0x00 ‖ ser256(k)
    if (payload[45] !== 0x00) throw badXprv(`${expected}: key data must start with 0x00`);
    const privateKey = payload.slice(46, 78);
    // BIP32: k must be in [1, n - 1]
    if (!loadSecp256k1().privateKeyVerify(privateKey)) {
      privateKey.fill(0);
      throw badXprv(`${expected}: private key out of range`);
    }
    return { privateKey, chainCode: payload.slice(13, 45) };
  } finally {
    payload.fill(0);
  }
}
