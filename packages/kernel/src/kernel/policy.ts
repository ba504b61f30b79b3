import { strengthOfRecord } from '../consent/Factor.js';
import type { Requirement } from '../consent/Factor.js';
import { CustosError } from '../errors.js';
import type { OpenedWallet } from './walletRecord.js';

/**
 * Policy: what a wallet's operation requires before it is signed. Today two rules: a wallet with a
 * `bound` factor needs a `bound` consent (an approval decided with it); a wallet with an enrolled
 * factor needs a consent of strength `present` (the TOTP ETH Signer's rule); a wallet never
 * enrolled needs none — unless the deployment signs only for enrolled wallets (`deny`). Limits,
 * allowlists and `bound` requirements (the policy issue) are decided here, in this one function.
 */

/**
 * Whether a wallet with no enrolled factor may sign without consent: `allow` (the TOTP ETH Signer's
 * semantics for wallets never enrolled: a name with no wallet row is created, owned by the caller's
 * tenant, and signs) or `deny`: a name with no row is refused `wallet_not_found`, and a wallet whose
 * row has no factor `factor_required` (a database writer who deletes a wallet's rows and has the
 * row re-created by a derivation gets no signature). Enrolment and derivation create the row
 * either way. See walletRecord.ts.
 */
export type UnknownWallets = 'allow' | 'deny';

/**
 * Whether the backend may enrol a factor through the API (`on`, the default: the TOTP ETH Signer's
 * register, which hands the secret to the backend — the weaker mode, and only for a wallet with no
 * factor) or not at all (`off`: factors are enrolled on the kernel's enrolment page only).
 */
export type BackendEnrollment = 'on' | 'off';

export interface PolicySettings {
  unknownWallets: UnknownWallets;
  backendEnrollment: BackendEnrollment;
}

/** The consent a signature of `wallet` needs; throws `factor_required` when the policy refuses the wallet outright. */
export function requiredConsent(settings: PolicySettings, wallet: OpenedWallet): Requirement {
  // A wallet with a `bound` factor (a passkey registered on the kernel's page) requires `bound`:
  // a relayed code can no longer sign for it.
  if (wallet.enrolled.some((e) => strengthOfRecord(e.factor, e.record) === 'bound')) return 'bound';
  if (wallet.enrolled.length > 0) return 'present';
  // Under `deny`, a wallet without an enrolled factor never signs.
  if (settings.unknownWallets === 'deny')
    throw new CustosError('factor_required', 'this deployment signs only for wallets with an enrolled second factor', {
      details: { field: 'walletName' },
    });
  return 'none';
}
