import { CustosError } from '@custos/kernel';
import { createLogger, startServer } from '@custos/server';
import { type Io, parseOptions } from '../io.js';
import { openInitialisedStore, readStoreLocation } from '../openInitialisedStore.js';
import { readCredential, wipeCredential } from '../unsealerOptions.js';

const HELP = `Usage: custos serve (--data-dir D | --store postgres://…) [--host H] [--port N]
                    [--passphrase-file P | --share-file F --share-file F2 … | --pkcs11-pin-file F]
                    [--pkcs11-module M] [--log-level L] [--unknown-wallets allow|deny]

Runs the HTTP API on H:N (default 127.0.0.1:8420). Starts sealed unless the credentials are given
(--passphrase-file, M --share-file for a Shamir signer, or --pkcs11-pin-file for a PKCS#11 signer:
an unattended start, where the operators accept that the credential sits on this host); a sealed
signer serves only GET /v1/sys/status, POST /v1/sys/unseal and POST /v1/sys/unseal/reset (see
custos unseal).
  --pkcs11-module M    the PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so) of a signer sealed
                       by an HSM: needed to unseal it, at start (--pkcs11-pin-file) or later with
                       POST /v1/sys/unseal {"pin"} (custos unseal --pin-file). The sealed seed names
                       the token and the key.
  --unknown-wallets    whether a wallet name with no wallet row signs without a code (allow, the
                       default: the TOTP ETH Signer's semantics, the row is then created for the
                       caller's tenant) or is refused wallet_not_found (deny: for deployments that
                       enrol every wallet, so that deleting a wallet's rows from the database does
                       not let it sign; enrolment and GET /v1/keys still create rows).
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
    'unknown-wallets': { type: 'string' },
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
  const unknownWallets = opts['unknown-wallets'] ?? 'allow';
  if (unknownWallets !== 'allow' && unknownWallets !== 'deny')
    throw new CustosError('invalid_input', '--unknown-wallets: expected allow or deny', { details: { field: 'unknown-wallets' } });
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
      kernelOptions: { unknownWallets },
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
