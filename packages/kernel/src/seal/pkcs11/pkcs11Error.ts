import { CustosError, type ErrorCode } from '../../errors.js';

// pkcs11js throws Pkcs11Error('CKR_PIN_INCORRECT') from most calls, a plain Error('CKR_…:16') from a few
const RETURN_CODE_NAME = /^(CKR_[A-Z0-9_]+)(?::\d+)?$/;

/**
 * The PKCS#11 return code name of an error thrown by pkcs11js (its message is the name, e.g.
 * `CKR_PIN_INCORRECT`), or undefined for anything else.
 */
export function pkcs11ReturnCode(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  return RETURN_CODE_NAME.exec(error.message.trim())?.[1];
}

/**
 * A kernel error for a failed PKCS#11 call: the code given, a message naming what was being done and
 * the PKCS#11 return code name (and what it means here, if given), and `details.pkcs11`. Nothing else from the token or the binding is
 * kept — not its message, stack or arguments (the PIN went through C_Login), so the original error
 * is deliberately not attached as `cause`.
 */
export function pkcs11Error(code: ErrorCode, doing: string, error: unknown, meaning?: string): CustosError {
  const returnCode = pkcs11ReturnCode(error) ?? 'an error of the PKCS#11 binding';
  const suffix = meaning === undefined ? '' : ` (${meaning})`;
  return new CustosError(code, `PKCS#11: ${doing} failed with ${returnCode}${suffix}`, { details: { pkcs11: returnCode } });
}
