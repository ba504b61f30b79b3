import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { CustosError } from '../../errors.js';
import { freshTokenLabel, softHsmForTests } from '../../testing/softHsm.js';
import type { SealedRootV2 } from '../sealedRootV2.js';
import { destroyKek } from './destroyKek.js';
import { generateKek } from './generateKek.js';
import { openPkcs11Token } from './openPkcs11Token.js';
import { sealRootWithPkcs11 } from './sealRootWithPkcs11.js';
import type { Pkcs11Token } from './types.js';
import { unsealRootWithPkcs11 } from './unsealRootWithPkcs11.js';

const { hsm, skip } = softHsmForTests();
const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const pin = `pin-${randomBytes(9).toString('base64url')}`;
const encodedPin = (): Uint8Array => new TextEncoder().encode(pin);
// SoftHSM2 lists its tokens at C_Initialize: both tokens of the file are made before the first open
const tokenLabel = freshTokenLabel();
const twinLabel = freshTokenLabel();
const keyLabel = 'custos-kek';
const root = random(98);
/** The same CKA_ID on the twin token: a key that matches the header's label and id but is another key. */
const sharedId = randomBytes(16);
let token: Pkcs11Token;
let keyId: string;
let sealed: SealedRootV2;

/** The envelope as untrusted JSON, edited. */
type Editable = { [member: string]: unknown; unsealer: Record<string, unknown>; cipher: Record<string, unknown> };
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

describe('unsealRootWithPkcs11 (SoftHSM2)', { skip }, () => {
  before(async () => {
    hsm?.initToken(tokenLabel, { soPin: 'so-pin', pin });
    hsm?.initToken(twinLabel, { soPin: 'so-pin', pin });
    token = openPkcs11Token({ modulePath: hsm?.modulePath ?? '', tokenLabel, pin: encodedPin() });
    keyId = generateKek(token, { keyLabel, random: () => new Uint8Array(sharedId) }).keyId;
    sealed = await sealRootWithPkcs11(root, token, { keyLabel, keyId, random });
  });
  after(() => token?.close());

  it('opens the sealed root and returns a fresh buffer each time', async () => {
    const a = await unsealRootWithPkcs11(sealed, token);
    const b = await unsealRootWithPkcs11(sealed, token);
    assert.deepEqual(a, root);
    a.fill(0);
    assert.deepEqual(b, root);
  });

  it('flipping any byte of the ciphertext or the tag → unseal_failed', async () => {
    const length = Buffer.from(sealed.ciphertext, 'base64').length;
    for (let i = 0; i < length; i++) {
      await assert.rejects(
        unsealRootWithPkcs11(
          edited((e) => {
            e.ciphertext = flipByte(sealed.ciphertext, i);
          }),
          token,
        ),
        failed,
        `byte ${i}`,
      );
    }
  });

  it('a refused envelope leaves no operation active on the session: the next unseal works', async () => {
    await assert.rejects(
      unsealRootWithPkcs11(
        edited((e) => {
          e.ciphertext = flipByte(sealed.ciphertext, 0);
        }),
        token,
      ),
      failed,
    );
    assert.deepEqual(await unsealRootWithPkcs11(sealed, token), root);
  });

  it('flipping any byte of the IV, or cutting the tag short → unseal_failed', async () => {
    for (let i = 0; i < 12; i++) {
      await assert.rejects(
        unsealRootWithPkcs11(
          edited((e) => {
            e.cipher.iv = flipByte(sealed.cipher.iv, i);
          }),
          token,
        ),
        failed,
        `iv byte ${i}`,
      );
    }
    const body = Buffer.from(sealed.ciphertext, 'base64');
    for (const cut of [1, 4, 8]) {
      await assert.rejects(
        unsealRootWithPkcs11(
          edited((e) => {
            e.ciphertext = body.subarray(0, body.length - cut).toString('base64');
          }),
          token,
        ),
        failed,
      );
    }
  });

  it('a header naming another key of the same label (swap) → unseal_failed, and the error says which code the token gave', async () => {
    const { keyId: otherId } = generateKek(token, { keyLabel, allowExistingLabel: true });
    await assert.rejects(
      unsealRootWithPkcs11(
        edited((e) => {
          e.unsealer.keyId = otherId;
        }),
        token,
      ),
      (error: unknown) => {
        assert.ok(error instanceof CustosError);
        assert.equal(error.code, 'unseal_failed');
        assert.match(error.message, /CKR_[A-Z_]+/);
        assert.ok(!error.message.includes(pin));
        return true;
      },
    );
  });

  it('a header naming a key that is not there, or another label, or another token → unseal_failed', async () => {
    await assert.rejects(
      unsealRootWithPkcs11(
        edited((e) => {
          e.unsealer.keyId = randomBytes(16).toString('hex');
        }),
        token,
      ),
      failed,
    );
    await assert.rejects(
      unsealRootWithPkcs11(
        edited((e) => {
          e.unsealer.keyLabel = 'custos-kek-2';
        }),
        token,
      ),
      failed,
    );
    await assert.rejects(
      unsealRootWithPkcs11(
        edited((e) => {
          e.unsealer.tokenLabel = twinLabel;
        }),
        token,
      ),
      failed,
    );
  });

  it('the envelope on a twin token with a key of the same label and id (but another value) → unseal_failed', async () => {
    token.close();
    const twin = openPkcs11Token({ modulePath: hsm?.modulePath ?? '', tokenLabel: twinLabel, pin: encodedPin() });
    try {
      assert.equal(generateKek(twin, { keyLabel, random: () => new Uint8Array(sharedId) }).keyId, keyId);
      await assert.rejects(
        unsealRootWithPkcs11(
          edited((e) => {
            e.unsealer.tokenLabel = twinLabel;
          }),
          twin,
        ),
        failed,
      );
      // and the untouched envelope is refused for naming another token
      await assert.rejects(unsealRootWithPkcs11(sealed, twin), failed);
    } finally {
      twin.close();
      token = openPkcs11Token({ modulePath: hsm?.modulePath ?? '', tokenLabel, pin: encodedPin() });
    }
    assert.deepEqual(await unsealRootWithPkcs11(sealed, token), root);
  });

  it('after destroyKek the envelope cannot be opened (unseal_failed)', async () => {
    const { keyId: doomed } = generateKek(token, { keyLabel: 'doomed' });
    const envelope = await sealRootWithPkcs11(root, token, { keyLabel: 'doomed', keyId: doomed, random });
    assert.deepEqual(await unsealRootWithPkcs11(envelope, token), root);
    destroyKek(token, doomed);
    await assert.rejects(unsealRootWithPkcs11(envelope, token), failed);
    assert.throws(() => destroyKek(token, doomed), { name: 'CustosError', code: 'not_found' });
    assert.throws(() => destroyKek(token, 'ABC'), invalid('keyId'));
    // the other KEK is untouched
    assert.deepEqual(await unsealRootWithPkcs11(sealed, token), root);
  });

  it('parses strictly: unknown members, wrong version or unsealer, bad sizes → invalid_input naming the field', async () => {
    const cases: Array<[(e: Editable) => void, string]> = [
      [
        (e) => {
          e.extra = 1;
        },
        'extra',
      ],
      [
        (e) => {
          e.unsealer.pin = '1234';
        },
        'unsealer.pin',
      ],
      [
        (e) => {
          e.cipher.tagBits = 0;
        },
        'cipher.tagBits',
      ],
      [
        (e) => {
          e.version = 1;
        },
        'version',
      ],
      [
        (e) => {
          e.version = '2';
        },
        'version',
      ],
      [
        (e) => {
          e.format = 'other';
        },
        'format',
      ],
      [
        (e) => {
          e.unsealer.type = 'shamir';
        },
        // the one version-2 reader reads the members of the type named: a PKCS#11 member is a stray
        'unsealer.tokenLabel',
      ],
      [
        (e) => {
          (e as Record<string, unknown>).unsealer = 'pkcs11';
        },
        'unsealer',
      ],
      [
        (e) => {
          e.unsealer.keyId = (e.unsealer.keyId as string).toUpperCase();
        },
        'unsealer.keyId',
      ],
      [
        (e) => {
          e.unsealer.keyId = undefined;
        },
        'unsealer.keyId',
      ],
      [
        (e) => {
          e.unsealer.keyLabel = '';
        },
        'unsealer.keyLabel',
      ],
      [
        (e) => {
          e.unsealer.tokenLabel = 'x'.repeat(33);
        },
        'unsealer.tokenLabel',
      ],
      [
        (e) => {
          e.cipher.name = 'aes-128-gcm';
        },
        'cipher.name',
      ],
      [
        (e) => {
          e.cipher.iv = Buffer.from(random(16)).toString('base64');
        },
        'cipher.iv',
      ],
      [
        (e) => {
          e.cipher.iv = `${sealed.cipher.iv.slice(0, -1)}=`;
        },
        'cipher.iv',
      ],
      [
        (e) => {
          e.ciphertext = Buffer.from(random(16)).toString('base64');
        },
        'ciphertext',
      ],
      [
        (e) => {
          e.ciphertext = `${sealed.ciphertext} `;
        },
        'ciphertext',
      ],
      [
        (e) => {
          e.ciphertext = Buffer.from(random(4200)).toString('base64');
        },
        'ciphertext',
      ],
    ];
    for (const [edit, field] of cases) await assert.rejects(unsealRootWithPkcs11(edited(edit), token), invalid(field), field);
    for (const envelope of [null, [], 'sealed', 42]) await assert.rejects(unsealRootWithPkcs11(envelope, token), invalid('envelope'));
  });

  it('any JSON value, or any edit of a member, is refused with invalid_input or unseal_failed (never a root, never another error)', async () => {
    const refused = (error: unknown): boolean => error instanceof CustosError && (error.code === 'invalid_input' || error.code === 'unseal_failed');
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        await assert.rejects(unsealRootWithPkcs11(value, token), refused);
      }),
      { numRuns: 200 },
    );
    const members: Array<(e: Editable, v: unknown) => void> = [
      (e, v) => {
        e.unsealer.tokenLabel = v;
      },
      (e, v) => {
        e.unsealer.keyLabel = v;
      },
      (e, v) => {
        e.unsealer.keyId = v;
      },
      (e, v) => {
        e.cipher.iv = v;
      },
      (e, v) => {
        e.ciphertext = v;
      },
    ];
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: members.length - 1 }), fc.oneof(fc.jsonValue(), fc.string(), fc.base64String()), async (which, value) => {
        const envelope = edited((e) => (members[which] as (e: Editable, v: unknown) => void)(e, value));
        const original = JSON.stringify(sealed) === JSON.stringify(envelope);
        if (original) return;
        await assert.rejects(unsealRootWithPkcs11(envelope, token), refused);
      }),
      { numRuns: 300 },
    );
  });

  it('a closed token → hsm_unavailable', async () => {
    token.close();
    try {
      await assert.rejects(unsealRootWithPkcs11(sealed, token), { name: 'CustosError', code: 'hsm_unavailable' });
    } finally {
      token = openPkcs11Token({ modulePath: hsm?.modulePath ?? '', tokenLabel, pin: encodedPin() });
    }
  });
});
