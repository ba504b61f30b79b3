import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decryptRecord } from './decryptRecord.js';
import { encryptRecord } from './encryptRecord.js';

const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const key = random(32);
const secret = new TextEncoder().encode('JBSWY3DPEHPK3PXP');

describe('encryptRecord', () => {
  it('round-trips through decryptRecord', () => {
    const envelope = encryptRecord(key, 'wallet/alice/totp', secret, random);
    assert.deepEqual(decryptRecord(key, 'wallet/alice/totp', envelope), secret);
  });

  it('writes v1.<base64url iv 12>.<base64url ciphertext ‖ tag 16>', () => {
    const envelope = encryptRecord(key, 'r', secret, random);
    assert.match(envelope, /^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    const [, iv, body] = envelope.split('.') as [string, string, string];
    assert.equal(Buffer.from(iv, 'base64url').length, 12);
    assert.equal(Buffer.from(body, 'base64url').length, secret.length + 16);
  });

  it('draws a fresh IV from the injected source each time', () => {
    let calls = 0;
    const counting = (n: number): Uint8Array => {
      calls++;
      return new Uint8Array(n).fill(calls);
    };
    const a = encryptRecord(key, 'r', secret, counting);
    const b = encryptRecord(key, 'r', secret, counting);
    assert.equal(a.split('.')[1], Buffer.alloc(12, 1).toString('base64url'));
    assert.equal(b.split('.')[1], Buffer.alloc(12, 2).toString('base64url'));
    assert.notEqual(a.split('.')[2], b.split('.')[2]);
  });

  it('does not show the plaintext', () => {
    const envelope = encryptRecord(key, 'r', secret, random);
    assert.ok(!envelope.includes('JBSWY3DP'));
    assert.ok(!envelope.includes(Buffer.from(secret).toString('base64url').slice(0, 12)));
  });

  it('encrypts an empty plaintext', () => {
    assert.deepEqual(decryptRecord(key, 'r', encryptRecord(key, 'r', new Uint8Array(0), random)), new Uint8Array(0));
  });

  it('keeps no alias of the key or plaintext: changing them afterwards changes nothing', () => {
    const myKey = Uint8Array.from(key);
    const myPlaintext = Uint8Array.from(secret);
    const envelope = encryptRecord(myKey, 'r', myPlaintext, random);
    myKey.fill(0);
    myPlaintext.fill(0);
    assert.deepEqual(decryptRecord(key, 'r', envelope), secret);
  });

  it('refuses a key that is not 32 bytes, an empty or ill-formed record key (invalid_input)', () => {
    const cases: [() => unknown, string][] = [
      [() => encryptRecord(random(16), 'r', secret, random), 'key'],
      [() => encryptRecord(random(33), 'r', secret, random), 'key'],
      [() => encryptRecord(key, '', secret, random), 'recordKey'],
      [() => encryptRecord(key, 'wallet/\uD800', secret, random), 'recordKey'],
      [() => encryptRecord(key, 7 as unknown as string, secret, random), 'recordKey'],
      [() => encryptRecord(key, 'r', 'secret' as unknown as Uint8Array, random), 'plaintext'],
    ];
    for (const [call, field] of cases) assert.throws(call, { name: 'CustosError', code: 'invalid_input', details: { field } });
  });

  it('refuses a random source that returns the wrong length (internal)', () => {
    assert.throws(() => encryptRecord(key, 'r', secret, (n) => new Uint8Array(n + 1)), { name: 'CustosError', code: 'internal' });
  });

  it('round-trips any record key and plaintext (property)', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, unit: 'grapheme' }), fc.uint8Array({ maxLength: 256 }), (recordKey, plaintext) => {
        assert.deepEqual(decryptRecord(key, recordKey, encryptRecord(key, recordKey, plaintext, random)), plaintext);
      }),
    );
  });
});
