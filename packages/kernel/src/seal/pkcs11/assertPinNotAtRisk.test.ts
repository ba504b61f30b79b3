import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { PKCS11, TokenInfo } from 'pkcs11js';
import { freshTokenLabel, softHsmForTests } from '../../testing/softHsm.js';
import { assertPinNotAtRisk, CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED } from './assertPinNotAtRisk.js';
import { loadPkcs11js } from './loadPkcs11js.js';
import { openPkcs11Token } from './openPkcs11Token.js';

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

const { hsm, skip } = softHsmForTests();
const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

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
