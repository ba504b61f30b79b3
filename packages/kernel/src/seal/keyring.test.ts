// Tests of the root keyring format (keyring.ts): encodeRootKeyring, decodeRootKeyring, wipeRootKeyring.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeRootKeyring, encodeRootKeyring, type RootKeyring, wipeRootKeyring } from './keyring.js';

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

describe('decodeRootKeyring', () => {
  const internal = { name: 'CustosError', code: 'internal' };

  const seedEncoding = (): Uint8Array => encodeRootKeyring({ barrierKey: bytes(32), master: { kind: 'seed', seed: bytes(64) } });
  const xprvEncoding = (): Uint8Array => encodeRootKeyring({ barrierKey: bytes(32), master: { kind: 'xprv', privateKey: bytes(32), chainCode: bytes(32) } });

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
    // the private key's first byte is read as the seed's length: 63 would fit the 98 bytes exactly
    // (a random key made that happen once in 256 runs); any other valid length must not
    for (const length of [16, 62, 64]) {
      xprvAsSeed[34] = length;
      assert.throws(() => decodeRootKeyring(xprvAsSeed), internal, `length ${length}`);
    }
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

describe('wipeRootKeyring', () => {
  const filled = (n: number): Uint8Array => new Uint8Array(randomBytes(n)).map((b) => b | 1);
  const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0);

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
