import assert from 'node:assert/strict';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { deriveKek } from './deriveKek.js';
import { sealRoot } from './sealRoot.js';
import type { SealedRoot } from './types.js';
import { unsealRoot } from './unsealRoot.js';

const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const passphrase = new TextEncoder().encode('correct horse battery staple');
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

describe('unsealRoot', () => {
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
