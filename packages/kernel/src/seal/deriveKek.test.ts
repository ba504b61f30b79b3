import assert from 'node:assert/strict';
import { randomBytes, scryptSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { DEFAULT_SCRYPT, KEK_BYTES, deriveKek } from './deriveKek.js';

const passphrase = new TextEncoder().encode('correct horse battery staple');
const salt = new Uint8Array(randomBytes(16));

describe('deriveKek', () => {
  it('is scrypt(passphrase, salt, N, r, p) with a 32-byte output', async () => {
    const kek = await deriveKek(passphrase, { N: 2 ** 10, r: 8, p: 2, salt });
    const reference = scryptSync(passphrase, salt, 32, { N: 2 ** 10, r: 8, p: 2 });
    assert.equal(kek.length, KEK_BYTES);
    assert.deepEqual(Buffer.from(kek), reference);
  });

  it('depends on every parameter', async () => {
    const base = Buffer.from(await deriveKek(passphrase, { N: 2 ** 10, r: 8, p: 1, salt })).toString('hex');
    const variants = [
      { N: 2 ** 11, r: 8, p: 1, salt },
      { N: 2 ** 10, r: 7, p: 1, salt },
      { N: 2 ** 10, r: 8, p: 2, salt },
      { N: 2 ** 10, r: 8, p: 1, salt: Uint8Array.from(salt, (b, i) => (i === 0 ? b ^ 1 : b)) },
    ];
    for (const params of variants) {
      assert.notEqual(Buffer.from(await deriveKek(passphrase, params)).toString('hex'), base);
    }
    const other = new TextEncoder().encode('correct horse battery stapler');
    assert.notEqual(Buffer.from(await deriveKek(other, { N: 2 ** 10, r: 8, p: 1, salt })).toString('hex'), base);
  });

  it('works with the default cost, which needs more than OpenSSL’s default 32 MiB maxmem', async () => {
    const kek = await deriveKek(passphrase, { ...DEFAULT_SCRYPT, salt });
    assert.equal(kek.length, 32);
  });

  it('copies the passphrase and salt in before awaiting: changing them during scrypt has no effect', async () => {
    const mine = Uint8Array.from(passphrase);
    const mySalt = Uint8Array.from(salt);
    const pending = deriveKek(mine, { N: 2 ** 10, r: 8, p: 1, salt: mySalt });
    mine.fill(0);
    mySalt.fill(0);
    const kek = await pending;
    assert.deepEqual(Buffer.from(kek), scryptSync(passphrase, salt, 32, { N: 2 ** 10, r: 8, p: 1 }));
  });

  it('returns a fresh buffer each time', async () => {
    const a = await deriveKek(passphrase, { N: 2 ** 10, r: 8, p: 1, salt });
    const b = await deriveKek(passphrase, { N: 2 ** 10, r: 8, p: 1, salt });
    assert.deepEqual(a, b);
    a.fill(0);
    assert.notDeepEqual(a, b);
  });

  it('refuses an empty passphrase and out-of-bounds parameters', async () => {
    await assert.rejects(deriveKek(new Uint8Array(0), { N: 2 ** 10, r: 8, p: 1, salt }), {
      code: 'invalid_input',
      details: { field: 'passphrase' },
    });
    await assert.rejects(deriveKek(passphrase, { N: 2 ** 21, r: 8, p: 1, salt }), {
      code: 'invalid_input',
      details: { field: 'scrypt.N' },
    });
  });

  it('DEFAULT_SCRYPT is frozen', () => {
    assert.deepEqual({ ...DEFAULT_SCRYPT }, { N: 2 ** 17, r: 8, p: 1 });
    assert.ok(Object.isFrozen(DEFAULT_SCRYPT));
  });
});
