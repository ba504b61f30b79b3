import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import { CustosError } from '../../errors.js';
import { freshTokenLabel, softHsmForTests } from '../../testing/softHsm.js';
import { openPkcs11Token } from './openPkcs11Token.js';

const { hsm, skip } = softHsmForTests();
/** PKCS#11 session state "read/write, user logged in" (pkcs11t.h; pkcs11js exports no CKS_ constants). */
const CKS_RW_USER_FUNCTIONS = 3;
const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

/** A token initialised for one test, with a PIN no other test uses. */
function newToken(): { tokenLabel: string; pin: string } {
  const tokenLabel = freshTokenLabel();
  const pin = `pin-${randomBytes(9).toString('base64url')}`;
  hsm?.initToken(tokenLabel, { soPin: `so-${randomBytes(6).toString('hex')}`, pin });
  return { tokenLabel, pin };
}

/** Everything an error shows to a log or a client: message, JSON, stack, util.inspect (with cause). */
function shownByError(error: unknown): string {
  assert.ok(error instanceof CustosError);
  return [error.message, JSON.stringify(error), error.stack ?? '', inspect(error, { depth: 5 }), String(error.cause)].join('\n');
}

describe('openPkcs11Token (SoftHSM2)', { skip }, () => {
  const modulePath = hsm?.modulePath ?? '';

  it('finds the slot by token label among several tokens, opens a logged-in RW session, and close() ends it', () => {
    const others = [newToken(), newToken()];
    const wanted = newToken();
    others.push(newToken());
    const token = openPkcs11Token({ modulePath, tokenLabel: wanted.tokenLabel, pin: encode(wanted.pin) });
    try {
      assert.equal(token.tokenLabel, wanted.tokenLabel);
      assert.equal(token.closed, false);
      const { module, session } = token.use();
      const info = module.C_GetSessionInfo(session);
      assert.equal(info.state, CKS_RW_USER_FUNCTIONS, 'a read/write session logged in as the user');
      assert.equal(module.C_GetTokenInfo(info.slotID).label.trimEnd(), wanted.tokenLabel);
    } finally {
      token.close();
    }
    assert.equal(token.closed, true);
    assert.throws(() => token.use(), { name: 'CustosError', code: 'hsm_unavailable' });
    token.close(); // idempotent
    // the token can be opened again after close (the module was finalized and re-initialised)
    const again = openPkcs11Token({ modulePath, tokenLabel: wanted.tokenLabel, pin: encode(wanted.pin) });
    again.close();
  });

  it('a wrong PIN → unseal_failed with CKR_PIN_INCORRECT, and neither PIN appears in the error', () => {
    const { tokenLabel, pin } = newToken();
    const wrongPin = `${pin}x`;
    let caught: unknown;
    try {
      openPkcs11Token({ modulePath, tokenLabel, pin: encode(wrongPin) });
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof CustosError, 'a CustosError');
    assert.equal(caught.code, 'unseal_failed');
    assert.deepEqual(caught.details, { pkcs11: 'CKR_PIN_INCORRECT' });
    assert.match(caught.message, /CKR_PIN_INCORRECT/);
    assert.equal(caught.cause, undefined, 'nothing of the binding is attached');
    const shown = shownByError(caught);
    assert.ok(!shown.includes(wrongPin) && !shown.includes(pin), 'no PIN in the error');
    // the right PIN still opens it (the failed attempt left no session open)
    openPkcs11Token({ modulePath, tokenLabel, pin: encode(pin) }).close();
  });

  it('a token label no slot holds → hsm_unavailable naming the label', () => {
    newToken();
    const pin = 'never-used-pin';
    assert.throws(
      () => openPkcs11Token({ modulePath, tokenLabel: 'no-such-token', pin: encode(pin) }),
      (error: unknown) => {
        assert.ok(error instanceof CustosError);
        assert.equal(error.code, 'hsm_unavailable');
        assert.deepEqual(error.details, { tokenLabel: 'no-such-token' });
        assert.ok(!shownByError(error).includes(pin));
        return true;
      },
    );
  });

  it('a module that cannot be loaded → hsm_unavailable', () => {
    assert.throws(() => openPkcs11Token({ modulePath: '/nonexistent/libpkcs11.so', tokenLabel: 'x', pin: encode('1234') }), {
      name: 'CustosError',
      code: 'hsm_unavailable',
    });
  });

  it('refuses to open the same token twice in one process (the login is shared per process)', () => {
    const { tokenLabel, pin } = newToken();
    const first = openPkcs11Token({ modulePath, tokenLabel, pin: encode(pin) });
    try {
      assert.throws(() => openPkcs11Token({ modulePath, tokenLabel, pin: encode(pin) }), { name: 'CustosError', code: 'hsm_unavailable' });
      // the refused second open did not log the first one out
      const { module, session } = first.use();
      assert.equal(module.C_GetSessionInfo(session).state, CKS_RW_USER_FUNCTIONS);
    } finally {
      first.close();
    }
  });

  it('keeps no copy of the PIN: the caller may wipe it at once, and the token object does not show it', () => {
    const { tokenLabel, pin } = newToken();
    const pinBytes = encode(pin);
    const token = openPkcs11Token({ modulePath, tokenLabel, pin: pinBytes });
    pinBytes.fill(0);
    try {
      const { module, session } = token.use();
      assert.equal(module.C_GetSessionInfo(session).state, CKS_RW_USER_FUNCTIONS, 'still logged in');
      const shown = `${JSON.stringify(token)}\n${inspect(token, { depth: 5, showHidden: true, getters: true })}`;
      assert.ok(!shown.includes(pin), 'no PIN in the token object');
    } finally {
      token.close();
    }
  });

  it('bad options → invalid_input naming the field', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ modulePath: '', tokenLabel: 't', pin: encode('1') }, 'modulePath'],
      [{ modulePath, tokenLabel: '', pin: encode('1') }, 'tokenLabel'],
      [{ modulePath, tokenLabel: 'x'.repeat(33), pin: encode('1') }, 'tokenLabel'],
      [{ modulePath, tokenLabel: ' padded', pin: encode('1') }, 'tokenLabel'],
      [{ modulePath, tokenLabel: 'a\nb', pin: encode('1') }, 'tokenLabel'],
      [{ modulePath, tokenLabel: 't', pin: new Uint8Array(0) }, 'pin'],
      [{ modulePath, tokenLabel: 't', pin: '1234' }, 'pin'],
      [{ modulePath, tokenLabel: 't', pin: new Uint8Array([0xff, 0xfe]) }, 'pin'],
    ];
    for (const [options, field] of cases) {
      assert.throws(() => openPkcs11Token(options as never), { name: 'CustosError', code: 'invalid_input', details: { field } }, field);
    }
  });
});
