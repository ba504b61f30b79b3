import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CustosError } from '../errors.js';
import type { TotpFactorState } from '../store/types.js';
import { generateTotp } from '../totp/generateTotp.js';
import type { FactorWallet } from './Factor.js';
import { totpFactor } from './totpFactor.js';

// RFC 6238 appendix B's SHA-1 secret; a fixed instant in the middle of a step.
const SECRET = new TextEncoder().encode('12345678901234567890');
const NOW = 1_111_111_109_000 + 15_000;
const STEP = Math.floor(NOW / 30_000);

function walletWith(state: TotpFactorState, opened: Uint8Array[] = []): FactorWallet<TotpFactorState> {
  return {
    name: 'w',
    tenant: 'default',
    factor: { kind: 'totp', id: 'totp', version: 1, walletName: 'w', secretEnvelope: 'sealed', state, createdAt: 0, enrolledVia: 'api', mac: null },
    openSecret() {
      const copy = Uint8Array.from(SECRET);
      opened.push(copy);
      return copy;
    },
  };
}

const fresh: TotpFactorState = { lastAcceptedStep: null, failures: 0, lockedUntilMs: null };
const totp = totpFactor({ issuer: 'Custos' });

function refusal(run: () => unknown): CustosError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof CustosError);
    return error;
  }
  assert.fail('expected a refusal');
}

describe('TOTP as a Factor: one way to fail, the charge carried by the error', () => {
  it('a right code verifies: the accepted step is the state change, the step the evidence', () => {
    const code = generateTotp(SECRET, NOW / 1000);
    const verified = totp.verify({ wallet: walletWith(fresh), opHash: 'aa', proof: code, now: NOW });
    assert.deepEqual(verified, { stateChange: { lastAcceptedStep: STEP, failures: 0, lockedUntilMs: null }, evidence: { factor: 'totp', totpStep: STEP } });
  });

  it('a wrong code throws code_invalid carrying the charged state (not serialised)', () => {
    const right = generateTotp(SECRET, NOW / 1000);
    const wrong = right === '000000' ? '000001' : '000000';
    const error = refusal(() => totp.verify({ wallet: walletWith({ ...fresh, lastAcceptedStep: 7 }), opHash: 'aa', proof: wrong, now: NOW }));
    assert.equal(error.code, 'code_invalid');
    assert.deepEqual(error.stateChange, { lastAcceptedStep: 7, failures: 1, lockedUntilMs: null });
    assert.equal(JSON.stringify(error).includes('failures'), false);
    assert.equal(Object.keys(error).includes('stateChange'), false);
  });

  it('the code of a consumed step is code_reused, not charged (no stateChange)', () => {
    const code = generateTotp(SECRET, NOW / 1000);
    const error = refusal(() => totp.verify({ wallet: walletWith({ ...fresh, lastAcceptedStep: STEP }), opHash: 'aa', proof: code, now: NOW }));
    assert.equal(error.code, 'code_reused');
    assert.equal(error.stateChange, undefined);
  });

  it('no code is code_required, and a locked factor factor_throttled — neither opens the secret nor charges', () => {
    const opened: Uint8Array[] = [];
    const none = refusal(() => totp.verify({ wallet: walletWith(fresh, opened), opHash: 'aa', proof: undefined, now: NOW }));
    assert.equal(none.code, 'code_required');
    assert.equal(none.stateChange, undefined);
    const locked = refusal(() =>
      totp.verify({ wallet: walletWith({ ...fresh, failures: 5, lockedUntilMs: NOW + 1000 }, opened), opHash: 'aa', proof: '123456', now: NOW }),
    );
    assert.equal(locked.code, 'factor_throttled');
    assert.equal(locked.stateChange, undefined);
    assert.equal(opened.length, 0);
  });

  it('enrolment: begin renders the otpauth URI and QR for a fresh 20-byte secret; finish starts with no step and no failures', async () => {
    const begun = await totp.enroll.begin({ walletName: 'w', now: NOW, random: (n) => new Uint8Array(n).fill(7) });
    assert.equal(begun.secret?.length, 20);
    assert.match(begun.shown.otpauthUri, /^otpauth:\/\/totp\/Custos:w\?/);
    assert.match(begun.shown.qrSvg, /^<svg/);
    assert.deepEqual(totp.enroll.finish({ walletName: 'w', pending: null, via: 'api', secret: null, proof: undefined, now: NOW }), {
      id: 'totp',
      state: fresh,
    });
  });
});
