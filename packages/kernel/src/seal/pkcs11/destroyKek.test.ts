import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { freshTokenLabel, softHsmForTests } from '../../testing/softHsm.js';
import { destroyKek } from './destroyKek.js';
import { findSecretKeys } from './findSecretKeys.js';
import { generateKek } from './generateKek.js';
import { openPkcs11Token } from './openPkcs11Token.js';
import type { Pkcs11Token } from './types.js';

const { hsm, skip } = softHsmForTests();
const tokenLabel = freshTokenLabel();
const pin = `pin-${randomBytes(9).toString('base64url')}`;
let token: Pkcs11Token;

function count(keyId: string): number {
  const { module, session } = token.use();
  return findSecretKeys(module, session, { keyId }).length;
}

describe('destroyKek (SoftHSM2)', { skip }, () => {
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
