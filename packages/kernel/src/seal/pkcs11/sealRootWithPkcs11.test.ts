import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pkcs11js from 'pkcs11js';
import { freshTokenLabel, softHsmForTests } from '../../testing/softHsm.js';
import { type Pkcs11UnsealerParams, sealedRootAadV2 } from '../sealedRootV2.js';
import { findSecretKeys } from './findSecretKeys.js';
import { generateKek } from './generateKek.js';
import { openPkcs11Token } from './openPkcs11Token.js';
import { sealRootWithPkcs11 } from './sealRootWithPkcs11.js';
import type { Pkcs11Token } from './types.js';
import { unsealRootWithPkcs11 } from './unsealRootWithPkcs11.js';

const { hsm, skip } = softHsmForTests();
const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
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

describe('sealRootWithPkcs11 (SoftHSM2)', { skip }, () => {
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
