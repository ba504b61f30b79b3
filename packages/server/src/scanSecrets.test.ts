// store-independent: writes its own SQLite files and text dumps in a temp dir; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { recordTestResponse } from './testing/createTestSigner.js';
import { REPO_ROOT } from './testing/runCustos.js';

// scripts/scan-secrets.mjs: the scan scripts/test.mjs runs over the artifacts of the suite. Each case
// builds an artifacts directory of its own (secrets.jsonl and the files to scan) and checks what the
// scan finds, so that a scan that stops finding a kind of leak fails here.

interface Leak {
  label: string;
  file: string;
  form: string;
}
interface ScanModule {
  scanSecrets(
    dir: string,
    options?: { dumps?: boolean },
  ): { secrets: number; files: number; dumps: number; responses: number; handedOut: number; leaks: Leak[] };
}
const scanner = (await import(join(REPO_ROOT, 'scripts', 'scan-secrets.mjs'))) as ScanModule;

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function artifacts(secrets: Array<[string, string]>): string {
  const dir = mkdtempSync(join(tmpdir(), 'custos-scan-test-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'secrets.jsonl'), secrets.map(([label, value]) => `${JSON.stringify({ label, value })}\n`).join(''));
  return dir;
}

const TOTP_BYTES = Buffer.from('48656c6c6f21deadbeef48656c6c6f21deadbeef', 'hex');
const API_KEY = 'ck_live_0123456789abcdefghij';
const ADDRESS = 'owner.secret@example.com';

describe('scripts/scan-secrets.mjs', () => {
  test('a secret in a row of a SQLite database is found in the dump (and the WAL is scanned raw, not checkpointed away)', () => {
    const dir = artifacts([
      ['apiKey', API_KEY],
      ['delivery address', ADDRESS],
    ]);
    const db = new Database(join(dir, 'custos.db'));
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE outbox (id INTEGER PRIMARY KEY, recipient TEXT)');
    db.prepare('INSERT INTO outbox (recipient) VALUES (?)').run(ADDRESS);
    // Left open: the row is only in custos.db-wal, as a killed process would leave it.
    const result = scanner.scanSecrets(dir);
    db.close();
    assert.equal(result.dumps, 1);
    const dump = readFileSync(join(dir, 'custos.db.dump.txt'), 'utf8');
    assert.match(dump, /^-- table outbox$/m);
    assert.match(dump, new RegExp(`^1\\t${ADDRESS.replaceAll('.', '\\.')}$`, 'm'));
    assert.deepEqual(
      result.leaks.map((l) => l.file).sort(),
      ['custos.db-wal', 'custos.db.dump.txt'],
      'found in the raw WAL and in the dump; the api key is nowhere',
    );
    assert.ok(result.leaks.every((l) => l.label === 'delivery address'));
  });

  test('a one-time code in a row is found in the dump as a whole token, not inside a longer number or hex id', () => {
    const dir = artifacts([['oobCode', '492039']]);
    const db = new Database(join(dir, 'store.db'));
    db.exec('CREATE TABLE t (a TEXT, b INTEGER, c BLOB)');
    db.prepare('INSERT INTO t VALUES (?, ?, ?)').run('ab492039cd', 14920391, Buffer.from('492039'));
    db.close();
    assert.deepEqual(scanner.scanSecrets(dir).leaks, [], 'digits inside a hex id, a longer number or a BLOB (dumped in hex) are no leak');
    const db2 = new Database(join(dir, 'store.db'));
    db2.prepare('INSERT INTO t VALUES (?, ?, ?)').run('{"code":"492039"}', 1, null);
    db2.close();
    assert.deepEqual(
      scanner.scanSecrets(dir).leaks.map((l) => [l.label, l.file]),
      [['oobCode', 'store.db.dump.txt']],
    );
  });

  test('a one-time code in a log: found at the start or end of the file or after = or :, not after a . (a version, a decimal)', () => {
    const dir = artifacts([['totpCode', '731905']]);
    const cases: Array<[string, string, boolean]> = [
      ['start.log', '731905 was typed', true],
      ['end.log', 'the code was 731905', true],
      ['equals.log', 'code=731905&x=1', true],
      ['colon.log', 'code: 731905\n', true],
      ['decimal.log', 'took 0.731905 s', false],
      ['longer.log', 'seq 17319051', false],
      ['word.log', 'id x731905y', false],
    ];
    for (const [name, content] of cases) writeFileSync(join(dir, name), content);
    assert.deepEqual(
      scanner
        .scanSecrets(dir)
        .leaks.map((l) => l.file)
        .sort(),
      cases
        .filter(([, , leak]) => leak)
        .map(([name]) => name)
        .sort(),
    );
  });

  test('a secret is found in hex, base64, base64url and base32, and a hex or base32 secret as the raw bytes it stands for', () => {
    const text = Buffer.from(API_KEY, 'utf8');
    const cases: Array<[string, Buffer | string]> = [
      ['hex', text.toString('hex')],
      ['HEX', text.toString('hex').toUpperCase()],
      ['base64', `prefix ${text.toString('base64')} suffix`],
      ['base64url', text.toString('base64url')],
      ['raw bytes of the base32 TOTP secret', Buffer.concat([Buffer.from([0, 1, 2]), TOTP_BYTES, Buffer.from([0])])],
      ['base64 of the TOTP secret', TOTP_BYTES.toString('base64')],
    ];
    const dir = artifacts([
      ['apiKey', API_KEY],
      ['totpSecretBase32', base32(TOTP_BYTES)],
    ]);
    for (const [name, content] of cases) writeFileSync(join(dir, `${name}.log`), content);
    writeFileSync(join(dir, 'base32.log'), base32(text));
    writeFileSync(join(dir, 'clean.log'), 'nothing here but ck_live_ and JBSWY3DP');
    const leaks = scanner.scanSecrets(dir).leaks;
    assert.deepEqual(leaks.map((l) => l.file).sort(), [...cases.map(([name]) => `${name}.log`), 'base32.log'].sort());
    assert.ok(leaks.every((l) => l.form === 'encoded'));
  });

  test('a database the scan cannot open is said so in its dump, its raw bytes still scanned', () => {
    const dir = artifacts([['apiKey', API_KEY]]);
    writeFileSync(join(dir, 'broken.db'), Buffer.concat([Buffer.from('SQLite format 3\0', 'latin1'), Buffer.alloc(200), Buffer.from(API_KEY)]));
    const result = scanner.scanSecrets(dir);
    assert.ok(existsSync(join(dir, 'broken.db.dump.txt')));
    assert.match(readFileSync(join(dir, 'broken.db.dump.txt'), 'utf8'), /^-- not dumped: /);
    assert.deepEqual(
      result.leaks.map((l) => l.file),
      ['broken.db'],
    );
  });
  test('HTTP responses: a TOTP secret is accepted only in the enrolment answer that hands it out; planted in another answer (or a code as a JSON value) it is a leak', () => {
    const secret = base32(TOTP_BYTES);
    const uri = `otpauth://totp/Custos:w?secret=${secret}&issuer=Custos`;
    const dir = artifacts([
      ['totpSecretBase32', secret],
      ['otpauthUri', uri],
      ['apiKey', API_KEY],
      ['totp code', '024681'],
    ]);
    // written as the harness writes them (recordTestResponse: app.inject's answers)
    withArtifacts(dir, () => {
      recordTestResponse({ via: 'inject', method: 'POST', path: '/v1/totp/enroll', status: 200, body: JSON.stringify({ walletName: 'w', otpauthUri: uri }) });
      // the same enrolment answer carrying the API key too: that kind is not what it hands out
      recordTestResponse({ via: 'inject', method: 'POST', path: '/v1/totp/enroll?x=1', status: 200, body: JSON.stringify({ otpauthUri: uri, key: API_KEY }) });
      // the planted leak: the secret in an unrelated answer
      recordTestResponse({ via: 'inject', method: 'GET', path: '/v1/wallets', status: 200, body: JSON.stringify({ wallets: [{ name: 'w', note: secret }] }) });
      // a code as a JSON string value is a leak; inside a longer number it is not
      recordTestResponse({ via: 'inject', method: 'POST', path: '/v1/sign/hash', status: 403, body: '{"error":{"code":"code_invalid","got":"024681"}}' });
      recordTestResponse({ via: 'inject', method: 'GET', path: '/v1/audit', status: 200, body: '{"seq":1024681}' });
    });
    const result = scanner.scanSecrets(dir);
    assert.equal(result.responses, 5);
    assert.equal(result.handedOut, 4, 'the TOTP secret and its URI in both enrolment answers');
    assert.deepEqual(result.leaks.map((l) => `${l.label} | ${l.file.replace(/^responses\/[0-9]+\.jsonl/, 'responses')}`).sort(), [
      'apiKey | responses: POST /v1/totp/enroll → 200',
      'totp code | responses: POST /v1/sign/hash → 403',
      'totpSecretBase32 | responses: GET /v1/wallets → 200',
    ]);
  });

  test('HTTP responses received through fetch are recorded by scripts/record-responses.mjs (preloaded) and scanned', () => {
    const secret = base32(TOTP_BYTES);
    const dir = artifacts([['totpSecretBase32', secret]]);
    const child = spawnSync(
      process.execPath,
      [
        `--import=${join(REPO_ROOT, 'scripts', 'record-responses.mjs')}`,
        '--input-type=module',
        '-e',
        `import { createServer } from 'node:http';
         const server = createServer((req, res) => res.end(JSON.stringify({ leaked: ${JSON.stringify(secret)} })));
         server.listen(0, '127.0.0.1', async () => {
           const response = await fetch('http://127.0.0.1:' + server.address().port + '/v1/wallets?name=w');
           await response.text();
           await new Promise((resolve) => setTimeout(resolve, 50));
           server.close();
         });`,
      ],
      { env: { ...process.env, CUSTOS_TEST_ARTIFACTS: dir }, encoding: 'utf8', timeout: 30_000 },
    );
    assert.equal(child.status, 0, child.stderr);
    const result = scanner.scanSecrets(dir);
    assert.equal(result.responses, 1);
    assert.deepEqual(
      result.leaks.map((l) => `${l.label} | ${l.file.replace(/^responses\/[0-9]+\.jsonl/, 'responses')}`),
      ['totpSecretBase32 | responses: GET /v1/wallets → 200'],
    );
  });
});

/** Runs work with CUSTOS_TEST_ARTIFACTS set to dir (where recordTestResponse writes). */
function withArtifacts(dir: string, work: () => void): void {
  const before = process.env.CUSTOS_TEST_ARTIFACTS;
  process.env.CUSTOS_TEST_ARTIFACTS = dir;
  mkdirSync(join(dir, 'responses'), { recursive: true });
  try {
    work();
  } finally {
    if (before === undefined) delete process.env.CUSTOS_TEST_ARTIFACTS;
    else process.env.CUSTOS_TEST_ARTIFACTS = before;
  }
}

function base32(bytes: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return bits > 0 ? out + alphabet[(value << (5 - bits)) & 31] : out;
}
