import { base32nopad } from '@scure/base';
import { invalidInput } from '../errors.js';

export interface OtpauthUriParams {
  /** The service name shown by the authenticator app; no ':' (it separates the label). */
  issuer: string;
  /** The account within the issuer (such as a wallet name); a ':' in it is percent-encoded. */
  accountName: string;
  secret: Uint8Array;
}

/** RFC 4226 §4 R6: at least 128 bits. */
const MIN_SECRET_BYTES = 16;

/**
 * The Google Authenticator key URI for a TOTP secret:
 * `otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30`.
 * The URI carries the secret: show it once (as a QR code), never log or store it.
 */
export function buildOtpauthUri({ issuer, accountName, secret }: OtpauthUriParams): string {
  // key-uri format: "Neither issuer nor account name may themselves contain a colon" — the issuer
  // is ours and must not; a wallet name may, so it is sent percent-encoded (%3A), never literal.
  const encodedIssuer = encodeLabelPart('issuer', issuer, false);
  const encodedAccount = encodeLabelPart('accountName', accountName, true);
  // RFC 4226 §4 R6: secret of at least 128 bits
  if (!(secret instanceof Uint8Array) || secret.length < MIN_SECRET_BYTES) {
    throw invalidInput('secret', `at least ${MIN_SECRET_BYTES} bytes`);
  }
  // key-uri format: secret in RFC 4648 base32, padding omitted
  const encodedSecret = base32nopad.encode(secret);
  return `otpauth://totp/${encodedIssuer}:${encodedAccount}` + `?secret=${encodedSecret}&issuer=${encodedIssuer}&algorithm=SHA1&digits=6&period=30`;
}

function encodeLabelPart(field: 'issuer' | 'accountName', value: string, colonAllowed: boolean): string {
  if (typeof value !== 'string' || value.length === 0) throw invalidInput(field, 'a non-empty string');
  if (!colonAllowed && value.includes(':')) throw invalidInput(field, "a string without ':'");
  try {
    return encodeURIComponent(value);
  } catch {
    // encodeURIComponent throws URIError on a lone surrogate
    throw invalidInput(field, 'well-formed Unicode text');
  }
}
