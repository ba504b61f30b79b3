import { createHmac } from 'node:crypto';
import { CustosError, invalidInput } from '../errors.js';
import { assertBytes } from './assertBytes.js';
import { loadSecp256k1 } from './loadSecp256k1.js';
import { HARDENED_OFFSET, type HDNode } from './types.js';

/**
 * BIP32 CKDpriv((k_par, c_par), i) → (k_i, c_i), on libsecp256k1.
 *
 * For a non-hardened `index` (< 2^31) the HMAC data starts with the parent's compressed public
 * key; pass it as `parentPublicKey` when already known, otherwise it is computed here. Returns a
 * new node (fresh buffers the caller wipes); the parent is not modified.
 */
export function ckdPriv(parent: HDNode, index: number, parentPublicKey?: Uint8Array): HDNode {
  assertBytes(parent.privateKey, 32, 'parent.privateKey');
  assertBytes(parent.chainCode, 32, 'parent.chainCode');
  if (!Number.isInteger(index) || index < 0 || index > 0xffffffff) {
    throw invalidInput('index', 'an integer in [0, 2^32)', String(index));
  }
  if (parentPublicKey !== undefined) assertBytes(parentPublicKey, 33, 'parentPublicKey');
  const secp = loadSecp256k1();
  const data = new Uint8Array(37);
  const childKey = new Uint8Array(parent.privateKey);
  let i: Buffer | undefined;
  let done = false;
  try {
    if (index >= HARDENED_OFFSET) {
      // hardened: I = HMAC-SHA512(c_par, 0x00 ‖ ser256(k_par) ‖ ser32(i))
      data.set(childKey, 1);
    } else {
      // normal: I = HMAC-SHA512(c_par, serP(point(k_par)) ‖ ser32(i))
      if (parentPublicKey !== undefined) data.set(parentPublicKey, 0);
      else secp.publicKeyCreate(childKey, true, data.subarray(0, 33));
    }
    new DataView(data.buffer).setUint32(33, index, false);
    i = createHmac('sha512', parent.chainCode).update(data).digest();
    // k_i = parse256(I_L) + k_par (mod n); invalid if I_L >= n or k_i = 0 (probability < 2^-127)
    try {
      secp.privateKeyTweakAdd(childKey, i.subarray(0, 32));
    } catch (cause) {
      throw new CustosError('internal', `BIP32 child key at index ${index} is invalid (I_L >= n or k_i = 0)`, { cause });
    }
    const child = { privateKey: childKey, chainCode: new Uint8Array(i.subarray(32, 64)) };
    done = true;
    return child;
  } finally {
    if (!done) childKey.fill(0);
    data.fill(0);
    i?.fill(0);
  }
}
