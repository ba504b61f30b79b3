import { invalidInput } from '../errors.js';
import { HARDENED_OFFSET } from './types.js';

/**
 * The first `count` little-endian uint32 words of `hash`, each with the hardened bit set
 * (word | 2^31), as SLIP-0013 turns a hash into BIP32 child indexes. Each index keeps 31 bits of
 * the hash.
 */
export function hashToHardenedWords(hash: Uint8Array, count: number): number[] {
  if (!(hash instanceof Uint8Array)) throw invalidInput('hash', 'a Uint8Array', typeof hash);
  if (!Number.isInteger(count) || count < 0 || count * 4 > hash.length) {
    throw invalidInput('count', `an integer in [0, ${hash.length >> 2}]`, String(count));
  }
  const view = new DataView(hash.buffer, hash.byteOffset, hash.length);
  const words: number[] = [];
  for (let i = 0; i < count; i++) words.push((view.getUint32(4 * i, true) | HARDENED_OFFSET) >>> 0);
  return words;
}
