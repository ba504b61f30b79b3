// Tests of the PKCS#11 token session (token.ts): openPkcs11Token and its PIN guard (SoftHSM2).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import type { PKCS11, TokenInfo } from 'pkcs11js';
import { CustosError } from '../../errors.js';
import { freshTokenLabel, softHsmForTests } from '../../testing/softHsm.js';
import { assertPinNotAtRisk, CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED, loadPkcs11js, openPkcs11Token } from './token.js';

const { hsm, skip } = softHsmForTests();
const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('openPkcs11Token (SoftHSM2)', { skip }, () => {
  /** PKCS#11 session state "read/write, user logged in" (pkcs11t.h; pkcs11js exports no CKS_ constants). */
  const CKS_RW_USER_FUNCTIONS = 3;

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

/** Flags of a healthy token (CKF_RNG | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED). */
const HEALTHY = 0x0001 | 0x0004 | 0x0008 | 0x0400;
const protect = (flags: string[]) => ({ name: 'CustosError', code: 'hsm_pin_protect', details: { field: 'pin', tokenLabel: 'T', pkcs11Flags: flags } });

describe('assertPinNotAtRisk', () => {
  it('refuses hsm_pin_protect, naming the flags, when a wrong PIN was counted, is the last try, or the PIN is locked', () => {
    assert.throws(() => assertPinNotAtRisk(HEALTHY | CKF_USER_PIN_COUNT_LOW, 'T'), protect(['CKF_USER_PIN_COUNT_LOW']));
    assert.throws(() => assertPinNotAtRisk(HEALTHY | CKF_USER_PIN_FINAL_TRY, 'T'), protect(['CKF_USER_PIN_FINAL_TRY']));
    assert.throws(() => assertPinNotAtRisk(HEALTHY | CKF_USER_PIN_LOCKED, 'T'), protect(['CKF_USER_PIN_LOCKED']));
    assert.throws(
      () => assertPinNotAtRisk(HEALTHY | CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY, 'T'),
      protect(['CKF_USER_PIN_FINAL_TRY', 'CKF_USER_PIN_COUNT_LOW']),
    );
  });

  it("lets a healthy token's PIN be tried (SO PIN flags are not the user's)", () => {
    assertPinNotAtRisk(0, 'T');
    assertPinNotAtRisk(HEALTHY, 'T');
    // CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_FINAL_TRY | CKF_SO_PIN_LOCKED | CKF_USER_PIN_TO_BE_CHANGED
    assertPinNotAtRisk(HEALTHY | 0x0010_0000 | 0x0020_0000 | 0x0040_0000 | 0x0008_0000, 'T');
  });

  it("uses the standard's flag values (those of the pkcs11js binding)", () => {
    const p = loadPkcs11js();
    assert.equal(CKF_USER_PIN_COUNT_LOW, p.CKF_USER_PIN_COUNT_LOW);
    assert.equal(CKF_USER_PIN_FINAL_TRY, p.CKF_USER_PIN_FINAL_TRY);
    assert.equal(CKF_USER_PIN_LOCKED, p.CKF_USER_PIN_LOCKED);
  });
});

/**
 * A mock of C_GetTokenInfo: SoftHSM2 never locks a PIN, so its flags never say "final try" or
 * "locked". This stand-in answers the real token's information with exactly `flags` (a healthy
 * token's flags plus the ones under test), and counts its calls.
 */
function mockTokenInfoWithFlags(flags: number): { getTokenInfo: (module: PKCS11, slot: Buffer) => Pick<TokenInfo, 'flags'>; calls: number } {
  const mock = {
    calls: 0,
    getTokenInfo(module: PKCS11, slot: Buffer): Pick<TokenInfo, 'flags'> {
      mock.calls += 1;
      const info = module.C_GetTokenInfo(slot);
      return { ...info, flags };
    },
  };
  return mock;
}

describe('openPkcs11Token with protectPin (SoftHSM2, C_GetTokenInfo mocked)', { skip }, () => {
  const modulePath = hsm?.modulePath ?? '';
  const tokenLabel = freshTokenLabel();
  const pin = `pin-${randomBytes(9).toString('base64url')}`;
  hsm?.initToken(tokenLabel, { soPin: `so-${randomBytes(6).toString('hex')}`, pin });

  for (const [name, flag] of [
    ['CKF_USER_PIN_FINAL_TRY', CKF_USER_PIN_FINAL_TRY],
    ['CKF_USER_PIN_COUNT_LOW', CKF_USER_PIN_COUNT_LOW],
    ['CKF_USER_PIN_LOCKED', CKF_USER_PIN_LOCKED],
  ] as const) {
    it(`${name}: a PIN (wrong or right) is refused hsm_pin_protect before any C_Login`, () => {
      const mock = mockTokenInfoWithFlags(HEALTHY | flag);
      // a wrong PIN would be unseal_failed (CKR_PIN_INCORRECT) if it reached C_Login: the token would count it
      assert.throws(() => openPkcs11Token({ modulePath, tokenLabel, pin: encode(`${pin}x`), protectPin: true, getTokenInfo: mock.getTokenInfo }), {
        name: 'CustosError',
        code: 'hsm_pin_protect',
        details: { field: 'pin', tokenLabel, pkcs11Flags: [name] },
      });
      assert.throws(() => openPkcs11Token({ modulePath, tokenLabel, pin: encode(pin), protectPin: true, getTokenInfo: mock.getTokenInfo }), {
        code: 'hsm_pin_protect',
      });
      assert.equal(mock.calls, 2);
      // nothing stayed open: the operator's own channel (no protectPin) opens the token, without reading the flags
      const operator = mockTokenInfoWithFlags(HEALTHY | flag);
      const token = openPkcs11Token({ modulePath, tokenLabel, pin: encode(pin), getTokenInfo: operator.getTokenInfo });
      token.close();
      assert.equal(operator.calls, 0);
    });
  }

  it('a token whose flags are healthy: the PIN is tried (a wrong one is unseal_failed, the right one opens)', () => {
    const mock = mockTokenInfoWithFlags(HEALTHY);
    assert.throws(() => openPkcs11Token({ modulePath, tokenLabel, pin: encode(`${pin}x`), protectPin: true, getTokenInfo: mock.getTokenInfo }), {
      code: 'unseal_failed',
      details: { pkcs11: 'CKR_PIN_INCORRECT' },
    });
    openPkcs11Token({ modulePath, tokenLabel, pin: encode(pin), protectPin: true, getTokenInfo: mock.getTokenInfo }).close();
    assert.equal(mock.calls, 2);
  });

  it('the real flags (no mock): after one wrong PIN SoftHSM2 reports CKF_USER_PIN_COUNT_LOW, the network PIN is refused until an operator logs in', () => {
    const fresh = freshTokenLabel();
    hsm?.initToken(fresh, { soPin: `so-${randomBytes(6).toString('hex')}`, pin });
    openPkcs11Token({ modulePath, tokenLabel: fresh, pin: encode(pin), protectPin: true }).close();
    assert.throws(() => openPkcs11Token({ modulePath, tokenLabel: fresh, pin: encode(`${pin}x`), protectPin: true }), { code: 'unseal_failed' });
    assert.throws(() => openPkcs11Token({ modulePath, tokenLabel: fresh, pin: encode(pin), protectPin: true }), {
      code: 'hsm_pin_protect',
      details: { field: 'pin', tokenLabel: fresh, pkcs11Flags: ['CKF_USER_PIN_COUNT_LOW'] },
    });
    // the operator's channel tries the PIN; a successful login clears the flag
    openPkcs11Token({ modulePath, tokenLabel: fresh, pin: encode(pin) }).close();
    openPkcs11Token({ modulePath, tokenLabel: fresh, pin: encode(pin), protectPin: true }).close();
  });
});
