import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { RootKeyring } from './types.js';
import { wipeRootKeyring } from './wipeRootKeyring.js';

const filled = (n: number): Uint8Array => new Uint8Array(randomBytes(n)).map((b) => b | 1);
const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0);

describe('wipeRootKeyring', () => {
  it('zeroes the barrier key and the seed', () => {
    const keyring: RootKeyring = { barrierKey: filled(32), master: { kind: 'seed', seed: filled(64) } };
    const { barrierKey, master } = keyring;
    wipeRootKeyring(keyring);
    assert.ok(isZero(barrierKey));
    assert.ok(master.kind === 'seed' && isZero(master.seed));
    assert.equal(master.kind === 'seed' && master.seed.length, 64);
  });

  it('zeroes the barrier key, the private key and the chain code', () => {
    const keyring: RootKeyring = {
      barrierKey: filled(32),
      master: { kind: 'xprv', privateKey: filled(32), chainCode: filled(32) },
    };
    wipeRootKeyring(keyring);
    assert.ok(isZero(keyring.barrierKey));
    assert.ok(keyring.master.kind === 'xprv' && isZero(keyring.master.privateKey) && isZero(keyring.master.chainCode));
  });
});
