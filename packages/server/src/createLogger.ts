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

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  const config: LoggerOptions = {
    level: options.level ?? 'info',
    base: { service: 'custos' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  return options.destination === undefined ? pino(config) : pino(config, options.destination);
}
