import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { CustosError } from '../errors.js';
import { loadVectors } from '../testing/loadVectors.js';
import { hashToHardenedWords } from './hashToHardenedWords.js';

interface Slip13 {
  index: number;
  uri: string;
  sha256: string;
  childIndexes: number[];
}
const { slip0013 } = loadVectors<{ slip0013: Slip13 }>('secp256k1-ethereum.json');

test('SLIP-0013 example: 13H then the first four LE words of sha256(uint32le(index) ‖ uri), hardened', () => {
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32LE(slip0013.index);
  const hash = createHash('sha256').update(prefix).update(slip0013.uri, 'utf8').digest();
  assert.equal(hash.toString('hex'), slip0013.sha256);
  const indexes = [(13 | 0x80000000) >>> 0, ...hashToHardenedWords(hash, 4)];
  assert.deepEqual(indexes, slip0013.childIndexes);
});

test('hashToHardenedWords reads little-endian words at any byteOffset and sets only the top bit', () => {
  const backing = new Uint8Array(12);
  backing.set([0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x88], 3);
  const view = backing.subarray(4, 12);
  assert.deepEqual(hashToHardenedWords(view, 2), [0x84030201, 0x88070605]);
  assert.deepEqual(hashToHardenedWords(view, 0), []);
});

test('hashToHardenedWords rejects a count beyond the hash', () => {
  for (const count of [-1, 9, 1.5]) {
    assert.throws(
      () => hashToHardenedWords(new Uint8Array(32), count),
      (error: unknown) => error instanceof CustosError && error.code === 'invalid_input' && error.details.field === 'count',
    );
  }
});
