// Tests of the PKCS#11 unsealer (unsealer.ts): sealRootWithPkcs11, unsealRootWithPkcs11 (SoftHSM2).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import pkcs11js from 'pkcs11js';
import { CustosError } from '../../errors.js';
import { freshTokenLabel, softHsmForTests } from '../../testing/softHsm.js';
import { type Pkcs11UnsealerParams, type SealedRootV2, sealedRootAadV2 } from '../sealedRoot.js';
import { destroyKek, findSecretKeys, generateKek } from './kek.js';
import { openPkcs11Token, type Pkcs11Token } from './token.js';
import { sealRootWithPkcs11, unsealRootWithPkcs11 } from './unsealer.js';

const { hsm, skip } = softHsmForTests();
const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

describe('sealRootWithPkcs11 (SoftHSM2)', { skip }, () => {
  const tokenLabel = freshTokenLabel();
  const pin = `pin-${randomBytes(9).toString('base64url')}`;
  let token: Pkcs11Token;
  let keyId: string;
  const keyLabel = 'custos-kek';

  /** A session key made in the test with the given extra attributes (to offer seal a key that is no proper KEK). */
  function makeKey(label: string, id: string, attributes: pkcs11js.Template, length = 32): void {
    const { module, session } = token.use();
    module.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: length },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: true },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: Buffer.from(id, 'hex') },
      ...attributes,
    ]);
  }

  before(() => {
    hsm?.initToken(tokenLabel, { soPin: 'so-pin', pin });
    token = openPkcs11Token({ modulePath: hsm?.modulePath ?? '', tokenLabel, pin: new TextEncoder().encode(pin) });
    keyId = generateKek(token, { keyLabel }).keyId;
  });
  after(() => token?.close());

  it('seals a root that the token opens again; the header names the token and key; a 12-byte IV and a 128-bit tag', async () => {
    const root = random(98);
    const sealed = await sealRootWithPkcs11(root, token, { keyLabel, keyId, tokenLabel, random });
    assert.deepEqual(Object.keys(sealed), ['format', 'version', 'unsealer', 'cipher', 'ciphertext']);
    assert.equal(sealed.format, 'custos.sealed-root');
    assert.equal(sealed.version, 2);
    assert.deepEqual(sealed.unsealer, { type: 'pkcs11', tokenLabel, keyLabel, keyId });
    assert.equal(sealed.cipher.name, 'aes-256-gcm');
    assert.equal(Buffer.from(sealed.cipher.iv, 'base64').length, 12);
    assert.equal(Buffer.from(sealed.ciphertext, 'base64').length, root.length + 16, 'ciphertext ‖ 16-byte tag');
    // a JSON round trip (as the store keeps it) still opens
    assert.deepEqual(await unsealRootWithPkcs11(JSON.parse(JSON.stringify(sealed)), token), root);
  });

  it('the envelope holds no plaintext of the root (no 8-byte run of it, in any encoding)', async () => {
    const root = random(98);
    const sealed = await sealRootWithPkcs11(root, token, { keyLabel, keyId, random });
    const json = JSON.stringify(sealed);
    const body = Buffer.from(sealed.ciphertext, 'base64');
    for (let i = 0; i + 8 <= root.length; i++) {
      const run = Buffer.from(root.subarray(i, i + 8));
      assert.equal(body.indexOf(run), -1, `root bytes ${i}..${i + 8} in the ciphertext`);
      assert.ok(!json.includes(run.toString('hex')), 'hex of the root in the envelope');
      assert.equal(Buffer.from(json, 'latin1').indexOf(run), -1, 'raw root bytes in the envelope');
    }
    assert.ok(!json.includes(Buffer.from(root).toString('base64').slice(0, 12)));
  });

  it('draws a fresh IV for every seal (same root, same key: different envelopes)', async () => {
    const root = random(32);
    const a = await sealRootWithPkcs11(root, token, { keyLabel, keyId, random });
    const b = await sealRootWithPkcs11(root, token, { keyLabel, keyId, random });
    assert.notEqual(a.cipher.iv, b.cipher.iv);
    assert.notEqual(a.ciphertext, b.ciphertext);
  });

  it('the pitfall it guards against: without tagBits SoftHSM2 emits no tag at all (so seal sets it and checks the length)', () => {
    const { module, session } = token.use();
    const [key] = findSecretKeys(module, session, { keyId, keyLabel });
    assert.ok(key !== undefined);
    const plaintext = Buffer.alloc(40, 7);
    const iv = Buffer.from(random(12));
    module.C_EncryptInit(
      session,
      { mechanism: pkcs11js.CKM_AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_AES_GCM_v240, iv, ivBits: 96 } as pkcs11js.AesGCM },
      key,
    );
    const untagged = module.C_Encrypt(session, plaintext, Buffer.alloc(plaintext.length + 16));
    assert.equal(untagged.length, plaintext.length, 'no tag: nothing would authenticate the envelope');
    module.C_EncryptInit(
      session,
      { mechanism: pkcs11js.CKM_AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_AES_GCM_v240, iv, ivBits: 96, tagBits: 128 } as pkcs11js.AesGCM },
      key,
    );
    assert.equal(module.C_Encrypt(session, plaintext, Buffer.alloc(plaintext.length + 16)).length, plaintext.length + 16);
  });

  it('binds the header as associated data: the same body under another header does not open', async () => {
    const root = random(64);
    const sealed = await sealRootWithPkcs11(root, token, { keyLabel, keyId, random });
    const { keyId: otherId } = generateKek(token, { keyLabel, allowExistingLabel: true });
    // the token decrypts with the header it is given: only the sealed header's AAD matches the tag
    const { module, session } = token.use();
    const [key] = findSecretKeys(module, session, { keyId, keyLabel });
    assert.ok(key !== undefined);
    const iv = Buffer.from(sealed.cipher.iv, 'base64');
    const body = Buffer.from(sealed.ciphertext, 'base64');
    const decryptWith = (aad: Uint8Array): Buffer => {
      module.C_DecryptInit(
        session,
        {
          mechanism: pkcs11js.CKM_AES_GCM,
          parameter: { type: pkcs11js.CK_PARAMS_AES_GCM_v240, iv, ivBits: 96, aad: Buffer.from(aad), tagBits: 128 } as pkcs11js.AesGCM,
        },
        key,
      );
      return Buffer.from(module.C_Decrypt(session, body, Buffer.alloc(body.length)));
    };
    assert.deepEqual(new Uint8Array(decryptWith(sealedRootAadV2(sealed))), root);
    const unsealer = sealed.unsealer as Pkcs11UnsealerParams;
    assert.throws(() => decryptWith(sealedRootAadV2({ ...sealed, unsealer: { ...unsealer, keyId: otherId } })), /CKR_/);
    assert.throws(() => decryptWith(sealedRootAadV2({ ...sealed, cipher: { ...sealed.cipher, iv: Buffer.from(random(12)).toString('base64') } })), /CKR_/);
  });

  it('refuses a key that is no proper KEK (extractable, not sensitive, AES-128, no encrypt): invalid_input keyId', async () => {
    const root = random(32);
    const cases: Array<[string, pkcs11js.Template, number]> = [
      [
        'extractable',
        [
          { type: pkcs11js.CKA_EXTRACTABLE, value: true },
          { type: pkcs11js.CKA_SENSITIVE, value: true },
        ],
        32,
      ],
      [
        'not-sensitive',
        [
          { type: pkcs11js.CKA_EXTRACTABLE, value: false },
          { type: pkcs11js.CKA_SENSITIVE, value: false },
        ],
        32,
      ],
      [
        'aes-128',
        [
          { type: pkcs11js.CKA_EXTRACTABLE, value: false },
          { type: pkcs11js.CKA_SENSITIVE, value: true },
        ],
        16,
      ],
    ];
    for (const [label, attributes, length] of cases) {
      const id = randomBytes(16).toString('hex');
      makeKey(label, id, attributes, length);
      await assert.rejects(
        sealRootWithPkcs11(root, token, { keyLabel: label, keyId: id, random }),
        { name: 'CustosError', code: 'invalid_input', details: { field: 'keyId' } },
        label,
      );
    }
    const noEncrypt = randomBytes(16).toString('hex');
    makeKey('no-encrypt', noEncrypt, [
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
    ]);
    const { module, session } = token.use();
    const [handle] = findSecretKeys(module, session, { keyId: noEncrypt });
    module.C_SetAttributeValue(session, handle as Buffer, [{ type: pkcs11js.CKA_ENCRYPT, value: false }]);
    await assert.rejects(sealRootWithPkcs11(root, token, { keyLabel: 'no-encrypt', keyId: noEncrypt, random }), {
      code: 'invalid_input',
      details: { field: 'keyId' },
    });
  });

  it('refuses an unknown key, a label that does not go with the id, another token, and bad arguments (invalid_input naming the field)', async () => {
    const root = random(32);
    const cases: Array<[Parameters<typeof sealRootWithPkcs11>[2], string, Uint8Array?]> = [
      [{ keyLabel, keyId: randomBytes(16).toString('hex'), random }, 'keyId'],
      [{ keyLabel: 'another-label', keyId, random }, 'keyId'],
      [{ keyLabel, keyId: keyId.toUpperCase(), random }, 'keyId'],
      [{ keyLabel, keyId: keyId.slice(2), random }, 'keyId'],
      [{ keyLabel: '', keyId, random }, 'keyLabel'],
      [{ keyLabel, keyId, tokenLabel: 'another-token', random }, 'tokenLabel'],
      [{ keyLabel, keyId, random: 'no' as never }, 'random'],
      [{ keyLabel, keyId, random }, 'root', new Uint8Array(0)],
      [{ keyLabel, keyId, random }, 'root', new Uint8Array(4097)],
    ];
    for (const [options, field, input = root] of cases) {
      await assert.rejects(sealRootWithPkcs11(input, token, options), { name: 'CustosError', code: 'invalid_input', details: { field } }, field);
    }
    // a random source that returns the wrong length is a wiring bug: internal, nothing sealed
    await assert.rejects(sealRootWithPkcs11(root, token, { keyLabel, keyId, random: () => new Uint8Array(4) }), { name: 'CustosError', code: 'internal' });
  });

  it("leaves the caller's root untouched", async () => {
    const root = random(50);
    const copy = Uint8Array.from(root);
    await sealRootWithPkcs11(root, token, { keyLabel, keyId, random });
    assert.deepEqual(root, copy);
  });
});

describe('unsealRootWithPkcs11 (SoftHSM2)', { skip }, () => {
  const pin = `pin-${randomBytes(9).toString('base64url')}`;
  const encodedPin = (): Uint8Array => new TextEncoder().encode(pin);
  // SoftHSM2 lists its tokens at C_Initialize: both tokens of the suite are made before the first open
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
