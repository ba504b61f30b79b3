import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeRootKeyring } from './decodeRootKeyring.js';
import { encodeRootKeyring } from './encodeRootKeyring.js';

const bytes = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const internal = { name: 'CustosError', code: 'internal' };

const seedEncoding = (): Uint8Array => encodeRootKeyring({ barrierKey: bytes(32), master: { kind: 'seed', seed: bytes(64) } });
const xprvEncoding = (): Uint8Array => encodeRootKeyring({ barrierKey: bytes(32), master: { kind: 'xprv', privateKey: bytes(32), chainCode: bytes(32) } });

describe('decodeRootKeyring', () => {
  it('rejects every truncation and an extra byte, for both kinds (internal)', () => {
    for (const encoded of [seedEncoding(), xprvEncoding()]) {
      for (let n = 0; n < encoded.length; n++) assert.throws(() => decodeRootKeyring(encoded.slice(0, n)), internal, `length ${n}`);
      const longer = new Uint8Array(encoded.length + 1);
      longer.set(encoded);
      assert.throws(() => decodeRootKeyring(longer), internal);
    }
  });

  it('rejects an unknown version, an unknown kind, and a seed length outside 16..64', () => {
    const seed = seedEncoding();
    for (const [at, value] of [
      [0, 0],
      [0, 2],
      [33, 0],
      [33, 3],
      [34, 15],
      [34, 65],
      [34, 63],
    ] as const) {
      const altered = Uint8Array.from(seed);
      altered[at] = value;
      assert.throws(() => decodeRootKeyring(altered), internal, `byte ${at} = ${value}`);
    }
    // a 16-byte seed declared as 64 bytes long, and the other way round
    const short = encodeRootKeyring({ barrierKey: bytes(32), master: { kind: 'seed', seed: bytes(16) } });
    short[34] = 64;
    assert.throws(() => decodeRootKeyring(short), internal);
    const xprvAsSeed = xprvEncoding();
    xprvAsSeed[33] = 1;
    assert.throws(() => decodeRootKeyring(xprvAsSeed), internal);
  });

  it('says what is wrong without showing key bytes', () => {
    const encoded = xprvEncoding();
    try {
      decodeRootKeyring(encoded.slice(0, 97));
      assert.fail('expected a throw');
    } catch (e) {
      assert.match((e as Error).message, /malformed: expected 98 bytes for an xprv master, got 97/);
      assert.ok(!(e as Error).message.includes(Buffer.from(encoded.subarray(1, 9)).toString('hex')));
    }
  });

  it('returns copies: changing or wiping the input afterwards changes nothing', () => {
    for (const encoded of [seedEncoding(), xprvEncoding()]) {
      const expected = decodeRootKeyring(Uint8Array.from(encoded));
      const decoded = decodeRootKeyring(encoded);
      encoded.fill(0xff);
      assert.deepEqual(decoded, expected);
    }
  });

  it('returns copies when given a Buffer (whose slice would alias)', () => {
    const encoded = Buffer.from(xprvEncoding());
    const decoded = decodeRootKeyring(encoded);
    const before = structuredClone(decoded);
    encoded.fill(0);
    assert.deepEqual(decoded, before);
    assert.ok(!(decoded.barrierKey instanceof Buffer));
  });

  it('gives each field its own buffer', () => {
    const decoded = decodeRootKeyring(xprvEncoding());
    assert.equal(decoded.master.kind, 'xprv');
    if (decoded.master.kind !== 'xprv') return;
    const buffers = [decoded.barrierKey.buffer, decoded.master.privateKey.buffer, decoded.master.chainCode.buffer];
    assert.equal(new Set(buffers).size, 3);
  });

  it('any byte string either decodes to a keyring that re-encodes to it, or throws internal (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (input) => {
        let decoded: ReturnType<typeof decodeRootKeyring>;
        try {
          decoded = decodeRootKeyring(input);
        } catch (e) {
          assert.equal((e as { code?: unknown }).code, 'internal');
          return;
        }
        assert.deepEqual(encodeRootKeyring(decoded), input);
      }),
    );
  });
});
