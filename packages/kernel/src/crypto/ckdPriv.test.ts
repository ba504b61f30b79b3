import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HDKey } from '@scure/bip32';
import { CustosError } from '../errors.js';
import { ckdPriv } from './ckdPriv.js';
import { getPublicKey } from './getPublicKey.js';
import { masterKeyFromSeed } from './masterKeyFromSeed.js';
import { HARDENED_OFFSET, type HDNode } from './types.js';

const hex = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('hex');
const seed = new Uint8Array(Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex'));
const H = HARDENED_OFFSET;

test('BIP32 test vector 1 chain m/0H/1/2H/2/1000000000 equals @scure/bip32 level by level', () => {
  const root = HDKey.fromMasterSeed(seed);
  const indexes = [0 + H, 1, 2 + H, 2, 1000000000];
  const names = ["0'", '1', "2'", '2', '1000000000'];
  let node: HDNode = masterKeyFromSeed(seed);
  let path = 'm';
  for (const [level, index] of indexes.entries()) {
    node = ckdPriv(node, index);
    path += `/${names[level]}`;
    const expected = root.derive(path);
    assert.equal(hex(node.privateKey), hex(expected.privateKey), path);
    assert.equal(hex(node.chainCode), hex(expected.chainCode), path);
  }
  // the published extended key of m/0H/1/2H/2/1000000000
  const published = HDKey.fromExtendedKey('xprvA41z7zogVVwxVSgdKUHDy1SKmdb533PjDz7J6N6mV6uS3ze1ai8FHa8kmHScGpWmj4WggLyQjgPie1rFSruoUihUZREPSL39UNdE3BBDu76');
  assert.equal(hex(node.privateKey), hex(published.privateKey));
  assert.equal(hex(node.chainCode), hex(published.chainCode));
});

test('a precomputed parent public key gives the same child; the parent is not modified', () => {
  const parent = masterKeyFromSeed(seed);
  const before = hex(parent.privateKey) + hex(parent.chainCode);
  const a = ckdPriv(parent, 7);
  const b = ckdPriv(parent, 7, getPublicKey(parent.privateKey));
  assert.equal(hex(a.privateKey), hex(b.privateKey));
  assert.equal(hex(a.chainCode), hex(b.chainCode));
  // a wrong parent public key changes the (non-hardened) result: it really is used
  const wrong = ckdPriv(parent, 7, getPublicKey(a.privateKey));
  assert.notEqual(hex(wrong.privateKey), hex(a.privateKey));
  // for a hardened index the public key is not used
  assert.equal(hex(ckdPriv(parent, 7 + H, getPublicKey(a.privateKey)).privateKey), hex(ckdPriv(parent, 7 + H).privateKey));
  assert.equal(hex(parent.privateKey) + hex(parent.chainCode), before);
  assert.notEqual(a.privateKey.buffer, parent.privateKey.buffer);
});

test('ckdPriv rejects bad indexes, nodes and parent public keys with invalid_input', () => {
  const parent = masterKeyFromSeed(seed);
  const cases: [() => unknown, string][] = [
    [() => ckdPriv(parent, -1), 'index'],
    [() => ckdPriv(parent, 2 ** 32), 'index'],
    [() => ckdPriv(parent, 1.5), 'index'],
    [() => ckdPriv(parent, Number.NaN), 'index'],
    [() => ckdPriv({ privateKey: new Uint8Array(31), chainCode: parent.chainCode }, 0), 'parent.privateKey'],
    [() => ckdPriv({ privateKey: parent.privateKey, chainCode: new Uint8Array(64) }, 0), 'parent.chainCode'],
    [() => ckdPriv(parent, 0, new Uint8Array(65)), 'parentPublicKey'],
  ];
  for (const [fn, field] of cases) {
    assert.throws(fn, (error: unknown) => error instanceof CustosError && error.code === 'invalid_input' && error.details.field === field, field);
  }
});
