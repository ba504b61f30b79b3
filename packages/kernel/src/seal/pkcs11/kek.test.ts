// Tests of the KEK on a PKCS#11 token (kek.ts): generateKek, destroyKek (SoftHSM2).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import pkcs11js from 'pkcs11js';
import { freshTokenLabel, softHsmForTests } from '../../testing/softHsm.js';
import { destroyKek, findSecretKeys, generateKek } from './kek.js';
import { openPkcs11Token, type Pkcs11Token } from './token.js';

const { hsm, skip } = softHsmForTests();

describe('generateKek (SoftHSM2)', { skip }, () => {
  const tokenLabel = freshTokenLabel();
  // SoftHSM2 lists the tokens of its directory at C_Initialize: every token of the suite is made first
  const other = freshTokenLabel();
  const pin = `pin-${randomBytes(9).toString('base64url')}`;
  let token: Pkcs11Token;

  /** The key object with CKA_ID keyId (exactly one). */
  function keyHandle(keyId: string): Buffer {
    const { module, session } = token.use();
    const keys = findSecretKeys(module, session, { keyId });
    assert.equal(keys.length, 1, `one key with id ${keyId}`);
    return keys[0] as Buffer;
  }

  /** The pkcs11js error of fn (its message is the return code name, sometimes followed by :number). */
  function returnCodeOf(fn: () => unknown): string {
    try {
      fn();
    } catch (error) {
      assert.ok(error instanceof Error);
      return error.message.replace(/:\d+$/, '');
    }
    assert.fail('expected the token to refuse');
  }

  before(() => {
    hsm?.initToken(tokenLabel, { soPin: 'so-pin-1', pin });
    hsm?.initToken(other, { soPin: 'so-pin-2', pin });
    token = openPkcs11Token({ modulePath: hsm?.modulePath ?? '', tokenLabel, pin: new TextEncoder().encode(pin) });
  });
  after(() => token?.close());

  it('creates an AES-256 token object: private, sensitive, never extractable, encrypt/decrypt only, with a random 16-byte CKA_ID', () => {
    const { keyId } = generateKek(token, { keyLabel: 'kek-attributes' });
    assert.match(keyId, /^[0-9a-f]{32}$/);
    const { module, session } = token.use();
    const key = keyHandle(keyId);
    const want: Array<[string, number]> = [
      ['CKA_TOKEN', pkcs11js.CKA_TOKEN],
      ['CKA_PRIVATE', pkcs11js.CKA_PRIVATE],
      ['CKA_SENSITIVE', pkcs11js.CKA_SENSITIVE],
      ['CKA_ALWAYS_SENSITIVE', pkcs11js.CKA_ALWAYS_SENSITIVE],
      ['CKA_EXTRACTABLE', pkcs11js.CKA_EXTRACTABLE],
      ['CKA_NEVER_EXTRACTABLE', pkcs11js.CKA_NEVER_EXTRACTABLE],
      ['CKA_ENCRYPT', pkcs11js.CKA_ENCRYPT],
      ['CKA_DECRYPT', pkcs11js.CKA_DECRYPT],
      ['CKA_WRAP', pkcs11js.CKA_WRAP],
      ['CKA_UNWRAP', pkcs11js.CKA_UNWRAP],
      ['CKA_SIGN', pkcs11js.CKA_SIGN],
      ['CKA_VERIFY', pkcs11js.CKA_VERIFY],
      ['CKA_DERIVE', pkcs11js.CKA_DERIVE],
    ];
    const values = module.C_GetAttributeValue(
      session,
      key,
      want.map(([, type]) => ({ type })),
    );
    const flags = Object.fromEntries(want.map(([name, type]) => [name, values.find((v) => v.type === type)?.value[0] === 1]));
    assert.deepEqual(flags, {
      CKA_TOKEN: true,
      CKA_PRIVATE: true,
      CKA_SENSITIVE: true,
      CKA_ALWAYS_SENSITIVE: true,
      CKA_EXTRACTABLE: false,
      CKA_NEVER_EXTRACTABLE: true,
      CKA_ENCRYPT: true,
      CKA_DECRYPT: true,
      CKA_WRAP: false,
      CKA_UNWRAP: false,
      CKA_SIGN: false,
      CKA_VERIFY: false,
      CKA_DERIVE: false,
    });
    const [keyType, valueLen, label, id] = module.C_GetAttributeValue(session, key, [
      { type: pkcs11js.CKA_KEY_TYPE },
      { type: pkcs11js.CKA_VALUE_LEN },
      { type: pkcs11js.CKA_LABEL },
      { type: pkcs11js.CKA_ID },
    ]);
    assert.equal(keyType?.value.readUInt32LE(0), pkcs11js.CKK_AES);
    assert.equal(valueLen?.value.readUInt32LE(0), 32);
    assert.equal(label?.value.toString('utf8'), 'kek-attributes');
    assert.equal(id?.value.toString('hex'), keyId);
    // a second key gets another id
    assert.notEqual(generateKek(token, { keyLabel: 'kek-attributes-2' }).keyId, keyId);
  });

  it('the KEK cannot be extracted: CKA_VALUE is sensitive, wrapping it is refused, and it cannot be made extractable', () => {
    const { keyId } = generateKek(token, { keyLabel: 'kek-extract' });
    const { module, session } = token.use();
    const key = keyHandle(keyId);
    // reading the value
    assert.equal(
      returnCodeOf(() => module.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_VALUE }])),
      'CKR_ATTRIBUTE_SENSITIVE',
    );
    // wrapping it under a key made for wrapping (session object, CKA_WRAP true)
    const wrappingKey = module.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_WRAP, value: true },
      { type: pkcs11js.CKA_UNWRAP, value: true },
    ]);
    for (const mechanism of [pkcs11js.CKM_AES_KEY_WRAP_PAD, pkcs11js.CKM_AES_KEY_WRAP]) {
      assert.equal(
        returnCodeOf(() => module.C_WrapKey(session, { mechanism }, wrappingKey, key, Buffer.alloc(128))),
        'CKR_KEY_UNEXTRACTABLE',
      );
    }
    // the same wrapping key does wrap an extractable key: the refusal above is about the KEK
    const extractable = module.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_EXTRACTABLE, value: true },
    ]);
    assert.equal(module.C_WrapKey(session, { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD }, wrappingKey, extractable, Buffer.alloc(128)).length, 40);
    // turning it extractable, or not sensitive
    assert.equal(
      returnCodeOf(() => module.C_SetAttributeValue(session, key, [{ type: pkcs11js.CKA_EXTRACTABLE, value: true }])),
      'CKR_ATTRIBUTE_READ_ONLY',
    );
    assert.equal(
      returnCodeOf(() => module.C_SetAttributeValue(session, key, [{ type: pkcs11js.CKA_SENSITIVE, value: false }])),
      'CKR_ATTRIBUTE_READ_ONLY',
    );
    // nor copied into an extractable object
    assert.equal(
      returnCodeOf(() => module.C_CopyObject(session, key, [{ type: pkcs11js.CKA_EXTRACTABLE, value: true }])),
      'CKR_ATTRIBUTE_READ_ONLY',
    );
  });

  it('the KEK is a token object (it survives the session) and private (another process sees it only after login)', () => {
    const { keyId } = generateKek(token, { keyLabel: 'kek-persist' });
    token.close();
    token = openPkcs11Token({ modulePath: hsm?.modulePath ?? '', tokenLabel, pin: new TextEncoder().encode(pin) });
    keyHandle(keyId);
    // the login state is per process in PKCS#11, so a fresh process looks without logging in, then with
    const script = `
      import pkcs11js from 'pkcs11js';
      const [modulePath, label, keyId, pin] = process.argv.slice(1);
      const p = new pkcs11js.PKCS11(); p.load(modulePath); p.C_Initialize();
      const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trimEnd() === label);
      const session = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
      const count = () => { p.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_ID, value: Buffer.from(keyId, 'hex') }]);
        const n = p.C_FindObjects(session, 10).length; p.C_FindObjectsFinal(session); return n; };
      const before = count(); p.C_Login(session, pkcs11js.CKU_USER, pin); const after = count();
      p.C_Logout(session); p.C_CloseSession(session); p.C_Finalize();
      console.log(JSON.stringify({ before, after }));`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script, hsm?.modulePath ?? '', tokenLabel, keyId, pin], {
      encoding: 'utf8',
      cwd: fileURLToPath(new URL('.', import.meta.url)),
    });
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(JSON.parse(child.stdout), { before: 0, after: 1 });
  });

  it('refuses a label already on the token unless allowExistingLabel; the ids keep same-label keys apart', () => {
    const { keyId: first } = generateKek(token, { keyLabel: 'kek-dup' });
    assert.throws(() => generateKek(token, { keyLabel: 'kek-dup' }), { name: 'CustosError', code: 'invalid_input', details: { field: 'keyLabel' } });
    const { keyId: second } = generateKek(token, { keyLabel: 'kek-dup', allowExistingLabel: true });
    assert.notEqual(second, first);
    const { module, session } = token.use();
    assert.equal(findSecretKeys(module, session, { keyLabel: 'kek-dup' }).length, 2);
    assert.equal(findSecretKeys(module, session, { keyLabel: 'kek-dup', keyId: first }).length, 1);
  });

  it('takes the CKA_ID from an injected random source', () => {
    const id = randomBytes(16);
    const { keyId } = generateKek(token, { keyLabel: 'kek-random', random: () => new Uint8Array(id) });
    assert.equal(keyId, id.toString('hex'));
    keyHandle(keyId);
    assert.throws(() => generateKek(token, { keyLabel: 'kek-random-2', random: () => new Uint8Array(8) }), { name: 'CustosError', code: 'internal' });
  });

  it('bad labels → invalid_input naming keyLabel; a closed token → hsm_unavailable', () => {
    for (const keyLabel of ['', 'x'.repeat(65), 'tab\there', ' lead', 42]) {
      assert.throws(() => generateKek(token, { keyLabel: keyLabel as string }), { name: 'CustosError', code: 'invalid_input', details: { field: 'keyLabel' } });
    }
    const closed = openPkcs11Token({ modulePath: hsm?.modulePath ?? '', tokenLabel: other, pin: new TextEncoder().encode(pin) });
    closed.close();
    assert.throws(() => generateKek(closed, { keyLabel: 'kek' }), { name: 'CustosError', code: 'hsm_unavailable' });
  });
});

describe('destroyKek (SoftHSM2)', { skip }, () => {
  const tokenLabel = freshTokenLabel();
  const pin = `pin-${randomBytes(9).toString('base64url')}`;
  let token: Pkcs11Token;

  function count(keyId: string): number {
    const { module, session } = token.use();
    return findSecretKeys(module, session, { keyId }).length;
  }

  before(() => {
    hsm?.initToken(tokenLabel, { soPin: 'so-pin', pin });
    token = openPkcs11Token({ modulePath: hsm?.modulePath ?? '', tokenLabel, pin: new TextEncoder().encode(pin) });
  });
  after(() => token?.close());

  it('destroys the key with that id and no other (same label included), for good', () => {
    const { keyId: old } = generateKek(token, { keyLabel: 'kek' });
    const { keyId: current } = generateKek(token, { keyLabel: 'kek', allowExistingLabel: true });
    destroyKek(token, old);
    assert.equal(count(old), 0);
    assert.equal(count(current), 1);
    // gone from the token, not only from this session
    token.close();
    token = openPkcs11Token({ modulePath: hsm?.modulePath ?? '', tokenLabel, pin: new TextEncoder().encode(pin) });
    assert.equal(count(old), 0);
    assert.equal(count(current), 1);
  });

  it('an id no key has → not_found; a malformed id → invalid_input; two keys with one id → invalid_input, neither destroyed', () => {
    assert.throws(() => destroyKek(token, randomBytes(16).toString('hex')), { name: 'CustosError', code: 'not_found', details: { field: 'keyId' } });
    for (const keyId of ['', 'zz', randomBytes(16).toString('hex').toUpperCase(), randomBytes(17).toString('hex')]) {
      assert.throws(() => destroyKek(token, keyId), { name: 'CustosError', code: 'invalid_input', details: { field: 'keyId' } });
    }
    const id = randomBytes(16);
    generateKek(token, { keyLabel: 'twin-a', random: () => new Uint8Array(id) });
    generateKek(token, { keyLabel: 'twin-b', random: () => new Uint8Array(id) });
    assert.throws(() => destroyKek(token, id.toString('hex')), { name: 'CustosError', code: 'invalid_input', details: { field: 'keyId' } });
    assert.equal(count(id.toString('hex')), 2);
  });
});
