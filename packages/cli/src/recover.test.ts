import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HDKey } from '@scure/bip32';
import { generateMnemonic, mnemonicToSeedSync } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english';
import { bytesToHex } from 'viem';
import { privateKeyToAddress } from 'viem/accounts';
import { walletPath, formatPath } from '@custos/kernel';
import {
  assertFailure,
  BIN,
  type CliResult,
  freshStoreLocation,
  ROOT,
  recordTestSecret,
  runCli,
  runCliInProcess,
  secretInputs,
  serve,
  storeArgs,
} from './testing/cliHarness.js';

// `custos recover` re-derives addresses from the mnemonic alone. These tests check it against the
// published vectors, against an independent derivation (@scure/bip32 + viem), and against what a
// running kernel initialised with the same mnemonic reports on GET /v1/keys; and that it opens no
// store and no socket (a trap preloaded into the process ends it if it tries). recover itself runs
// in the test process (runCliInProcess: the CLI's main(), output captured), but where the point is
// the process: the offline trap spawns the real binary.

const TEST_MNEMONIC = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';
const TRAP = fileURLToPath(new URL('./testing/offlineTrap.js', import.meta.url));

interface KeyVector {
  walletName: string;
  keyIndex: number | string;
  path: string;
  publicKey: string;
  address: string;
}
interface Row {
  walletName: string;
  keyIndex: number;
  path: string;
  publicKey: string;
  address: string;
}
const custosVectors = JSON.parse(readFileSync(join(ROOT, 'test/vectors/custos-v1.json'), 'utf8')) as { vectors: KeyVector[] };
const ethVectors = JSON.parse(readFileSync(join(ROOT, 'test/vectors/secp256k1-ethereum.json'), 'utf8')) as {
  bip39: { mnemonic: string };
  fortanixV1: { vectors: KeyVector[] };
};

const inputs = secretInputs('custos-recover-inputs');

/** A fresh mnemonic (24 words), recorded as a secret so that the scan looks for it in every log. */
function newMnemonic(): string {
  const mnemonic = generateMnemonic(wordlist, 256);
  recordTestSecret('recover mnemonic', mnemonic);
  return mnemonic;
}

function walletsFile(names: string[]): string {
  return inputs.write('wallets.txt', `${names.join('\n')}\n`);
}

async function recover(args: string[]): Promise<CliResult> {
  return runCliInProcess(['recover', ...args]);
}

/** The JSON rows of a successful recover. */
async function recoverJson(args: string[]): Promise<Row[]> {
  const result = await recover([...args, '--format', 'json']);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, '');
  return JSON.parse(result.stdout) as Row[];
}

/** RFC 4180 parse of recover's CSV (quoted fields with doubled quotes; no line breaks in names). */
function parseCsv(text: string): string[][] {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => {
      const fields: string[] = [];
      let i = 0;
      while (i <= line.length) {
        if (line[i] === '"') {
          let value = '';
          i += 1;
          for (;;) {
            const q = line.indexOf('"', i);
            value += line.slice(i, q);
            if (line[q + 1] === '"') {
              value += '"';
              i = q + 2;
            } else {
              i = q + 2;
              break;
            }
          }
          fields.push(value);
        } else {
          const end = line.indexOf(',', i) === -1 ? line.length : line.indexOf(',', i);
          fields.push(line.slice(i, end));
          i = end + 1;
        }
      }
      return fields;
    });
}

describe('custos recover: the addresses of the published vectors', () => {
  it('custos-v1 from the BIP39 test mnemonic: every vector of test/vectors/custos-v1.json (CSV)', async () => {
    const mnemonicFile = inputs.write('mnemonic', `${TEST_MNEMONIC}\n`);
    const names = [...new Set(custosVectors.vectors.map((v) => v.walletName))];
    const indexes = [...new Set(custosVectors.vectors.map((v) => Number(v.keyIndex)))].sort((a, b) => a - b);
    const result = await recover([
      '--mnemonic-file',
      mnemonicFile,
      '--derivation',
      'custos-v1',
      '--wallets',
      walletsFile(names),
      '--key-indexes',
      indexes.join(','),
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const [header, ...rows] = parseCsv(result.stdout);
    assert.deepEqual(header, ['walletName', 'keyIndex', 'path', 'publicKey', 'address']);
    assert.equal(rows.length, names.length * indexes.length);
    for (const v of custosVectors.vectors) {
      const row = rows.find((r) => r[0] === v.walletName && r[1] === String(v.keyIndex));
      assert.deepEqual(row, [v.walletName, String(v.keyIndex), v.path, v.publicKey, v.address], `${v.walletName}/${v.keyIndex}`);
    }
  });

  it('fortanix-v1 from the same mnemonic: the TOTP ETH Signer vectors (JSON)', async () => {
    const mnemonicFile = inputs.write('mnemonic', ethVectors.bip39.mnemonic);
    const vectors = ethVectors.fortanixV1.vectors;
    const names = [...new Set(vectors.map((v) => v.walletName))];
    const indexes = [...new Set(vectors.map((v) => Number(v.keyIndex)))];
    const rows = await recoverJson([
      '--mnemonic-file',
      mnemonicFile,
      '--derivation',
      'fortanix-v1',
      '--wallets',
      walletsFile(names),
      '--key-indexes',
      indexes.join(','),
    ]);
    for (const v of vectors) {
      const row = rows.find((r) => r.walletName === v.walletName && r.keyIndex === Number(v.keyIndex));
      assert.ok(row !== undefined, `${v.walletName}/${v.keyIndex}`);
      assert.equal(row.path, v.path);
      assert.equal(row.publicKey, v.publicKey);
      assert.equal(row.address.toLowerCase(), v.address.toLowerCase());
    }
  });

  it('a BIP39 passphrase changes the seed (BIP39 vector "TREZOR"); the addresses equal an independent @scure/bip32 + viem derivation', async () => {
    const mnemonicFile = inputs.write('mnemonic', TEST_MNEMONIC);
    const passphraseFile = inputs.write('bip39-passphrase', 'TREZOR\n');
    // BIP39 reference vector: this mnemonic with passphrase TREZOR
    const seed = mnemonicToSeedSync(TEST_MNEMONIC, 'TREZOR');
    assert.equal(
      bytesToHex(seed),
      '0xc55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04',
    );
    const names = ['alice@acme.com', 'wallet, "quoted"', 'ünïcødé 🔑'];
    for (const derivation of ['custos-v1', 'fortanix-v1'] as const) {
      const rows = await recoverJson([
        '--mnemonic-file',
        mnemonicFile,
        '--bip39-passphrase-file',
        passphraseFile,
        '--derivation',
        derivation,
        '--wallets',
        walletsFile(names),
        '--key-indexes',
        '0,7,2147483647',
      ]);
      assert.equal(rows.length, 9);
      const master = HDKey.fromMasterSeed(seed);
      for (const row of rows) {
        const path = formatPath(walletPath(derivation, row.walletName, row.keyIndex));
        const node = master.derive(path);
        assert.equal(row.path, path);
        assert.equal(row.publicKey, bytesToHex(node.publicKey as Uint8Array).slice(2));
        assert.equal(row.address, privateKeyToAddress(bytesToHex(node.privateKey as Uint8Array)));
      }
      // without the passphrase: other addresses
      const plain = await recoverJson(['--mnemonic-file', mnemonicFile, '--derivation', derivation, '--wallets', walletsFile(names), '--key-indexes', '0']);
      assert.notEqual(plain[0]?.address, rows[0]?.address);
    }
  });
});

describe('custos recover equals the running kernel', () => {
  for (const derivation of ['custos-v1', 'fortanix-v1'] as const) {
    it(`${derivation}: GET /v1/keys of a kernel initialised with the mnemonic reports the addresses recover prints`, { timeout: 120_000 }, async (t) => {
      const mnemonic = newMnemonic();
      const mnemonicFile = inputs.write('mnemonic', `${mnemonic}\n`);
      const passphrase = `pp-${randomBytes(18).toString('base64url')}`;
      recordTestSecret('recover passphrase', passphrase);
      const passphraseFile = inputs.write('passphrase', passphrase);
      const store = freshStoreLocation();
      const init = await runCli([
        'init',
        ...storeArgs(store),
        '--passphrase-file',
        passphraseFile,
        '--mnemonic-file',
        mnemonicFile,
        '--derivation',
        derivation,
        '--scrypt-log-n',
        '10',
      ]);
      assert.equal(init.code, 0, init.stderr);
      const created = await runCli(['apikey', 'create', ...storeArgs(store), '--name', 'recover-test', '--scopes', 'derive']);
      assert.equal(created.code, 0, created.stderr);
      const apiKey = created.stdout.trim().split(/\s+/).at(-1) ?? '';
      recordTestSecret('recover apiKey', apiKey);
      const served = await serve(store, ['--passphrase-file', passphraseFile]);
      t.after(() => served.stop());

      const names = ['alice@acme.com', 'bob@acme.com', 'comma, "and quotes"', 'Ωmega wallet', 'x'.repeat(256)];
      const result = await recover(['--mnemonic-file', mnemonicFile, '--derivation', derivation, '--wallets', walletsFile(names), '--key-indexes', '0-2,1000']);
      assert.equal(result.code, 0, result.stderr);
      const [, ...csv] = parseCsv(result.stdout);
      const json = await recoverJson([
        '--mnemonic-file',
        mnemonicFile,
        '--derivation',
        derivation,
        '--wallets',
        walletsFile(names),
        '--key-indexes',
        '0-2,1000',
      ]);
      assert.equal(json.length, names.length * 4);
      assert.deepEqual(
        csv,
        json.map((r) => [r.walletName, String(r.keyIndex), r.path, r.publicKey, r.address]),
        'CSV and JSON carry the same rows',
      );
      for (const row of json) {
        const url = `${served.url}/v1/keys?walletName=${encodeURIComponent(row.walletName)}&keyIndex=${row.keyIndex}`;
        const response = await fetch(url, { headers: { authorization: `Bearer ${apiKey}` } });
        assert.equal(response.status, 200);
        assert.deepEqual(await response.json(), { walletName: row.walletName, keyIndex: row.keyIndex, publicKey: row.publicKey, address: row.address });
      }
      // and the mnemonic appears nowhere in recover's output
      assert.ok(!result.stdout.includes(mnemonic.split(' ').slice(0, 3).join(' ')));
    });
  }
});

describe('custos recover is offline', () => {
  const sandbox = mkdtempSync(join(tmpdir(), 'custos-recover-offline-'));
  after(() => rmSync(sandbox, { recursive: true, force: true }));

  /** Runs a custos command with the trap preloaded, HOME, TMPDIR and the working directory in empty directories, no CUSTOS_* variable. */
  function runTrapped(args: string[]): Promise<CliResult & { dirs: Record<string, string[]> }> {
    const made = { home: mkdtempSync(join(sandbox, 'home-')), tmp: mkdtempSync(join(sandbox, 'tmp-')), cwd: mkdtempSync(join(sandbox, 'cwd-')) };
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '', HOME: made.home, TMPDIR: made.tmp };
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', TRAP, BIN, ...args], { env, cwd: made.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => {
        stdout += c;
      });
      child.stderr.setEncoding('utf8').on('data', (c: string) => {
        stderr += c;
      });
      child.on('error', reject);
      child.on('close', (code, signal) => {
        const listing = Object.fromEntries(Object.entries(made).map(([k, dir]) => [k, readdirSync(dir)]));
        resolve({ code, signal, stdout, stderr, dirs: listing });
      });
    });
  }

  it('the trap works: init on a data directory, or on PostgreSQL, is stopped (status 99)', async () => {
    const passphraseFile = inputs.write('passphrase', `pp-${randomBytes(12).toString('hex')}`);
    const dataDir = await runTrapped(['init', '--data-dir', join(sandbox, 'never-created'), '--passphrase-file', passphraseFile, '--scrypt-log-n', '10']);
    assert.equal(dataDir.code, 99, dataDir.stderr);
    assert.match(dataDir.stderr, /OFFLINE TRAP: /);
    const pg = await runTrapped(['init', '--store', 'postgres://postgres@127.0.0.1:5432/postgres?schema=t_never', '--passphrase-file', passphraseFile]);
    assert.equal(pg.code, 99, pg.stderr);
    assert.match(pg.stderr, /OFFLINE TRAP: net\.Socket\.connect/);
  });

  it('recover with no data directory, HOME in an empty directory: prints the addresses, opens no store or socket, writes no file', async () => {
    const mnemonicFile = inputs.write('mnemonic', TEST_MNEMONIC);
    const result = await runTrapped([
      'recover',
      '--mnemonic-file',
      mnemonicFile,
      '--derivation',
      'custos-v1',
      '--wallets',
      walletsFile(['alice@acme.com']),
      '--key-indexes',
      '0-1',
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const [, ...rows] = parseCsv(result.stdout);
    assert.deepEqual(
      rows.map((r) => r[4]),
      custosVectors.vectors.filter((v) => v.walletName === 'alice@acme.com' && Number(v.keyIndex) <= 1).map((v) => v.address),
    );
    assert.deepEqual(result.dirs, { home: [], tmp: [], cwd: [] });
  });

  it('takes no store option: --data-dir and --store are refused (exit 2)', async () => {
    const mnemonicFile = inputs.write('mnemonic', TEST_MNEMONIC);
    const base = ['recover', '--mnemonic-file', mnemonicFile, '--derivation', 'custos-v1', '--wallets', walletsFile(['a'])];
    assertFailure(await runCliInProcess([...base, '--data-dir', join(sandbox, 'd')]), 2, 'invalid_input', '--data-dir');
    assertFailure(await runCliInProcess([...base, '--store', 'postgres://x@127.0.0.1/db']), 2, 'invalid_input', '--store');
  });
});

describe('custos recover refuses bad input (exit 2, one line naming the field, nothing printed)', () => {
  const good = () => ({ mnemonic: inputs.write('mnemonic', TEST_MNEMONIC), wallets: walletsFile(['alice@acme.com', 'bob@acme.com']) });

  it('--help names every option', async () => {
    const result = await runCliInProcess(['recover', '--help']);
    assert.equal(result.code, 0);
    for (const option of [
      '--mnemonic-file',
      '--derivation',
      'custos-v1',
      'fortanix-v1',
      '--wallets',
      '--key-indexes',
      '--format',
      'csv',
      'json',
      '--bip39-passphrase-file',
    ]) {
      assert.ok(result.stdout.includes(option), option);
    }
    const usage = await runCliInProcess(['--help']);
    assert.match(usage.stdout, /^ {2}recover /m);
  });

  it('a mnemonic with a bad checksum, an unknown word or a wrong word count; the words are never echoed', async () => {
    const { wallets } = good();
    const words = TEST_MNEMONIC.split(' ');
    const badChecksum = [...words.slice(0, 11), 'zoo'].join(' ');
    const unknownWord = [...words.slice(0, 5), 'custosx', ...words.slice(6)].join(' ');
    const cases: Array<[string, string]> = [
      [badChecksum, 'checksum'],
      [unknownWord, 'word 6 '],
      [words.slice(0, 11).join(' '), 'got 11'],
    ];
    for (const [content, mentions] of cases) {
      const result = await recover(['--mnemonic-file', inputs.write('mnemonic', content), '--derivation', 'custos-v1', '--wallets', wallets]);
      assertFailure(result, 2, 'invalid_input', mentions);
      assert.ok(result.stderr.includes('--mnemonic-file'));
      for (const word of ['abandon', 'zoo', 'custosx']) assert.ok(!result.stderr.includes(word), `${word} echoed`);
    }
    assertFailure(
      await recover(['--mnemonic-file', join(inputs.dir, 'missing'), '--derivation', 'custos-v1', '--wallets', wallets]),
      2,
      'invalid_input',
      '--mnemonic-file',
    );
  });

  it('missing or bad --derivation, --format, --wallets', async () => {
    const { mnemonic, wallets } = good();
    assertFailure(await recover(['--mnemonic-file', mnemonic, '--wallets', wallets]), 2, 'invalid_input', '--derivation');
    assertFailure(await recover(['--mnemonic-file', mnemonic, '--derivation', 'bip44', '--wallets', wallets]), 2, 'invalid_input', '--derivation');
    assertFailure(
      await recover(['--mnemonic-file', mnemonic, '--derivation', 'custos-v1', '--wallets', wallets, '--format', 'xml']),
      2,
      'invalid_input',
      '--format',
    );
    assertFailure(await recover(['--mnemonic-file', mnemonic, '--derivation', 'custos-v1']), 2, 'invalid_input', '--wallets');
    assertFailure(
      await recover(['--mnemonic-file', mnemonic, '--derivation', 'custos-v1', '--wallets', join(inputs.dir, 'missing')]),
      2,
      'invalid_input',
      '--wallets',
    );
    assertFailure(await recover(['--derivation', 'custos-v1', '--wallets', wallets]), 2, 'invalid_input', '--mnemonic-file');
  });

  it('bad key-index lists name the item', async () => {
    const { mnemonic, wallets } = good();
    const cases: Array<[string, string]> = [
      ['9-0', 'item 1 "9-0"'],
      ['a', 'item 1 "a"'],
      ['01', 'item 1 "01"'],
      ['1,,2', 'item 2 ""'],
      ['-1', 'item 1 "-1"'],
      ['1-', 'item 1 "1-"'],
      [' 1', 'item 1 " 1"'],
      ['2147483648', 'item 1 "2147483648"'],
      ['0-10000', 'more than 10000'],
      ['0-5000,6000-11000', 'more than 10000'],
      ['', 'item 1 ""'],
    ];
    for (const [list, mentions] of cases) {
      assertFailure(
        await recover(['--mnemonic-file', mnemonic, '--derivation', 'custos-v1', '--wallets', wallets, `--key-indexes=${list}`]),
        2,
        'invalid_input',
        `--key-indexes: ${mentions}`,
      );
    }
    // overlapping items and ranges: each index once, ascending
    const rows = await recoverJson(['--mnemonic-file', mnemonic, '--derivation', 'custos-v1', '--wallets', walletsFile(['w']), '--key-indexes', '7,0-2,1,7']);
    assert.deepEqual(
      rows.map((r) => r.keyIndex),
      [0, 1, 2, 7],
    );
  });

  it('bad wallet names name the line; nothing is printed even when the earlier lines are fine', async () => {
    const { mnemonic } = good();
    const cases: Array<[string | Buffer, string]> = [
      ['alice\n\nbob\n', '--wallets line 2: empty line'],
      ['alice\nbob\ttab\n', '--wallets line 2: '],
      [`alice\nbob\n${'x'.repeat(257)}\n`, '--wallets line 3: '],
      ['\uFEFFalice\n', '--wallets line 1: starts with a byte-order mark'],
      [Buffer.from([0x61, 0x0a, 0xff, 0xfe, 0x0a]), '--wallets: the file is not UTF-8'],
      ['', '--wallets: the file names no wallet'],
      ['alice\r\nbob\r\n\r\n', '--wallets line 3: empty line'],
    ];
    for (const [content, mentions] of cases) {
      const file = join(inputs.dir, `wallets-${randomBytes(4).toString('hex')}`);
      writeFileSync(file, content);
      assertFailure(await recover(['--mnemonic-file', mnemonic, '--derivation', 'custos-v1', '--wallets', file]), 2, 'invalid_input', mentions);
    }
    // CRLF lines are names without the CR (a CR could never be part of a valid name)
    const crlf = join(inputs.dir, 'wallets-crlf');
    writeFileSync(crlf, 'alice@acme.com\r\nbob@acme.com\r\n');
    const rows = await recoverJson(['--mnemonic-file', mnemonic, '--derivation', 'custos-v1', '--wallets', crlf]);
    assert.deepEqual(
      rows.map((r) => r.walletName),
      ['alice@acme.com', 'bob@acme.com'],
    );
    assert.equal(rows[0]?.address, custosVectors.vectors.find((v) => v.walletName === 'alice@acme.com' && Number(v.keyIndex) === 0)?.address);
  });
});
