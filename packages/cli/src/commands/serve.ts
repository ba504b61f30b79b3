import { CustosError } from '@custos/kernel';
import { createLogger, startServer } from '@custos/server';
import { type Io, parseOptions } from '../io.js';
import { openInitialisedStore, readStoreLocation } from '../openInitialisedStore.js';
import { readCredential, wipeCredential } from '../unsealerOptions.js';

const HELP = `Usage: custos serve (--data-dir D | --store postgres://…) [--host H] [--port N]
                    [--passphrase-file P | --share-file F --share-file F2 … | --pkcs11-pin-file F]
                    [--pkcs11-module M] [--log-level L]
                    [--audit-checkpoint-every N] [--audit-checkpoint-interval SECONDS]
                    [--audit-checkpoint-file PATH] [--audit-checkpoint-webhook URL]

Runs the HTTP API on H:N (default 127.0.0.1:8420). Starts sealed unless the credentials are given
(--passphrase-file, M --share-file for a Shamir signer, or --pkcs11-pin-file for a PKCS#11 signer:
an unattended start, where the operators accept that the credential sits on this host); a sealed
signer serves only GET /v1/sys/status, POST /v1/sys/unseal and POST /v1/sys/unseal/reset (see
custos unseal).
  --pkcs11-module M    the PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so) of a signer sealed
                       by an HSM: needed to unseal it, at start (--pkcs11-pin-file) or later with
                       POST /v1/sys/unseal {"pin"} (custos unseal --pin-file). The sealed seed names
                       the token and the key.
Audit checkpoints (docs/audit.md): the kernel signs the audit chain's head with its audit key every
N records (default 1000; 0: by time only), every SECONDS (default 60) when the log grew, at a seal
and at shutdown, and stores it; each is also pushed out of the data directory as it is made:
  --audit-checkpoint-file PATH     appended as one JSON line, fsynced (the file custos audit verify
                                   --checkpoint reads; keep it on another machine or volume)
  --audit-checkpoint-webhook URL   POSTed as JSON, best effort: retried 5 times over ~15 s, never
                                   holding up signing; a lost one is made up by the next
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
    'audit-checkpoint-every': { type: 'string' },
    'audit-checkpoint-interval': { type: 'string' },
    'audit-checkpoint-file': { type: 'string' },
    'audit-checkpoint-webhook': { type: 'string' },
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
  const auditCheckpoints = readAuditCheckpointOptions(opts);
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
      auditCheckpoints,
      ...(credential === undefined ? {} : { credential }),
      ...(pkcs11Module === undefined ? {} : { pkcs11ModulePath: pkcs11Module }),
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

/** The --audit-checkpoint-* options, checked: counts and seconds are plain digits, paths and URLs non-empty. */
function readAuditCheckpointOptions(opts: {
  'audit-checkpoint-every'?: string | undefined;
  'audit-checkpoint-interval'?: string | undefined;
  'audit-checkpoint-file'?: string | undefined;
  'audit-checkpoint-webhook'?: string | undefined;
}): NonNullable<Parameters<typeof startServer>[0]['auditCheckpoints']> {
  const digits = (value: string | undefined, option: string, min: number, max: number): number | undefined => {
    if (value === undefined) return undefined;
    const n = /^[0-9]{1,9}$/.test(value) ? Number(value) : Number.NaN;
    if (!(n >= min && n <= max)) throw new CustosError('invalid_input', `--${option}: expected an integer ${min}..${max}`, { details: { field: option } });
    return n;
  };
  const every = digits(opts['audit-checkpoint-every'], 'audit-checkpoint-every', 0, 100_000_000);
  const intervalSeconds = digits(opts['audit-checkpoint-interval'], 'audit-checkpoint-interval', 1, 86_400);
  const file = opts['audit-checkpoint-file'];
  const webhookUrl = opts['audit-checkpoint-webhook'];
  if (file === '') throw new CustosError('invalid_input', '--audit-checkpoint-file: expected a path', { details: { field: 'audit-checkpoint-file' } });
  if (webhookUrl === '')
    throw new CustosError('invalid_input', '--audit-checkpoint-webhook: expected an http(s) URL', { details: { field: 'audit-checkpoint-webhook' } });
  return {
    ...(every === undefined ? {} : { every }),
    ...(intervalSeconds === undefined ? {} : { intervalSeconds }),
    ...(file === undefined ? {} : { file }),
    ...(webhookUrl === undefined ? {} : { webhookUrl }),
  };
}
