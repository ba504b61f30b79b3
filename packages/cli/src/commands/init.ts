import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  CustosError,
  type DerivationScheme,
  describeUnsealer,
  generateApiKeyToken,
  initializeSigner,
  masterKeyFromXprv,
  OPERATOR_TENANT,
  parseQuorumSettings,
  type QuorumSettings,
} from '@custos/kernel';
import { DB_FILE, openStore } from '@custos/server';
import { generateMnemonic, mnemonicToSeedSync } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english';
import { type Io, parseOptions, readSecretFile } from '../io.js';
import { readAdminFlags } from './admin.js';
import { readFirstDeploymentSettings } from './serve.js';
import { describeLocation, readStoreLocation } from '../openInitialisedStore.js';
import { readMnemonicFile } from '../readMnemonicFile.js';
import { assertShareDirFree, describeShareFiles, writeShareFiles } from '../shareFiles.js';
import { DEFAULT_KEK_LABEL, readScryptCost, readUnsealerSpec, wipeCredential } from '../unsealerOptions.js';

const HELP = `Usage: custos init (--data-dir D | --store postgres://…)
                   (--passphrase-file P [--scrypt-log-n N]
                    | --unsealer shamir --shares N --threshold M --share-dir DIR
                    | --unsealer pkcs11 --pkcs11-module M --pkcs11-token T --pkcs11-pin-file F [--pkcs11-key-label L])
                   [--mnemonic-file F | --seed-hex-file F | --xprv-file F] [--derivation custos-v1|fortanix-v1]

Creates a signer in data directory D (embedded SQLite) or in a PostgreSQL database
(--store postgres://user@host:port/db[?schema=name]): a new signerId and the master seed sealed at
rest (AES-256-GCM) under a key-encryption key from the unsealer. Refuses a directory that already
holds a signer. Unsealers (docs/operations.md):
  --unsealer passphrase (default)  the key is derived from the passphrase in P (scrypt)
  --unsealer shamir                the key is random and split into N shares, M of which unseal;
                                   DIR/share-<i>.json (mode 0600) is written for each operator
                                   before the signer is stored. DIR must hold no share files.
                                   Each share is signed by a one-time key (its public key sealed
                                   with the seed, the private key wiped): a forged share is refused.
  --unsealer pkcs11                the key is a new AES-256 key generated inside the HSM token
                                   labelled T (library M, user PIN in F), sensitive and never
                                   extractable; the token itself seals the seed. The key is
                                   labelled L (default ${DEFAULT_KEK_LABEL}); labels may repeat, the
                                   sealed seed names the key by its random id.

Without an import, a 24-word BIP39 mnemonic is generated and printed ONCE: write it down, it is
the only backup of every key.
  --mnemonic-file F   import a BIP39 mnemonic (English wordlist, no passphrase)
  --seed-hex-file F   import a BIP32 seed (16..64 bytes, hex)
  --xprv-file F       import a BIP32 extended private key, used as the master node
  --derivation S      custos-v1 (default) or fortanix-v1 (the TOTP ETH Signer's paths); fixed forever
  --scrypt-log-n N    scrypt cost as log2(N), 10..18 (default 17); lower only for tests
  --admin PUBKEY,EMAIL  an admin's Ed25519 public key (custos admin keygen) and the e-mail address
                      the kernel tells it of each freeze and proposal at (required: every admin
                      is told); repeat for each admin
  --quorum M          approvals a change needs besides its proposer's, 1 ≤ M ≤ N−1 (docs/quorum.md)
  --api-key-out F     with --admin: writes the operator's admin API key (tenant system) to F (0600)
  --policy-file F --compat-raw-hash allow|policy
                      with --admin: the quorum's first deployment settings (its policy defaults and
                      compatibility raw-hash mode; default the built-in ones, raw hashes under the
                      policy); after it, only a deployment.settings proposal changes them`;

export async function initCommand(argv: string[], io: Io): Promise<number> {
  const opts = parseOptions(argv, {
    'data-dir': { type: 'string' },
    store: { type: 'string' },
    'passphrase-file': { type: 'string' },
    'mnemonic-file': { type: 'string' },
    'seed-hex-file': { type: 'string' },
    'xprv-file': { type: 'string' },
    derivation: { type: 'string' },
    'scrypt-log-n': { type: 'string' },
    unsealer: { type: 'string' },
    shares: { type: 'string' },
    threshold: { type: 'string' },
    'share-dir': { type: 'string' },
    'pkcs11-module': { type: 'string' },
    'pkcs11-token': { type: 'string' },
    'pkcs11-pin-file': { type: 'string' },
    'pkcs11-key-label': { type: 'string' },
    admin: { type: 'string', multiple: true },
    quorum: { type: 'string' },
    'api-key-out': { type: 'string' },
    'policy-file': { type: 'string' },
    'compat-raw-hash': { type: 'string' },
  });
  if (opts.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  const location = readStoreLocation(opts);
  const where = describeLocation(location);
  const derivation = (opts.derivation ?? 'custos-v1') as DerivationScheme;
  if (derivation !== 'custos-v1' && derivation !== 'fortanix-v1')
    throw new CustosError('invalid_input', '--derivation: expected custos-v1 or fortanix-v1', { details: { field: 'derivation' } });
  const imports = [opts['mnemonic-file'], opts['seed-hex-file'], opts['xprv-file']].filter((v) => v !== undefined);
  if (imports.length > 1) throw new CustosError('invalid_input', 'give at most one of --mnemonic-file, --seed-hex-file, --xprv-file');
  // The unsealer's options are checked before anything is read or created (the passphrase is read below).
  if (opts.unsealer !== undefined && opts.unsealer !== 'passphrase' && opts.unsealer !== 'shamir' && opts.unsealer !== 'pkcs11') {
    readUnsealerSpec({
      unsealer: opts.unsealer,
      passphraseFile: undefined,
      passphraseOption: 'passphrase-file',
      shares: undefined,
      threshold: undefined,
      shareDir: undefined,
      scryptLogN: undefined,
    });
  }
  if (opts.unsealer !== 'pkcs11')
    for (const option of ['pkcs11-module', 'pkcs11-pin-file'] as const)
      if (opts[option] !== undefined) throw new CustosError('invalid_input', `--${option} applies to the pkcs11 unsealer only`, { details: { field: option } });
  readScryptCost(opts['scrypt-log-n']);
  // The first admin set and M (docs/quorum.md), checked before anything is created.
  let quorum: QuorumSettings | undefined;
  // With --admin: the quorum's first deployment settings (--policy-file, --compat-raw-hash), else the built-in ones.
  let deployment: unknown;
  if (opts.admin !== undefined || opts.quorum !== undefined) {
    const threshold = /^[0-9]{1,2}$/.test(opts.quorum ?? '') ? Number(opts.quorum) : Number.NaN;
    if (Number.isNaN(threshold)) throw new CustosError('invalid_input', '--quorum: expected M, an integer, with --admin', { details: { field: 'quorum' } });
    quorum = parseQuorumSettings({ threshold, admins: readAdminFlags(opts.admin) }, { requireEmail: true });
    deployment = readFirstDeploymentSettings(opts);
    // Under a quorum no key can be made directly: the operator's admin key is made now, MAC'd with the set.
    const out = opts['api-key-out'];
    if (out === undefined || out === '')
      throw new CustosError('invalid_input', '--api-key-out: required with --admin (the operator key that calls custos admin propose|approve)', {
        details: { field: 'api-key-out' },
      });
    if (existsSync(out))
      throw new CustosError('invalid_input', `--api-key-out: ${out} exists; refusing to overwrite it`, { details: { field: 'api-key-out' } });
  } else if (opts['api-key-out'] !== undefined) {
    throw new CustosError('invalid_input', '--api-key-out applies with --admin and --quorum only', { details: { field: 'api-key-out' } });
  }
  for (const flag of ['policy-file', 'compat-raw-hash'] as const)
    if (quorum === undefined && opts[flag] !== undefined)
      throw new CustosError('invalid_input', `--${flag} applies with --admin and --quorum only (serve takes it otherwise)`, { details: { field: flag } });
  const operatorKey = quorum === undefined ? undefined : generateApiKeyToken((n) => new Uint8Array(randomBytes(n)));
  if (!('dataDir' in location) || existsSync(join(location.dataDir, DB_FILE))) {
    // Look without migrating: a refused init must not create or change the store.
    const probe = await openStore(location, { migrate: false });
    const initialised = (await probe.getMeta()) !== undefined;
    await probe.close();
    if (initialised) throw new CustosError('already_initialized', `${where} already holds an initialised signer; refusing to overwrite it`);
  }
  const { spec: unsealer, shareDir } = readUnsealerSpec({
    unsealer: opts.unsealer,
    passphraseFile: opts['passphrase-file'],
    passphraseOption: 'passphrase-file',
    shares: opts.shares,
    threshold: opts.threshold,
    shareDir: opts['share-dir'],
    scryptLogN: opts['scrypt-log-n'],
    pkcs11: {
      module: opts['pkcs11-module'],
      token: opts['pkcs11-token'],
      keyLabel: opts['pkcs11-key-label'],
      pinFile: opts['pkcs11-pin-file'],
      pinOption: 'pkcs11-pin-file',
    },
  });
  if (shareDir !== undefined) assertShareDirFree(shareDir);

  let master: Parameters<typeof initializeSigner>[0]['master'];
  let generated: string | undefined;
  if (opts['mnemonic-file'] !== undefined) {
    master = { kind: 'seed', seed: mnemonicToSeedSync(readMnemonicFile(opts['mnemonic-file'])) };
  } else if (opts['seed-hex-file'] !== undefined) {
    const hex = Buffer.from(readSecretFile(opts['seed-hex-file'], 'seed-hex-file')).toString('utf8').trim().replace(/^0x/, '');
    if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length % 2 !== 0 || hex.length < 32 || hex.length > 128) {
      throw new CustosError('invalid_input', '--seed-hex-file: expected 16..64 bytes of hex', { details: { field: 'seed-hex-file' } });
    }
    master = { kind: 'seed', seed: new Uint8Array(Buffer.from(hex, 'hex')) };
  } else if (opts['xprv-file'] !== undefined) {
    const xprv = Buffer.from(readSecretFile(opts['xprv-file'], 'xprv-file')).toString('utf8').trim();
    const node = masterKeyFromXprv(xprv);
    master = { kind: 'xprv', privateKey: node.privateKey, chainCode: node.chainCode };
  } else {
    generated = generateMnemonic(wordlist, 256);
    master = { kind: 'seed', seed: mnemonicToSeedSync(generated) };
  }

  const store = await openStore(location);
  let written = '';
  try {
    const { signerId, auditPublicKey } = await initializeSigner({
      store,
      unsealer,
      master,
      derivation,
      ...(quorum === undefined || operatorKey === undefined
        ? {}
        : {
            quorum,
            ...(deployment === undefined ? {} : { deployment }),
            quorumApiKeys: [
              {
                id: operatorKey.id,
                name: 'operator',
                tenant: OPERATOR_TENANT,
                scopes: ['admin'],
                secretHash: operatorKey.secretHash,
                createdAt: Date.now(),
                revokedAt: null,
              },
            ],
          }),
      // Shamir: the share files are on disk (fsynced) before the signer is stored.
      ...(shareDir === undefined
        ? {}
        : {
            persistShares: async (files) => {
              writeShareFiles(shareDir, files);
              written = describeShareFiles(shareDir, files);
            },
          }),
    });
    if (generated !== undefined) {
      io.stdout.write(
        `Recovery mnemonic (24 words). It is shown ONCE and is the only backup of every key:\n\n  ${generated}\n\nWrite it down offline; never store it beside the data directory.\n\n`,
      );
    }
    if (unsealer.type === 'shamir')
      io.stdout.write(
        `Wrote ${unsealer.shares} share files to ${shareDir}/share-<i>.json (${unsealer.threshold} of them unseal). Give each to one operator and remove it from this machine.\n${written}`,
      );
    if (unsealer.type === 'pkcs11') {
      const info = describeUnsealer((await store.getMeta())?.sealedRoot);
      if (info.type === 'pkcs11')
        io.stdout.write(
          `Generated the key-encryption key in token ${JSON.stringify(info.tokenLabel)}: label ${JSON.stringify(info.keyLabel)}, id ${info.keyId} (AES-256, sensitive, never extractable); the token sealed the seed.\n`,
        );
    }
    io.stdout.write(`Initialised signer ${signerId} (derivation ${derivation}) in ${where}\nsignerId ${signerId}\n`);
    if (quorum !== undefined && operatorKey !== undefined) {
      const out = opts['api-key-out'] as string;
      const fd = openSync(out, 'wx', 0o600);
      try {
        writeSync(fd, `${operatorKey.token}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      io.stdout.write(
        `Admin quorum: ${quorum.threshold} of ${quorum.admins.length} admins (docs/quorum.md). The operator's admin API key ${operatorKey.id} is in ${out} (mode 0600).\n`,
      );
    }
    io.stdout.write(
      `audit public key ${auditPublicKey}\nKeep it outside the data directory: \`custos audit verify --audit-public-key ${auditPublicKey}\` holds the audit log's signed checkpoints to it (see docs/audit.md).\n`,
    );
    return 0;
  } finally {
    wipeCredential(unsealer);
    if (master.kind === 'seed') master.seed.fill(0);
    else {
      master.privateKey.fill(0);
      master.chainCode.fill(0);
    }
    await store.close();
  }
}
