import { constants } from 'node:os';
import { ERROR_CODES } from '@custos/kernel';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/**
 * Paths that may carry a secret, wherever an object is logged. Request bodies and headers are not
 * logged at all (Fastify's request serializer keeps method, url, host and address only); this
 * list is the second line of defence, tested by the secret-leak test.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'passphrase',
  'code',
  'secret',
  'token',
  'apiKey',
  'access_token',
  'mnemonic',
  'seed',
  'share',
  'shares',
  'pin',
  '*.passphrase',
  '*.code',
  '*.secret',
  '*.token',
  '*.apiKey',
  '*.access_token',
  '*.mnemonic',
  '*.seed',
  '*.share',
  '*.shares',
  '*.pin',
  '*.otpauthUri',
  'body',
  '*.body',
];

/**
 * Values under a redacted `code` path that are an error's code, not a second-factor code: Custos
 * codes (`code_invalid`), Node's system codes (`ECONNRESET`), Node's and Fastify's own
 * (`ERR_HTTP_REQUEST_TIMEOUT`, `FST_ERR_CTP_BODY_TOO_LARGE`). A TOTP code is digits and never one of
 * them. (pino gives the censor no parent name under a wildcard, so the value decides.)
 */
const SYSTEM_CODES = new Set(Object.keys(constants.errno));
const LIBRARY_CODE = /^(?:ERR|FST_ERR)_[A-Z0-9_]{1,60}$/;

/** The redaction censor: every listed path is censored, except where it holds an error's code. */
export function censorLogValue(value: unknown, path: string[]): unknown {
  if (
    path[path.length - 1] === 'code' &&
    typeof value === 'string' &&
    (Object.hasOwn(ERROR_CODES, value) || SYSTEM_CODES.has(value) || LIBRARY_CODE.test(value))
  )
    return value;
  return '[redacted]';
}

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  const config: LoggerOptions = {
    level: options.level ?? 'info',
    base: { service: 'custos' },
    redact: { paths: REDACT_PATHS, censor: censorLogValue },
  };
  return options.destination === undefined ? pino(config) : pino(config, options.destination);
}
