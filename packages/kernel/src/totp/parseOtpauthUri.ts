import { base32nopad } from '@scure/base';
import { invalidInput } from '../errors.js';
import type { OtpAlgorithm, OtpDigits } from './generateHotp.js';

export interface ParsedOtpauthUri {
  issuer: string;
  accountName: string;
  secret: Uint8Array;
  algorithm: OtpAlgorithm;
  digits: OtpDigits;
  period: number;
}

const PREFIX = 'otpauth://totp/';
const KNOWN_PARAMETERS = new Set(['secret', 'issuer', 'algorithm', 'digits', 'period']);
const ALGORITHMS: readonly string[] = ['SHA1', 'SHA256', 'SHA512'] satisfies OtpAlgorithm[];
const DIGITS: Record<string, OtpDigits> = { '6': 6, '7': 7, '8': 8 };
const MIN_SECRET_BYTES = 16;
const MAX_PERIOD_SECONDS = 86_400;

/**
 * Parses a TOTP key URI (Google Authenticator key-uri format) as written by `buildOtpauthUri`, and
 * refuses anything else: another type or scheme, a fragment, a missing or differing issuer, an
 * unknown or repeated parameter, a secret that is not canonical unpadded upper-case base32 of at
 * least 16 bytes. `algorithm`, `digits` and `period` default to SHA1, 6 and 30 when absent.
 * Errors name the field `uri` and never quote it (it holds the secret).
 */
export function parseOtpauthUri(uri: string): ParsedOtpauthUri {
  // scheme and type: only TOTP key URIs
  if (typeof uri !== 'string' || !uri.startsWith(PREFIX)) throw bad('the otpauth scheme and the totp type');
  // no fragment: the format has none
  if (uri.includes('#')) throw bad('no fragment');
  const rest = uri.slice(PREFIX.length);
  const queryStart = rest.indexOf('?');
  if (queryStart < 0) throw bad('a query with the secret');

  // label: ISSUER:ACCOUNT, each part percent-encoded, the separator a literal ':'
  const labelParts = rest.slice(0, queryStart).split(':');
  if (labelParts.length !== 2) throw bad('a label of the form issuer:accountName');
  const issuer = decodePart(labelParts[0] ?? '', 'label issuer', false);
  // A wallet name may hold ':'; it travels percent-encoded (%3A), never as the literal separator.
  const accountName = decodePart(labelParts[1] ?? '', 'label accountName', true);

  // parameters: known names, each at most once
  const parameters = new Map<string, string>();
  for (const pair of rest.slice(queryStart + 1).split('&')) {
    const equals = pair.indexOf('=');
    if (equals <= 0) throw bad('name=value parameters');
    const name = pair.slice(0, equals);
    if (!KNOWN_PARAMETERS.has(name)) throw bad('only secret, issuer, algorithm, digits and period parameters');
    if (parameters.has(name)) throw bad('each parameter at most once');
    parameters.set(name, decodePart(pair.slice(equals + 1), `parameter ${name}`));
  }

  // issuer: required, and equal to the label's prefix
  if (parameters.get('issuer') !== issuer) throw bad('an issuer parameter equal to the label prefix');

  // secret: canonical unpadded upper-case base32 (RFC 4648 §6), at least 128 bits (RFC 4226 §4 R6)
  const encodedSecret = parameters.get('secret');
  if (encodedSecret === undefined || !/^[A-Z2-7]+$/.test(encodedSecret)) {
    throw bad('a secret in unpadded upper-case base32');
  }
  let secret: Uint8Array;
  try {
    secret = base32nopad.decode(encodedSecret);
  } catch {
    throw bad('a secret in canonical base32');
  }
  if (secret.length < MIN_SECRET_BYTES) throw bad(`a secret of at least ${MIN_SECRET_BYTES} bytes`);

  // algorithm, digits, period: optional, with the format's defaults
  const algorithm = parameters.get('algorithm') ?? 'SHA1';
  if (!ALGORITHMS.includes(algorithm)) throw bad('algorithm SHA1, SHA256 or SHA512');
  const digitsText = parameters.get('digits') ?? '6';
  const digits = Object.hasOwn(DIGITS, digitsText) ? DIGITS[digitsText] : undefined;
  if (digits === undefined) throw bad('digits 6, 7 or 8');
  const periodText = parameters.get('period') ?? '30';
  const period = Number(periodText);
  if (!/^[1-9][0-9]{0,4}$/.test(periodText) || period > MAX_PERIOD_SECONDS) {
    throw bad(`a period from 1 to ${MAX_PERIOD_SECONDS} seconds`);
  }

  return { issuer, accountName, secret, algorithm: algorithm as OtpAlgorithm, digits, period };
}

function decodePart(encoded: string, what: string, colonAllowed = false): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(encoded);
  } catch {
    throw bad(`valid percent-encoding in the ${what}`);
  }
  if (decoded.length === 0 || (!colonAllowed && decoded.includes(':'))) throw bad(`a non-empty ${what}${colonAllowed ? '' : " without ':'"}`);
  return decoded;
}

function bad(expected: string) {
  return invalidInput('uri', `an otpauth://totp/ key URI with ${expected}`);
}
