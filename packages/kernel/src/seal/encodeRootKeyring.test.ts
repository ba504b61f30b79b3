import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeRootKeyring } from './decodeRootKeyring.js';
import { encodeRootKeyring } from './encodeRootKeyring.js';
import type { RootKeyring } from './types.js';

const bytes = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

describe('encodeRootKeyring', () => {
  it('round-trips a seed keyring for every seed length 16..64', () => {
    for (let n = 16; n <= 64; n++) {
      const keyring: RootKeyring = { barrierKey: bytes(32), master: { kind: 'seed', seed: bytes(n) } };
      const encoded = encodeRootKeyring(keyring);
      assert.equal(encoded.length, 35 + n);
      assert.deepEqual(decodeRootKeyring(encoded), keyring);
    }
  });

  it('round-trips an xprv keyring', () => {
    const keyring: RootKeyring = {
      barrierKey: bytes(32),
      master: { kind: 'xprv', privateKey: bytes(32), chainCode: bytes(32) },
    };
    const encoded = encodeRootKeyring(keyring);
    assert.equal(encoded.length, 98);
    assert.deepEqual(decodeRootKeyring(encoded), keyring);
  });

  it('writes the documented layout (version 1, barrier key, kind, payload)', () => {
    const barrierKey = new Uint8Array(32).fill(0xbb);
    const seed = new Uint8Array(16).fill(0x55);
    const encoded = encodeRootKeyring({ barrierKey, master: { kind: 'seed', seed } });
    assert.equal(Buffer.from(encoded).toString('hex'), `01${'bb'.repeat(32)}0110${'55'.repeat(16)}`);
    const xprv = encodeRootKeyring({
      barrierKey,
      master: { kind: 'xprv', privateKey: new Uint8Array(32).fill(0x11), chainCode: new Uint8Array(32).fill(0x22) },
    });
    assert.equal(Buffer.from(xprv).toString('hex'), `01${'bb'.repeat(32)}02${'11'.repeat(32)}${'22'.repeat(32)}`);
  });

  it('returns a fresh buffer: changing the keyring afterwards does not change the encoding', () => {
    const keyring: RootKeyring = { barrierKey: bytes(32), master: { kind: 'seed', seed: bytes(64) } };
    const encoded = encodeRootKeyring(keyring);
    const before = Buffer.from(encoded).toString('hex');
    keyring.barrierKey.fill(0);
    if (keyring.master.kind === 'seed') keyring.master.seed.fill(0);
    assert.equal(Buffer.from(encoded).toString('hex'), before);
  });

  it('refuses wrong lengths and kinds with invalid_input naming the field', () => {
    const cases: [unknown, string][] = [
      [{ barrierKey: bytes(31), master: { kind: 'seed', seed: bytes(32) } }, 'barrierKey'],
      [{ barrierKey: bytes(33), master: { kind: 'seed', seed: bytes(32) } }, 'barrierKey'],
      [{ barrierKey: 'key', master: { kind: 'seed', seed: bytes(32) } }, 'barrierKey'],
      [{ barrierKey: bytes(32), master: { kind: 'seed', seed: bytes(15) } }, 'master.seed'],
      [{ barrierKey: bytes(32), master: { kind: 'seed', seed: bytes(65) } }, 'master.seed'],
      [{ barrierKey: bytes(32), master: { kind: 'xprv', privateKey: bytes(31), chainCode: bytes(32) } }, 'master.privateKey'],
      [{ barrierKey: bytes(32), master: { kind: 'xprv', privateKey: bytes(32), chainCode: bytes(33) } }, 'master.chainCode'],
      [{ barrierKey: bytes(32), master: { kind: 'mnemonic', seed: bytes(32) } }, 'master.kind'],
      [{ barrierKey: bytes(32), master: null }, 'master'],
      [null, 'keyring'],
    ];
    for (const [keyring, field] of cases) {
      assert.throws(() => encodeRootKeyring(keyring as RootKeyring), { name: 'CustosError', code: 'invalid_input', details: { field } });
    }
  });

  it('messages name fields, never key bytes', () => {
    const barrierKey = new Uint8Array(31).fill(0xab);
    try {
      encodeRootKeyring({ barrierKey, master: { kind: 'seed', seed: bytes(32) } });
      assert.fail('expected a throw');
    } catch (e) {
      assert.ok(!String((e as Error).message).includes('ab'.repeat(4)));
      assert.ok(!JSON.stringify(e).includes('ab'.repeat(4)));
    }
  });

  it('decode ∘ encode is the identity (property)', () => {
    const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
    // fc.record builds null-prototype objects; spread them into plain ones like the decoder returns
    const keyring = fc
      .record({
        barrierKey: key32,
        master: fc.oneof(
          fc.record({ kind: fc.constant('seed' as const), seed: fc.uint8Array({ minLength: 16, maxLength: 64 }) }),
          fc.record({ kind: fc.constant('xprv' as const), privateKey: key32, chainCode: key32 }),
        ),
      })
      .map((k): RootKeyring => ({ barrierKey: k.barrierKey, master: { ...k.master } }));
    fc.assert(fc.property(keyring, (k) => assert.deepEqual(decodeRootKeyring(encodeRootKeyring(k)), k)));
  });
});
