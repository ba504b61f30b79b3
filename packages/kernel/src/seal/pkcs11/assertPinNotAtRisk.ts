import { CustosError } from '../../errors.js';

/**
 * CK_TOKEN_INFO flags (PKCS#11 v2.40 §3.2, pkcs11t.h) that say the user PIN is at risk: a wrong
 * login has already failed (COUNT_LOW), the next wrong one locks the PIN (FINAL_TRY), or it is
 * locked (LOCKED). The standard's values, so that this check needs no native binding.
 */
export const CKF_USER_PIN_COUNT_LOW = 0x0001_0000;
export const CKF_USER_PIN_FINAL_TRY = 0x0002_0000;
export const CKF_USER_PIN_LOCKED = 0x0004_0000;

const AT_RISK: ReadonlyArray<[number, string]> = [
  [CKF_USER_PIN_LOCKED, 'CKF_USER_PIN_LOCKED'],
  [CKF_USER_PIN_FINAL_TRY, 'CKF_USER_PIN_FINAL_TRY'],
  [CKF_USER_PIN_COUNT_LOW, 'CKF_USER_PIN_COUNT_LOW'],
];

/**
 * Refuses (`hsm_pin_protect`, details.pkcs11Flags naming the flags set) to try a PIN on a token
 * whose flags say a wrong one would lock it or has already been counted: an unauthenticated caller
 * must not be able to spend the operator's last PIN tries. The operator unseals such a token over
 * the admin socket (or with --pkcs11-pin-file at start), where no such check is made.
 */
export function assertPinNotAtRisk(flags: number, tokenLabel: string): void {
  const set = AT_RISK.filter(([bit]) => (flags & bit) !== 0).map(([, name]) => name);
  if (set.length === 0) return;
  throw new CustosError(
    'hsm_pin_protect',
    `PKCS#11: the token ${JSON.stringify(tokenLabel)} reports ${set.join(', ')}: a PIN from the network is not tried; unseal over the admin socket (custos unseal --admin-socket)`,
    { details: { field: 'pin', tokenLabel, pkcs11Flags: set } },
  );
}
