// Tests of the passphrase unsealer (passphrase.ts): scrypt bounds, KEK derivation, sealRoot, unsealRoot.
import assert from 'node:assert/strict';
import { createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_SCRYPT, deriveKek, SCRYPT_BOUNDS, sealRoot, unsealRoot, validateScryptParams } from './passphrase.js';
import { KEK_BYTES, type SealedRoot } from './sealedRoot.js';

const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const passphrase = new TextEncoder().encode('correct horse battery staple');

describe('validateScryptParams', () => {
  const salt = new Uint8Array(16);
  const ok = { N: 2 ** 10, r: 8, p: 1, salt };

  function rejectsField(params: unknown, field: string, prefix?: string): void {
    assert.throws(() => (prefix === undefined ? validateScryptParams(params) : validateScryptParams(params, prefix)), {
      name: 'CustosError',
      code: 'invalid_input',
      details: { field },
    });
  }

  it('accepts the bounds themselves', () => {
    validateScryptParams(ok);
    validateScryptParams({ N: SCRYPT_BOUNDS.maxN, r: 2, p: 1, salt: new Uint8Array(64) }); // 256 MiB
    validateScryptParams({ N: 2 ** 10, r: SCRYPT_BOUNDS.maxR, p: SCRYPT_BOUNDS.maxP, salt: new Uint8Array(64) });
    validateScryptParams({ N: 2 ** 18, r: 8, p: 1, salt }); // `--scrypt-log-n 18`, the most the CLI offers
    validateScryptParams({ N: 2 ** 17, r: 8, p: 1, salt }); // DEFAULT_SCRYPT
    validateScryptParams({ N: 2 ** 15, r: 1, p: 1, salt });
  });

  it('refuses N out of bounds or not a power of two, naming the field with the given prefix', () => {
    for (const N of [2 ** 9, 2 ** 21, 2 ** 30, 3 * 2 ** 10, 0, -1024, 1024.5, Number.NaN, '1024', undefined]) {
      rejectsField({ ...ok, N }, 'kdf.N', 'kdf');
    }
    rejectsField({ ...ok, N: 2 ** 21 }, 'scrypt.N');
  });

  it('refuses parameters each within its bound whose product asks more than 256 MiB of memory or 512 MiB of work', () => {
    // 128 · 32 · 2^20 bytes = 4 GiB, though every member is within its own bound
    rejectsField({ N: SCRYPT_BOUNDS.maxN, r: SCRYPT_BOUNDS.maxR, p: 1, salt }, 'kdf.r', 'kdf');
    // what the bounds let through before issue 9: 1 GiB (N = 2^20, r = 8), and 16 times that work
    rejectsField({ N: 2 ** 20, r: 8, p: SCRYPT_BOUNDS.maxP, salt }, 'scrypt.r');
    rejectsField({ N: 2 ** 19, r: 8, p: 1, salt }, 'scrypt.r'); // 512 MiB
    assert.throws(() => validateScryptParams({ N: 2 ** 18, r: 9, p: 1, salt }), {
      code: 'invalid_input',
      message: 'scrypt.r: expected N and r needing at most 256 MiB (128·r·N bytes), got 288 MiB',
    });
    validateScryptParams({ N: 2 ** 18, r: 8, p: 2, salt }); // exactly 256 MiB, twice: 512 MiB of work
    assert.throws(() => validateScryptParams({ N: 2 ** 18, r: 8, p: 3, salt }), {
      code: 'invalid_input',
      details: { field: 'scrypt.p' },
      message: 'scrypt.p: expected N, r and p costing at most 512 MiB of mixing (128·r·N·p bytes), got 768 MiB',
    });
    validateScryptParams({ N: 2 ** 15, r: 8, p: SCRYPT_BOUNDS.maxP, salt }); // 32 MiB × 16 = 512 MiB of work
    rejectsField({ N: 2 ** 16, r: 8, p: SCRYPT_BOUNDS.maxP, salt }, 'kdf.p', 'kdf'); // 64 MiB × 16
  });

  it('refuses N ≥ 2^16 with r = 1 (RFC 7914)', () => {
    rejectsField({ ...ok, N: 2 ** 16, r: 1 }, 'scrypt.N');
  });

  it('refuses r and p out of bounds', () => {
    for (const r of [0, 33, 1000, 1.5, '8', null]) rejectsField({ ...ok, r }, 'kdf.r', 'kdf');
    for (const p of [0, 17, 2.5, '1']) rejectsField({ ...ok, p }, 'kdf.p', 'kdf');
  });

  it('refuses a salt outside 16..64 bytes or not bytes', () => {
    for (const s of [new Uint8Array(15), new Uint8Array(65), new Uint8Array(0), 'c2FsdA==', [1, 2, 3]]) {
      rejectsField({ ...ok, salt: s }, 'kdf.salt', 'kdf');
    }
  });

  it('refuses a non-object', () => {
    rejectsField(null, 'scrypt');
    rejectsField(42, 'scrypt');
  });
});

describe('deriveKek', () => {
  const salt = new Uint8Array(randomBytes(16));

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

describe('sealRoot', () => {
  const fast = { N: 2 ** 10, r: 8, p: 1 };

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

describe('unsealRoot', () => {
  const root = random(98);
  let sealed: SealedRoot;

  /** The envelope as untrusted JSON: any member may be set to anything. */
  type Editable = { [member: string]: unknown; kdf: Record<string, unknown>; cipher: Record<string, unknown> };

  /** A deep copy of the envelope as untrusted JSON, edited by `edit`. */
  function edited(edit: (e: Editable) => void): unknown {
    const copy = JSON.parse(JSON.stringify(sealed)) as Editable;
    edit(copy);
    return copy;
  }

  function flipByte(b64: string, index: number): string {
    const bytes = Buffer.from(b64, 'base64');
    bytes[index] = (bytes[index] as number) ^ 0x01;
    return bytes.toString('base64');
  }

  const failed = { name: 'CustosError', code: 'unseal_failed' };
  const invalid = (field: string) => ({ name: 'CustosError', code: 'invalid_input', details: { field } });

  before(async () => {
    sealed = await sealRoot(root, passphrase, { random, scrypt: { N: 2 ** 10, r: 8, p: 1 } });
  });

  it('opens with the right passphrase and returns a fresh buffer', async () => {
    const a = await unsealRoot(sealed, passphrase);
    const b = await unsealRoot(sealed, passphrase);
    assert.deepEqual(a, root);
    a.fill(0);
    assert.deepEqual(b, root);
  });

  it('a wrong passphrase → unseal_failed', async () => {
    await assert.rejects(unsealRoot(sealed, new TextEncoder().encode('correct horse battery stapl')), failed);
    await assert.rejects(unsealRoot(sealed, new TextEncoder().encode('Correct horse battery staple')), failed);
  });

  it('flipping any byte of the ciphertext or tag → unseal_failed', async () => {
    const length = Buffer.from(sealed.ciphertext, 'base64').length;
    for (let i = 0; i < length; i++) {
      await assert.rejects(
        unsealRoot(
          edited((e) => {
            e.ciphertext = flipByte(sealed.ciphertext, i);
          }),
          passphrase,
        ),
        failed,
      );
    }
  });

  it('flipping any byte of the IV or the salt → unseal_failed', async () => {
    for (let i = 0; i < 12; i++) {
      await assert.rejects(
        unsealRoot(
          edited((e) => {
            e.cipher.iv = flipByte(sealed.cipher.iv, i);
          }),
          passphrase,
        ),
        failed,
      );
    }
    for (let i = 0; i < 32; i++) {
      await assert.rejects(
        unsealRoot(
          edited((e) => {
            e.kdf.salt = flipByte(sealed.kdf.salt, i);
          }),
          passphrase,
        ),
        failed,
      );
    }
  });

  it('changing N, r or p within bounds → unseal_failed', async () => {
    await assert.rejects(
      unsealRoot(
        edited((e) => {
          e.kdf.N = 2 ** 11;
        }),
        passphrase,
      ),
      failed,
    );
    await assert.rejects(
      unsealRoot(
        edited((e) => {
          e.kdf.r = 7;
        }),
        passphrase,
      ),
      failed,
    );
    await assert.rejects(
      unsealRoot(
        edited((e) => {
          e.kdf.p = 2;
        }),
        passphrase,
      ),
      failed,
    );
  });

  it('authenticates the header: the right KEK without the header as associated data does not open it', async () => {
    const kek = await deriveKek(passphrase, { ...sealed.kdf, salt: Buffer.from(sealed.kdf.salt, 'base64') });
    const body = Buffer.from(sealed.ciphertext, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', kek, Buffer.from(sealed.cipher.iv, 'base64'), { authTagLength: 16 });
    decipher.setAuthTag(body.subarray(body.length - 16));
    decipher.update(body.subarray(0, body.length - 16));
    assert.throws(() => decipher.final(), /authenticate/);
  });

  it('N = 2^30 or r = 1000 → invalid_input naming kdf.N / kdf.r, before any scrypt runs', async () => {
    for (const [edit, field] of [
      [
        (e: Editable) => {
          e.kdf.N = 2 ** 30;
        },
        'kdf.N',
      ],
      [
        (e: Editable) => {
          e.kdf.r = 1000;
        },
        'kdf.r',
      ],
      [
        (e: Editable) => {
          e.kdf.p = 1000;
        },
        'kdf.p',
      ],
    ] as const) {
      const started = performance.now();
      await assert.rejects(unsealRoot(edited(edit), passphrase), invalid(field));
      assert.ok(performance.now() - started < 200, `${field} rejected only after ${performance.now() - started} ms`);
    }
  });

  it('issue 9: an envelope within each bound but asking 1 GiB (N = 2^20, r = 8) or 16 × 256 MiB of work → invalid_input, before any scrypt runs', async () => {
    const cases: Array<[(e: Editable) => void, string]> = [
      [
        (e) => {
          e.kdf.N = 2 ** 20;
        },
        'kdf.r',
      ],
      [
        (e) => {
          e.kdf.N = 2 ** 18;
          e.kdf.p = 16;
        },
        'kdf.p',
      ],
    ];
    for (const [edit, field] of cases) {
      const started = performance.now();
      await assert.rejects(unsealRoot(edited(edit), passphrase), invalid(field));
      assert.ok(performance.now() - started < 1000, `${field} rejected only after ${performance.now() - started} ms`);
    }
  });

  it('an unknown version or format → invalid_input naming it', async () => {
    await assert.rejects(
      unsealRoot(
        edited((e) => {
          e.version = 2;
        }),
        passphrase,
      ),
      invalid('version'),
    );
    await assert.rejects(
      unsealRoot(
        edited((e) => {
          e.version = '1';
        }),
        passphrase,
      ),
      invalid('version'),
    );
    await assert.rejects(
      unsealRoot(
        edited((e) => {
          e.format = 'custos.sealed-seed';
        }),
        passphrase,
      ),
      invalid('format'),
    );
    await assert.rejects(
      unsealRoot(
        edited((e) => void delete e.format),
        passphrase,
      ),
      invalid('format'),
    );
    await assert.rejects(
      unsealRoot(
        edited((e) => {
          e.kdf.name = 'pbkdf2';
        }),
        passphrase,
      ),
      invalid('kdf.name'),
    );
    await assert.rejects(
      unsealRoot(
        edited((e) => {
          e.cipher.name = 'aes-128-gcm';
        }),
        passphrase,
      ),
      invalid('cipher.name'),
    );
  });

  it('bad base64, wrong lengths and stray members → invalid_input naming the field', async () => {
    const cases: [(e: Editable) => void, string][] = [
      [
        (e) => {
          e.kdf.salt = `${sealed.kdf.salt.slice(0, -1)}!`;
        },
        'kdf.salt',
      ],
      [
        (e) => {
          e.kdf.salt = ` ${sealed.kdf.salt}`;
        },
        'kdf.salt',
      ],
      [
        (e) => {
          e.kdf.salt = Buffer.alloc(15).toString('base64');
        },
        'kdf.salt',
      ],
      [
        (e) => {
          e.kdf.salt = Buffer.alloc(65).toString('base64');
        },
        'kdf.salt',
      ],
      [
        (e) => {
          e.kdf.salt = 42;
        },
        'kdf.salt',
      ],
      [
        (e) => {
          e.cipher.iv = Buffer.alloc(16).toString('base64');
        },
        'cipher.iv',
      ],
      [
        (e) => {
          e.cipher.iv = `${sealed.cipher.iv}=`;
        },
        'cipher.iv',
      ],
      [
        (e) => {
          e.kdf.salt = sealed.kdf.salt.replace(/=+$/, '');
        },
        'kdf.salt',
      ],
      // 32 bytes leave 2 unused bits in the last character: setting one decodes the same bytes
      [
        (e) => {
          e.kdf.salt = `${Buffer.alloc(32).toString('base64').slice(0, -2)}B=`;
        },
        'kdf.salt',
      ],
      [
        (e) => {
          e.ciphertext = Buffer.alloc(16).toString('base64');
        },
        'ciphertext',
      ],
      [
        (e) => {
          e.ciphertext = Buffer.alloc(4096 + 17).toString('base64');
        },
        'ciphertext',
      ],
      [
        (e) => {
          e.ciphertext = `${sealed.ciphertext.slice(0, -1)}-`;
        },
        'ciphertext',
      ], // base64url, not base64
      [
        (e) => {
          e.ciphertext = undefined;
        },
        'ciphertext',
      ],
      [
        (e) => {
          (e as Record<string, unknown>).kdf = 'scrypt';
        },
        'kdf',
      ],
      [
        (e) => {
          (e as Record<string, unknown>).cipher = null;
        },
        'cipher',
      ],
      [
        (e) => {
          e.extra = true;
        },
        'extra',
      ],
      [
        (e) => {
          e.kdf.dkLen = 16;
        },
        'kdf.dkLen',
      ],
      [
        (e) => {
          e.cipher.tag = 'AAAA';
        },
        'cipher.tag',
      ],
    ];
    for (const [edit, field] of cases) {
      await assert.rejects(unsealRoot(edited(edit), passphrase), invalid(field), field);
    }
  });

  it('refuses a non-object envelope and an empty passphrase', async () => {
    for (const envelope of [null, undefined, 'sealed', 42, [sealed]]) {
      await assert.rejects(unsealRoot(envelope, passphrase), invalid('envelope'));
    }
    await assert.rejects(unsealRoot(sealed, new Uint8Array(0)), invalid('passphrase'));
  });

  it('any JSON value that is not a valid envelope → invalid_input, never another error (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        await assert.rejects(unsealRoot(value, passphrase), { name: 'CustosError', code: 'invalid_input' });
      }),
    );
  });

  it('any mutation of a header field keeps to invalid_input or unseal_failed (property)', async () => {
    const fields = ['format', 'version', 'kdf.name', 'kdf.N', 'kdf.r', 'kdf.p', 'kdf.salt', 'cipher.name', 'cipher.iv', 'ciphertext'];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...fields), fc.jsonValue(), async (path, value) => {
        const envelope = edited((e) => {
          const [a, b] = path.split('.') as [string, string | undefined];
          if (b === undefined) e[a] = value;
          else (e[a] as Record<string, unknown>)[b] = value;
        });
        if (JSON.stringify(envelope) === JSON.stringify(sealed)) return;
        // a valid larger N would only make scrypt slow, not change the outcome
        if (path === 'kdf.N' && typeof value === 'number' && value > 2 ** 12) return;
        await assert.rejects(unsealRoot(envelope, passphrase), (e: unknown) => {
          const code = (e as { code?: unknown }).code;
          return code === 'invalid_input' || code === 'unseal_failed';
        });
      }),
      { numRuns: 200 },
    );
  });
});
