export { generateHotp } from './generateHotp.js';
export type { HotpOptions, OtpAlgorithm, OtpDigits } from './generateHotp.js';
export { generateTotp, totpStep } from './generateTotp.js';
export type { TotpOptions } from './generateTotp.js';
export { verifyTotp } from './verifyTotp.js';
export type { VerifyTotpParams } from './verifyTotp.js';
export {
  THROTTLE_BASE_MS,
  THROTTLE_MAX_MS,
  THROTTLE_THRESHOLD,
  assertFactorNotThrottled,
  initialThrottleState,
  recordFactorFailure,
  recordFactorSuccess,
} from './throttle.js';
export type { FactorThrottleState } from './throttle.js';
export { generateTotpSecret } from './generateTotpSecret.js';
export { buildOtpauthUri } from './buildOtpauthUri.js';
export type { OtpauthUriParams } from './buildOtpauthUri.js';
export { parseOtpauthUri } from './parseOtpauthUri.js';
export type { ParsedOtpauthUri } from './parseOtpauthUri.js';
export { renderQrSvg } from './renderQrSvg.js';
