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

/**
 * Path prefixes whose next segment is a capability (the unguessable key of a page, such as an
 * approval page's or an enrolment page's): logged as `[redacted]`, like everything after it.
 */
const CAPABILITY_PATHS = ['/approve/', '/enroll/', '/owner/', '/changes/'];

/**
 * A request URL as it may be logged: without its query string (wallet names travel there) and
 * with every capability segment and what follows it replaced by `[redacted]`. The router
 * percent-decodes paths (`/%61pprove/…` is the approval page), so the path is matched decoded.
 */
export function loggedUrl(url: string): string {
  const path = url.split(/[?#]/, 1)[0] ?? '';
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    // a malformed escape somewhere: decode the well-formed ones byte by byte, enough to match
    decoded = path.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
  }
  const lower = decoded.toLowerCase();
  for (const prefix of CAPABILITY_PATHS) {
    const at = lower.indexOf(prefix);
    if (at >= 0) return `${decoded.slice(0, at)}${prefix}[redacted]`;
  }
  return path;
}

/**
 * Fastify's request serializer, with the URL as loggedUrl has it. Anything logged under `req` that
 * is not a Fastify request (it has no `raw`) is left to the redaction paths as it is.
 */
function serializeRequest(request: { raw?: unknown; method?: string; url?: string; host?: string; ip?: string; socket?: { remotePort?: number } }) {
  if (typeof request !== 'object' || request === null || request.raw === undefined) return request;
  return {
    method: request.method,
    url: typeof request.url === 'string' ? loggedUrl(request.url) : undefined,
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  const config: LoggerOptions = {
    level: options.level ?? 'info',
    base: { service: 'custos' },
    // What a platform team's log pipeline parses without a mapping: ISO-8601 times, level names.
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: REDACT_PATHS, censor: censorLogValue },
    serializers: { req: serializeRequest },
  };
  return options.destination === undefined ? pino(config) : pino(config, options.destination);
}
