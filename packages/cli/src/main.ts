import { CustosError, isCustosError } from '@custos/kernel';
import { adminCommand } from './commands/admin.js';
import { apikeyCommand } from './commands/apikey.js';
import { auditCommand } from './commands/audit.js';
import { configCommand } from './commands/config.js';
import { initCommand } from './commands/init.js';
import { migrateCommand } from './commands/migrate.js';
import { recoverCommand } from './commands/recover.js';
import { rekeyCommand } from './commands/rekey.js';
import { sealCommand } from './commands/seal.js';
import { serveCommand } from './commands/serve.js';
import { unsealCommand } from './commands/unseal.js';
import { walletCommand } from './commands/wallet.js';
import type { Io } from './io.js';

const USAGE = `custos — self-hosted signing kernel for custodial wallets

Usage: custos <command> [options]

Commands:
  init          create a signer in a data directory (seed sealed under a passphrase, Shamir shares or a PKCS#11 HSM)
  apikey        create | list | revoke API keys
  wallet        enroll-link: a wallet owner's enrolment link and its QR code, from a running signer
  admin         the admin quorum: keygen | bootstrap | propose | approve | list | show
  serve         run the HTTP API
  config check  validate serve's settings (flags, CUSTOS_ environment, --config file) and print them, secrets masked
  unseal        submit a passphrase, a Shamir share or an HSM PIN to a running signer
  seal          seal a running signer now, over its admin socket
  rekey         re-wrap the seed under new credentials (addresses unchanged)
  audit verify  recompute the audit hash chain
  audit list    audit records by wallet, app, action, decision, time (one page; --json)
  audit export  every matching audit record as JSON lines, with progress
  migrate       apply pending schema migrations
  recover       print wallet addresses from the mnemonic, offline (no data directory, no network)

The state lives in a data directory (--data-dir D, embedded SQLite) or in PostgreSQL
(--store postgres://user@host:port/db[?schema=name]).

Run \`custos <command> --help\` for a command's options.`;

/** Runs the CLI; returns the exit code. Failures print one line `custos: <code>: <reason>`. */
export async function main(argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'init':
        return await initCommand(rest, io);
      case 'apikey':
        return await apikeyCommand(rest, io);
      case 'admin':
        return await adminCommand(rest, io);
      case 'serve':
        return await serveCommand(rest, io);
      case 'config':
        return await configCommand(rest, io);
      case 'unseal':
        return await unsealCommand(rest, io);
      case 'seal':
        return await sealCommand(rest, io);
      case 'rekey':
        return await rekeyCommand(rest, io);
      case 'audit':
        return await auditCommand(rest, io);
      case 'migrate':
        return await migrateCommand(rest, io);
      case 'recover':
        return await recoverCommand(rest, io);
      case 'wallet':
        return await walletCommand(rest, io);
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        io.stdout.write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        throw new CustosError('invalid_input', `unknown command ${JSON.stringify(command)}; run custos --help`);
    }
  } catch (error) {
    const { code, message } = describe(error);
    // one line, whatever the error (node's argument parser writes some messages over several lines)
    io.stderr.write(`custos: ${code}: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
    // usage errors (any invalid_input, including node's argument parser) exit 2, the rest 1
    return code === 'invalid_input' ? 2 : 1;
  }
}

function describe(error: unknown): { code: string; message: string } {
  if (isCustosError(error)) return { code: error.code, message: error.message };
  if (error instanceof Error && 'code' in error && typeof error.code === 'string' && error.code.startsWith('ERR_PARSE_ARGS'))
    return { code: 'invalid_input', message: error.message };
  // a listener's address taken by another process: the operator's choice of port, not a fault of the signer
  if (error instanceof Error && 'code' in error && error.code === 'EADDRINUSE') {
    const { address, port } = error as Error & { address?: unknown; port?: unknown };
    const where =
      typeof port === 'number' ? `port ${port}${typeof address === 'string' ? ` on ${address}` : ''}` : typeof address === 'string' ? address : 'the address';
    return { code: 'invalid_input', message: `${where} is in use (another process listens there): stop it or choose another port` };
  }
  if (error instanceof Error && 'code' in error && (error.code === 'ENOENT' || error.code === 'EACCES'))
    return { code: 'invalid_input', message: error.message };
  return { code: 'internal', message: error instanceof Error ? error.message : String(error) };
}
