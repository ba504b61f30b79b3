import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decryptRecord } from './decryptRecord.js';
import { encryptRecord } from './encryptRecord.js';

const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const key = random(32);
const secret = new TextEncoder().encode('JBSWY3DPEHPK3PXP');
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

describe('decryptRecord', () => {
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
