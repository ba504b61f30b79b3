import { createHmac } from 'node:crypto';
import { CustosError, invalidInput } from '../errors.js';
import { loadSecp256k1 } from './loadSecp256k1.js';
import type { HDNode } from './types.js';

const BITCOIN_SEED = Buffer.from('Bitcoin seed', 'ascii');

/**
 * BIP32 master key generation: I = HMAC-SHA512(key = "Bitcoin seed", data = seed),
 * master private key = I[0..32), master chain code = I[32..64). Returns fresh buffers the
 * caller wipes; the seed is not modified.
 */
export function masterKeyFromSeed(seed: Uint8Array): HDNode {
  // BIP32 "Master key generation": a seed of 128 to 512 bits
  if (!(seed instanceof Uint8Array)) throw invalidInput('seed', 'a Uint8Array of 16 to 64 bytes', typeof seed);
  if (seed.length < 16 || seed.length > 64) throw invalidInput('seed', 'a Uint8Array of 16 to 64 bytes', `${seed.length} bytes`);
  const i = createHmac('sha512', BITCOIN_SEED).update(seed).digest();
  const privateKey = new Uint8Array(i.subarray(0, 32));
  const chainCode = new Uint8Array(i.subarray(32, 64));
  i.fill(0);
  // BIP32: if parse256(IL) is 0 or >= n, the master key is invalid
  if (!loadSecp256k1().privateKeyVerify(privateKey)) {
    privateKey.fill(0);
    chainCode.fill(0);
    throw new CustosError('invalid_input', 'seed: yields an invalid BIP32 master key (IL = 0 or IL >= n); use another seed', {
      details: { field: 'seed' },
    });
  }
  return { privateKey, chainCode };
}
