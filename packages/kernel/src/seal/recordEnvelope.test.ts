// Tests of the record envelope (recordEnvelope.ts): encryptRecord, decryptRecord.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decryptRecord, encryptRecord } from './recordEnvelope.js';

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

describe('decryptRecord', () => {
  const unreadable = (recordKey: string) => ({
    name: 'CustosError',
    code: 'record_unreadable',
    message: `record ${recordKey} cannot be read`,
  });

  function flipBit(text: string, bit: number): string {
    const bytes = Buffer.from(text, 'base64url');
    bytes[bit >> 3] = (bytes[bit >> 3] as number) ^ (1 << (bit & 7));
    return bytes.toString('base64url');
  }

  it('swap attack: alice’s TOTP secret row copied to bob’s does not open', () => {
    const alice = encryptRecord(key, 'wallet/alice/totp', secret, random);
    assert.throws(() => decryptRecord(key, 'wallet/bob/totp', alice), unreadable('wallet/bob/totp'));
    // nor under a record key that only differs by a prefix or a suffix
    assert.throws(() => decryptRecord(key, 'wallet/alice/totp2', alice), unreadable('wallet/alice/totp2'));
    assert.throws(() => decryptRecord(key, 'wallet/alice/tot', alice), unreadable('wallet/alice/tot'));
  });

  it('each single-bit flip in the IV, ciphertext or tag → record_unreadable', () => {
    const envelope = encryptRecord(key, 'r', secret, random);
    const [version, iv, body] = envelope.split('.') as [string, string, string];
    for (let bit = 0; bit < 12 * 8; bit++) {
      assert.throws(() => decryptRecord(key, 'r', `${version}.${flipBit(iv, bit)}.${body}`), unreadable('r'), `iv bit ${bit}`);
    }
    for (let bit = 0; bit < (secret.length + 16) * 8; bit++) {
      assert.throws(() => decryptRecord(key, 'r', `${version}.${iv}.${flipBit(body, bit)}`), unreadable('r'), `body bit ${bit}`);
    }
  });

  it('a wrong key → record_unreadable', () => {
    const envelope = encryptRecord(key, 'r', secret, random);
    const other = Uint8Array.from(key);
    other[31] = (other[31] as number) ^ 0x80;
    assert.throws(() => decryptRecord(other, 'r', envelope), unreadable('r'));
    assert.throws(() => decryptRecord(random(32), 'r', envelope), unreadable('r'));
  });

  it('malformed envelopes → record_unreadable naming the record', () => {
    const good = encryptRecord(key, 'r', secret, random);
    const [, iv, body] = good.split('.') as [string, string, string];
    const bad = [
      '',
      'v1.',
      'v1..',
      'v2.x.y',
      `v2.${iv}.${body}`,
      `V1.${iv}.${body}`,
      `v1.${iv}`,
      `v1.${iv}.${body}.`,
      `.v1.${iv}.${body}`,
      `v1.${iv}.${body}=`,
      `v1.${iv}.${body.replaceAll('-', '+').replaceAll('_', '/')}${body.includes('-') || body.includes('_') ? '' : '+'}`,
      `v1.${iv}.${body} `,
      `v1.${iv}.${body}*`,
      `v1.${iv}.${body.slice(0, -1)}`,
      `v1.${iv.slice(0, -2)}.${body}`,
      `v1.${Buffer.alloc(16).toString('base64url')}.${body}`,
      `v1.${iv}.${Buffer.alloc(15).toString('base64url')}`,
      `v1.${iv}.`,
      'v1.!!!!.????',
      ' v1.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA',
    ];
    for (const envelope of bad) assert.throws(() => decryptRecord(key, 'r', envelope), unreadable('r'), JSON.stringify(envelope));
    assert.throws(() => decryptRecord(key, 'r', undefined as unknown as string), unreadable('r'));
  });

  it('refuses a non-canonical base64url spelling of the same bytes', () => {
    // 16 + 16 = 32 bytes of body leave 4 unused bits in the last character
    const envelope = encryptRecord(key, 'r', new Uint8Array(16), random);
    const [version, iv, body] = envelope.split('.') as [string, string, string];
    const last = body.at(-1) as string;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sibling = alphabet[alphabet.indexOf(last) + 1] as string;
    assert.deepEqual(Buffer.from(body.slice(0, -1) + sibling, 'base64url'), Buffer.from(body, 'base64url'));
    assert.throws(() => decryptRecord(key, 'r', `${version}.${iv}.${body.slice(0, -1)}${sibling}`), unreadable('r'));
  });

  it('never puts the plaintext or key into the error', () => {
    const envelope = encryptRecord(key, 'wallet/alice/totp', secret, random);
    try {
      decryptRecord(key, 'wallet/bob/totp', envelope);
      assert.fail('expected a throw');
    } catch (e) {
      const text = `${(e as Error).message} ${JSON.stringify(e)}`;
      assert.ok(!text.includes('JBSWY3DP'));
      assert.ok(!text.includes(Buffer.from(key).toString('hex').slice(0, 16)));
      assert.deepEqual((e as { details?: unknown }).details, { recordKey: 'wallet/bob/totp', reason: 'authentication failed' });
    }
  });

  it('returns a fresh buffer of its own, not a Buffer-pool slice', () => {
    const envelope = encryptRecord(key, 'r', secret, random);
    const a = decryptRecord(key, 'r', envelope);
    const b = decryptRecord(key, 'r', envelope);
    assert.ok(!(a instanceof Buffer));
    assert.equal(a.buffer.byteLength, a.length);
    a.fill(0);
    assert.deepEqual(b, secret);
  });

  it('does not depend on the caller’s key buffer after returning', () => {
    const myKey = Uint8Array.from(key);
    const envelope = encryptRecord(key, 'r', secret, random);
    const out = decryptRecord(myKey, 'r', envelope);
    myKey.fill(0);
    assert.deepEqual(out, secret);
  });

  it('refuses a key that is not 32 bytes and an empty record key (invalid_input: caller bugs)', () => {
    const envelope = encryptRecord(key, 'r', secret, random);
    assert.throws(() => decryptRecord(random(31), 'r', envelope), { code: 'invalid_input', details: { field: 'key' } });
    assert.throws(() => decryptRecord(key, '', envelope), { code: 'invalid_input', details: { field: 'recordKey' } });
  });

  it('any string → record_unreadable, never another error (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string().map((s) => `v1.${s}`),
          fc.tuple(fc.base64String(), fc.base64String()).map(([a, b]) => `v1.${a}.${b}`),
        ),
        (envelope) => {
          assert.throws(() => decryptRecord(key, 'r', envelope), { code: 'record_unreadable' });
        },
      ),
    );
  });
});
