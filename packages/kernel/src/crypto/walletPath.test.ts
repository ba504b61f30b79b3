import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { CustosError } from '../errors.js';
import { loadVectors } from '../testing/loadVectors.js';
import { formatPath } from './formatPath.js';
import { walletPath } from './walletPath.js';

interface PathVector {
  walletName: string;
  keyIndex: string | number;
  path: string;
}
const fortanix = loadVectors<{ fortanixV1: { vectors: PathVector[] } }>('secp256k1-ethereum.json').fortanixV1.vectors;
const custos = loadVectors<{ vectors: (PathVector & { walletNameUtf8Hex: string })[] }>('custos-v1.json').vectors;
const H = 0x80000000;

test('fortanix-v1 paths of the published vectors', () => {
  assert.equal(fortanix.length, 4);
  for (const v of fortanix) assert.equal(formatPath(walletPath('fortanix-v1', v.walletName, Number(v.keyIndex))), v.path);
});

test('fortanix-v1: the eight big-endian words of SHA-256(base64(UTF-8 name)) as they are, then keyIndex non-hardened', () => {
  const name = 'ünïcødé wallet';
  const h = createHash('sha256').update(Buffer.from(name, 'utf8').toString('base64')).digest();
  const words = Array.from({ length: 8 }, (_, i) => h.readUInt32BE(4 * i));
  assert.deepEqual(walletPath('fortanix-v1', name, 7), [...words, 7]);
  assert.ok(words.some((w) => w >= H) && words.some((w) => w < H), 'this name mixes hardened and non-hardened words');
});

test('custos-v1 paths of test/vectors/custos-v1.json', () => {
  assert.equal(custos.length, 4);
  for (const v of custos) {
    assert.equal(Buffer.from(v.walletName, 'utf8').toString('hex'), v.walletNameUtf8Hex);
    assert.equal(formatPath(walletPath('custos-v1', v.walletName, Number(v.keyIndex))), v.path);
  }
});

test('custos-v1: m/0x43555354\'/five LE words of SHA-256("custos-v1:" ‖ name), hardened/keyIndex\', all hardened', () => {
  const name = 'alice@acme.com';
  const h = createHash('sha256').update(`custos-v1:${name}`, 'utf8').digest();
  const words = Array.from({ length: 5 }, (_, i) => (h.readUInt32LE(4 * i) % H) + H);
  const path = walletPath('custos-v1', name, 2 ** 31 - 1);
  assert.deepEqual(path, [0x43555354 + H, ...words, 2 ** 32 - 1]);
  assert.equal(path[0], 1129665364 + H);
  assert.equal(Buffer.from([0x43, 0x55, 0x53, 0x54]).toString('ascii'), 'CUST');
  assert.ok(path.every((i) => i >= H && i < 2 ** 32));
});

test('names are not normalised: NFC and NFD spellings, case and spaces give different paths', () => {
  for (const scheme of ['custos-v1', 'fortanix-v1'] as const) {
    const paths = ['é', 'é'.normalize('NFD'), 'E', 'e', ' e', 'e ', ' '].map((n) => formatPath(walletPath(scheme, n, 0)));
    assert.equal(new Set(paths).size, paths.length, scheme);
  }
});

function assertInvalid(fn: () => unknown, field: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof CustosError, String(error));
    assert.equal(error.code, 'invalid_input');
    assert.equal(error.details.field, field);
    assert.match(error.message, new RegExp(`^${field}: expected `));
    return true;
  });
}

test('bad keyIndex, walletName and scheme are invalid_input naming the field', () => {
  for (const scheme of ['custos-v1', 'fortanix-v1'] as const) {
    for (const keyIndex of [-1, 2 ** 31, 2 ** 32, 1.5, Number.NaN, Number.POSITIVE_INFINITY, -0.5]) {
      assertInvalid(() => walletPath(scheme, 'alice', keyIndex), 'keyIndex');
    }
    for (const keyIndex of ['0', 0n, null, undefined]) {
      assertInvalid(() => walletPath(scheme, 'alice', keyIndex as unknown as number), 'keyIndex');
    }
    for (const walletName of ['', '\uD800', 'a\uDC00b', 42, null, undefined]) {
      assertInvalid(() => walletPath(scheme, walletName as string, 0), 'walletName');
    }
    assert.equal(walletPath(scheme, 'alice', 0).length, scheme === 'custos-v1' ? 7 : 9);
    assert.equal(walletPath(scheme, 'alice', 2 ** 31 - 1).length, scheme === 'custos-v1' ? 7 : 9);
  }
  assertInvalid(() => walletPath('bip44' as 'custos-v1', 'alice', 0), 'scheme');
});
