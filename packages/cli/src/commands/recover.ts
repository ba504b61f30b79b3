import {
  CustosError,
  createKeyDeriver,
  type DerivationScheme,
  formatPath,
  getPublicKey,
  masterKeyFromSeed,
  toEthereumAddress,
  walletPath,
} from '@custos/kernel';
import { mnemonicToSeedSync } from '@scure/bip39';
import { type Io, parseOptions, readSecretFile, requireOption } from '../io.js';
import { createProgress, type ProgressStream } from '../progress.js';
import { parseKeyIndexes } from '../parseKeyIndexes.js';
import { readMnemonicFile } from '../readMnemonicFile.js';
import { readWalletNames } from '../readWalletNames.js';

const HELP = `Usage: custos recover --mnemonic-file F --derivation custos-v1|fortanix-v1 --wallets W
                      [--key-indexes 0-9] [--format csv|json] [--bip39-passphrase-file P] [--quiet]

Prints the public keys and Ethereum addresses of the wallets named in W (one name per line, as
the API takes them) re-derived from the BIP39 mnemonic in F, offline: it opens no data directory
or database and uses no network. Use it to check a mnemonic backup, or to find every address
after losing the signer (docs/recovery.md).
  --mnemonic-file F          the BIP39 mnemonic (English wordlist; its checksum is verified)
  --derivation S             the scheme the signer was initialised with: custos-v1 or fortanix-v1
  --wallets W                wallet names, one per line (UTF-8, LF or CRLF)
  --key-indexes L            indexes and ranges, e.g. 0-9 or 0,3,7 or 0-4,100 (default 0)
  --format csv|json          csv (default): walletName,keyIndex,path,publicKey,address; json: an array
  --bip39-passphrase-file P  the optional BIP39 passphrase ("25th word"); custos init uses none`;

/** The columns, in the order of both formats (GET /v1/keys's fields plus the BIP32 path). */
interface Row {
  walletName: string;
  keyIndex: number;
  path: string;
  publicKey: string;
  address: string;
}

/** RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

export async function recoverCommand(argv: string[], io: Io): Promise<number> {
  const opts = parseOptions(argv, {
    'mnemonic-file': { type: 'string' },
    'bip39-passphrase-file': { type: 'string' },
    derivation: { type: 'string' },
    wallets: { type: 'string' },
    'key-indexes': { type: 'string' },
    format: { type: 'string' },
    quiet: { type: 'boolean' },
  });
  if (opts.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  // Every input is checked before anything is derived or printed: a bad line 900 prints nothing
  const derivation = requireOption(opts.derivation, 'derivation') as DerivationScheme;
  if (derivation !== 'custos-v1' && derivation !== 'fortanix-v1') {
    throw new CustosError('invalid_input', '--derivation: expected custos-v1 or fortanix-v1 (the scheme the signer was initialised with)', {
      details: { field: 'derivation' },
    });
  }
  const format = opts.format ?? 'csv';
  if (format !== 'csv' && format !== 'json') throw new CustosError('invalid_input', '--format: expected csv or json', { details: { field: 'format' } });
  const keyIndexes = parseKeyIndexes(opts['key-indexes'] ?? '0');
  const walletNames = readWalletNames(requireOption(opts.wallets, 'wallets'));
  const mnemonic = readMnemonicFile(opts['mnemonic-file']);
  let passphrase = '';
  if (opts['bip39-passphrase-file'] !== undefined) {
    const bytes = readSecretFile(opts['bip39-passphrase-file'], 'bip39-passphrase-file');
    passphrase = Buffer.from(bytes).toString('utf8');
    bytes.fill(0);
  }

  // The kernel's own derivation: BIP39 seed → BIP32 master → walletPath → CKDpriv (createKeyDeriver)
  const seed = mnemonicToSeedSync(mnemonic, passphrase);
  const master = masterKeyFromSeed(seed);
  seed.fill(0);
  const deriver = createKeyDeriver({ master, scheme: derivation, maxCachedWallets: 1 });
  master.privateKey.fill(0);
  master.chainCode.fill(0);
  try {
    if (format === 'csv') io.stdout.write('walletName,keyIndex,path,publicKey,address\n');
    else io.stdout.write('[');
    let first = true;
    // progress on stderr (a bar on a terminal, plain lines in a log after 5 s, none with --quiet)
    const progress = createProgress({
      stream: io.stderr as ProgressStream,
      label: 'recover',
      total: walletNames.length * keyIndexes.length,
      quiet: opts.quiet === true,
    });
    let done = 0;
    for (const walletName of walletNames) {
      for (const keyIndex of keyIndexes) {
        progress.update(done);
        done += 1;
        const privateKey = deriver.derivePrivateKey(walletName, keyIndex);
        let publicKey: Uint8Array;
        try {
          publicKey = getPublicKey(privateKey);
        } finally {
          privateKey.fill(0);
        }
        const row: Row = {
          walletName,
          keyIndex,
          path: formatPath(walletPath(derivation, walletName, keyIndex)),
          publicKey: Buffer.from(publicKey).toString('hex'),
          address: toEthereumAddress(publicKey),
        };
        if (format === 'csv') io.stdout.write(`${csvField(row.walletName)},${row.keyIndex},${row.path},${row.publicKey},${row.address}\n`);
        else io.stdout.write(`${first ? '\n' : ',\n'}  ${JSON.stringify(row)}`);
        first = false;
      }
    }
    if (format === 'json') io.stdout.write(first ? ']\n' : '\n]\n');
    progress.update(done);
    progress.finish();
    return 0;
  } finally {
    deriver.wipe();
  }
}
