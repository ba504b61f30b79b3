import { CustosError } from '@custos/kernel';
import { createLogger, startServer } from '@custos/server';
import { type Io, parseOptions } from '../io.js';
import { openInitialisedStore, readStoreLocation } from '../openInitialisedStore.js';
import { readCredential, wipeCredential } from '../unsealerOptions.js';

const HELP = `Usage: custos serve (--data-dir D | --store postgres://…) [--host H] [--port N]
                    [--passphrase-file P | --share-file F --share-file F2 … | --pkcs11-pin-file F]
                    [--pkcs11-module M] [--log-level L]
                    [--audit-bytes-per-second N] [--audit-burst-bytes N]

Runs the HTTP API on H:N (default 127.0.0.1:8420). Starts sealed unless the credentials are given
(--passphrase-file, M --share-file for a Shamir signer, or --pkcs11-pin-file for a PKCS#11 signer:
an unattended start, where the operators accept that the credential sits on this host); a sealed
signer serves only GET /v1/sys/status, POST /v1/sys/unseal and POST /v1/sys/unseal/reset (see
custos unseal).
  --pkcs11-module M    the PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so) of a signer sealed
                       by an HSM: needed to unseal it, at start (--pkcs11-pin-file) or later with
                       POST /v1/sys/unseal {"pin"} (custos unseal --pin-file). The sealed seed names
                       the token and the key.
  --audit-bytes-per-second N, --audit-burst-bytes N
                       the audit budget of each tenant: bytes of audit records its API keys may add
                       per second, sustained (default 262144: 256 KiB), and at once (default
                       16777216: 16 MiB). Over it a request is refused 429 audit_rate_limited.
Logs are JSON lines (pino) on standard output; L is one of fatal, error, warn, info (default), debug.`;

export async function serveCommand(argv: string[], io: Io): Promise<number> {
  const opts = parseOptions(argv, {
    'data-dir': { type: 'string' },
    store: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'passphrase-file': { type: 'string' },
    'share-file': { type: 'string', multiple: true },
    'pkcs11-module': { type: 'string' },
    'pkcs11-pin-file': { type: 'string' },
    'log-level': { type: 'string' },
    'audit-bytes-per-second': { type: 'string' },
    'audit-burst-bytes': { type: 'string' },
  });
  if (opts.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  const location = readStoreLocation(opts);
  // digits only: Number() would turn '' into 0 (a random port) and take ' 80', '1e3' or '0x50'
  const port = opts.port === undefined ? 8420 : /^[0-9]{1,5}$/.test(opts.port) ? Number(opts.port) : Number.NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new CustosError('invalid_input', '--port: expected an integer 0..65535', { details: { field: 'port' } });
  const level = opts['log-level'] ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level))
    throw new CustosError('invalid_input', '--log-level: expected fatal, error, warn, info, debug, trace or silent', { details: { field: 'log-level' } });
  const auditBytesPerSecond = readPositiveInteger(opts['audit-bytes-per-second'], 'audit-bytes-per-second');
  const auditBurstBytes = readPositiveInteger(opts['audit-burst-bytes'], 'audit-burst-bytes');
  await (await openInitialisedStore(location)).close();
  const pkcs11Module = opts['pkcs11-module'];
  if (pkcs11Module === '')
    throw new CustosError('invalid_input', '--pkcs11-module: expected the path of a PKCS#11 library', { details: { field: 'pkcs11-module' } });
  const credential = readCredential(opts['passphrase-file'], opts['share-file'], { module: pkcs11Module, pinFile: opts['pkcs11-pin-file'] });
  const logger = createLogger({ level });
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer({
      store: location,
      host: opts.host ?? '127.0.0.1',
      port,
      logger,
      ...(credential === undefined ? {} : { credential }),
      ...(pkcs11Module === undefined ? {} : { pkcs11ModulePath: pkcs11Module }),
      kernelOptions: {
        ...(auditBytesPerSecond === undefined ? {} : { auditBytesPerSecond }),
        ...(auditBurstBytes === undefined ? {} : { auditBurstBytes }),
      },
    });
  } finally {
    wipeCredential(credential);
  }
  const status = server.kernel.status();
  io.stderr.write(`custos: listening on ${server.url} (signerId ${status.signerId}, ${status.sealed ? 'sealed' : 'unsealed'})\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void server.close().then(resolve, resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return 0;
}

/** An optional flag that must be a positive integer (digits only, as --port). */
function readPositiveInteger(raw: string | undefined, flag: string): number | undefined {
  if (raw === undefined) return undefined;
  const value = /^[0-9]{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < 1) throw new CustosError('invalid_input', `--${flag}: expected a positive integer`, { details: { field: flag } });
  return value;
}
