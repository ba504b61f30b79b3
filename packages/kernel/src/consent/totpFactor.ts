import { CustosError, isCustosError } from '../errors.js';
import type { StoreTx, TotpFactorRecord, TotpFactorState, WalletRows } from '../store/types.js';
import { buildOtpauthUri } from '../totp/buildOtpauthUri.js';
import { generateTotpSecret } from '../totp/generateTotpSecret.js';
import { renderQrSvg } from '../totp/renderQrSvg.js';
import { assertFactorNotThrottled, recordFactorFailure, recordFactorSuccess } from '../totp/throttle.js';
import { verifyTotp } from '../totp/verifyTotp.js';
import type { Factor, FactorRecord, FactorRows } from './Factor.js';

/**
 * TOTP (RFC 6238) as a Factor: a code relayed by the backend proves the owner's presence
 * (`present`), not what they were shown. The secret is sealed in the factor's record; the state is
 * the last accepted step (a code is never accepted twice, nor an earlier one) and the throttle.
 */

/** What a TOTP enrolment shows the owner: the otpauth URI and its QR code. */
export interface TotpShown {
  otpauthUri: string;
  qrSvg: string;
}

/** A wallet has at most one TOTP factor; its id and version are fixed until factors can be replaced. */
const TOTP = { kind: 'totp', id: 'totp', version: 1 } as const;

/** The totp_factors table, mapped to FactorRecord. */
const totpRows: FactorRows<TotpFactorState> = {
  stored: totpState,
  async read(tx: StoreTx, walletName: string) {
    const row = await tx.getTotpFactorForUpdate(walletName);
    return row === undefined ? [] : [totpRecordOf(row)];
  },
  fromWalletRows(rows: WalletRows) {
    return rows.totp === undefined ? [] : [totpRecordOf(rows.totp)];
  },
  async insert(tx, record) {
    if (record.secretEnvelope === null) throw new CustosError('internal', 'a TOTP factor without its sealed secret');
    await tx.insertTotpFactor({
      walletName: record.walletName,
      enrolledVia: record.enrolledVia,
      secretEnvelope: record.secretEnvelope,
      ...record.state,
      createdAt: record.createdAt,
      mac: record.mac,
    });
  },
  async saveState(tx, record, state, mac) {
    await tx.updateTotpFactorState(record.walletName, state, mac);
  },
};

/** The state fields a TOTP row keeps (what is MAC'd and saved). */
function totpState({ lastAcceptedStep, failures, lockedUntilMs }: TotpFactorState): TotpFactorState {
  return { lastAcceptedStep, failures, lockedUntilMs };
}

/** A TOTP row of the store as the consent module's FactorRecord (also for the upgrade's MAC pass). */
export function totpRecordOf(row: TotpFactorRecord): FactorRecord<TotpFactorState> {
  return {
    ...TOTP,
    walletName: row.walletName,
    secretEnvelope: row.secretEnvelope,
    state: totpState(row),
    createdAt: row.createdAt,
    enrolledVia: row.enrolledVia,
    mac: row.mac,
  };
}

/** `issuer`: shown in authenticator apps (the otpauth label prefix). */
export function totpFactor({ issuer }: { issuer: string }): Factor<TotpFactorState, TotpShown, null> {
  /** The otpauth URI of the secret and its QR code. */
  const show = async (walletName: string, secret: Uint8Array): Promise<TotpShown> => {
    const otpauthUri = buildOtpauthUri({ issuer, accountName: walletName, secret });
    return { otpauthUri, qrSvg: await renderQrSvg(otpauthUri) };
  };
  return {
    kind: TOTP.kind,
    strength: 'present',
    label: 'TOTP',
    rows: totpRows,
    enroll: {
      // Everything the owner needs is rendered before the enrolment commits, so that a wallet is
      // never enrolled with a secret nobody received.
      async begin({ walletName, random }) {
        const secret = generateTotpSecret(random);
        try {
          return { secret, shown: await show(walletName, secret), pending: null };
        } catch (error) {
          secret.fill(0);
          throw error;
        }
      },
      async show({ walletName, secret }) {
        if (secret === null) throw new CustosError('internal', 'a TOTP enrolment without its secret');
        return show(walletName, secret);
      },
      // Through the API the factor is enrolled as shown (the plugin's register). On the enrolment
      // page it becomes active only with a first valid code from the secret shown, and that code's
      // step is spent: it cannot sign afterwards.
      finish({ via, secret, proof, now }) {
        if (via === 'api') return { id: TOTP.id, state: { lastAcceptedStep: null, failures: 0, lockedUntilMs: null } };
        if (proof === undefined || proof === null || proof === '')
          throw new CustosError('code_required', 'type the code your authenticator app shows to activate it', { details: { field: 'code' } });
        if (secret === null) throw new CustosError('internal', 'a TOTP enrolment without its secret');
        const { step } = verifyTotp({ secret, code: proof as string, nowMs: now, lastAcceptedStep: null });
        return { id: TOTP.id, state: { lastAcceptedStep: step, failures: 0, lockedUntilMs: null } };
      },
    },
    /**
     * Throttle first, then a code must be present, the secret must open (else refuse: fail closed),
     * then the code is checked and a wrong code charged (one failure per attempt). The one refusal
     * not charged is `code_reused`: the code is exactly that of a step already accepted (in the ±1
     * window, at or below the last accepted step), i.e. the right code of a consumed step, which
     * tells a guesser nothing about the next one; so a backend that retries a request that
     * succeeded never locks the owner out.
     */
    verify({ wallet, proof, now }) {
      const state = wallet.factor.state;
      const throttle = { failures: state.failures, lockedUntilMs: state.lockedUntilMs };
      assertFactorNotThrottled(throttle, now);
      if (proof === undefined || proof === null)
        throw new CustosError('code_required', 'this wallet has a TOTP factor: a code is required', { details: { field: 'code' } });
      const secret = wallet.openSecret();
      try {
        const { step } = verifyTotp({ secret, code: proof as string, nowMs: now, lastAcceptedStep: state.lastAcceptedStep });
        return { stateChange: { lastAcceptedStep: step, ...recordFactorSuccess() }, evidence: { factor: 'totp', totpStep: step } };
      } catch (error) {
        if (isCustosError(error) && (error.code === 'invalid_input' || error.code === 'code_reused')) throw error;
        // Every other failure is charged: a wrong code, and (a coding failure) anything unexpected.
        const stateChange = { lastAcceptedStep: state.lastAcceptedStep, ...recordFactorFailure(throttle, now) };
        if (isCustosError(error)) throw new CustosError(error.code, error.message, { details: error.details, stateChange });
        throw new CustosError('internal', 'internal failure', { cause: error, stateChange });
      }
    },
  };
}
