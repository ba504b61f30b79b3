import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { sealRoot } from './sealRoot.js';
import type { SealedRoot } from './types.js';
import { unsealRoot } from './unsealRoot.js';

const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const fast = { N: 2 ** 10, r: 8, p: 1 };
const passphrase = new TextEncoder().encode('correct horse battery staple');

describe('sealRoot', () => {
  it('round-trips through unsealRoot, also through JSON', async () => {
    const root = random(98);
    const sealed = await sealRoot(root, passphrase, { random, scrypt: fast });
    assert.deepEqual(await unsealRoot(sealed, passphrase), root);
    assert.deepEqual(await unsealRoot(JSON.parse(JSON.stringify(sealed)), passphrase), root);
  });

  it('round-trips once with DEFAULT_SCRYPT, which it uses when no cost is given', async () => {
    const root = random(35 + 64);
    const sealed = await sealRoot(root, passphrase, { random });
    assert.deepEqual({ N: sealed.kdf.N, r: sealed.kdf.r, p: sealed.kdf.p }, { N: 2 ** 17, r: 8, p: 1 });
    assert.deepEqual(await unsealRoot(sealed, passphrase), root);
  });

  it('writes the versioned envelope shape', async () => {
    const sealed = await sealRoot(random(50), passphrase, { random, scrypt: fast });
    assert.deepEqual(Object.keys(sealed).sort(), ['cipher', 'ciphertext', 'format', 'kdf', 'version']);
    assert.equal(sealed.format, 'custos.sealed-root');
    assert.equal(sealed.version, 1);
    assert.deepEqual(Object.keys(sealed.kdf).sort(), ['N', 'name', 'p', 'r', 'salt']);
    assert.equal(sealed.kdf.name, 'scrypt');
    assert.equal(Buffer.from(sealed.kdf.salt, 'base64').length, 32);
    assert.deepEqual(Object.keys(sealed.cipher).sort(), ['iv', 'name']);
    assert.equal(sealed.cipher.name, 'aes-256-gcm');
    assert.equal(Buffer.from(sealed.cipher.iv, 'base64').length, 12);
    assert.equal(Buffer.from(sealed.ciphertext, 'base64').length, 50 + 16);
  });

  it('draws a fresh salt and IV each time: two seals of the same root differ', async () => {
    const root = random(98);
    const a = await sealRoot(root, passphrase, { random, scrypt: fast });
    const b = await sealRoot(root, passphrase, { random, scrypt: fast });
    assert.notEqual(a.kdf.salt, b.kdf.salt);
    assert.notEqual(a.cipher.iv, b.cipher.iv);
    assert.notEqual(a.ciphertext, b.ciphertext);
  });

  it('uses the salt and IV from the injected random source', async () => {
    const draws: number[] = [];
    const counting = (n: number): Uint8Array => {
      draws.push(n);
      return new Uint8Array(n).fill(draws.length);
    };
    const sealed = await sealRoot(random(40), passphrase, { random: counting, scrypt: fast });
    assert.deepEqual(draws, [32, 12]);
    assert.equal(sealed.kdf.salt, Buffer.alloc(32, 1).toString('base64'));
    assert.equal(sealed.cipher.iv, Buffer.alloc(12, 2).toString('base64'));
  });

  it('does not put the root into the envelope in hex or base64', async () => {
    const root = random(98);
    const text = JSON.stringify(await sealRoot(root, passphrase, { random, scrypt: fast }));
    const b = Buffer.from(root);
    for (const needle of [b.toString('hex'), b.toString('base64'), b.toString('base64url'), b.subarray(0, 16).toString('hex')]) {
      assert.ok(!text.includes(needle));
    }
    assert.ok(!text.toLowerCase().includes(b.subarray(0, 16).toString('hex')));
  });

  it('copies the root in: changing it while scrypt runs does not change what is sealed', async () => {
    const root = random(64);
    const expected = Uint8Array.from(root);
    const pending = sealRoot(root, passphrase, { random, scrypt: fast });
    root.fill(0);
    assert.deepEqual(await unsealRoot(await pending, passphrase), expected);
  });

  it('refuses bad arguments with invalid_input naming the field', async () => {
    const cases: [Promise<SealedRoot>, string][] = [
      [sealRoot(new Uint8Array(0), passphrase, { random, scrypt: fast }), 'root'],
      [sealRoot(new Uint8Array(4097), passphrase, { random, scrypt: fast }), 'root'],
      [sealRoot(random(32), new Uint8Array(0), { random, scrypt: fast }), 'passphrase'],
      [sealRoot(random(32), passphrase, { random, scrypt: { N: 2 ** 21, r: 8, p: 1 } }), 'scrypt.N'],
      [sealRoot(random(32), passphrase, { random, scrypt: { N: 2 ** 10, r: 64, p: 1 } }), 'scrypt.r'],
      [sealRoot(random(32), passphrase, { random, scrypt: { N: 2 ** 10, r: 8, p: 0 } }), 'scrypt.p'],
    ];
    for (const [pending, field] of cases) {
      await assert.rejects(pending, { name: 'CustosError', code: 'invalid_input', details: { field } });
    }
  });

  it('refuses a random source that returns the wrong length (internal)', async () => {
    await assert.rejects(sealRoot(random(32), passphrase, { random: (n) => new Uint8Array(n - 1), scrypt: fast }), {
      name: 'CustosError',
      code: 'internal',
    });
  });
});
