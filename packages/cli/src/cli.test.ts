import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type AuditRecord, computeAuditHash, KERNEL_VERSION } from '@custos/kernel';
import { validateMnemonic } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english.js';
import Database from 'better-sqlite3';

// The real `custos` binary, spawned as a user would run it. Everything a test leaves behind (data
// directories, server logs) goes under the artifacts directory, which scripts/test.mjs scans for
// the secrets recorded here; the secret input files (passphrase, mnemonic, seed, xprv) live in a
// separate directory that is removed at the end, since they hold secrets on purpose.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'node_modules', '.bin', 'custos');
const TEST_MNEMONIC = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const API_KEY = /^ck1\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;

interface KeyVector {
  walletName: string;
  keyIndex: number | string;
  publicKey: string;
  address: string;
}
const ethVectors = JSON.parse(readFileSync(join(ROOT, 'test/vectors/secp256k1-ethereum.json'), 'utf8')) as {
  bip39: { mnemonic: string; seedHex: string; rootXprv: string };
  fortanixV1: { vectors: KeyVector[] };
};
const custosVectors = JSON.parse(readFileSync(join(ROOT, 'test/vectors/custos-v1.json'), 'utf8')) as { seedHex: string; vectors: KeyVector[] };

/** Same rule as testArtifactsDir() in packages/server/src/testing/createTestSigner.ts. */
function testArtifactsDir(): string {
  const dir = process.env.CUSTOS_TEST_ARTIFACTS ?? join(tmpdir(), `custos-test-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Same format as recordTestSecret() in packages/server/src/testing/createTestSigner.ts. */
function recordTestSecret(label: string, value: string): void {
  appendFileSync(join(testArtifactsDir(), 'secrets.jsonl'), `${JSON.stringify({ label, value })}\n`);
}

const inputsDir = mkdtempSync(join(tmpdir(), 'custos-cli-inputs-'));
after(() => rmSync(inputsDir, { recursive: true, force: true }));

let fileCounter = 0;
function writeInput(name: string, content: string): string {
  fileCounter += 1;
  const path = join(inputsDir, `${fileCounter}-${name}`);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

function newDataDir(): string {
  return join(mkdtempSync(join(testArtifactsDir(), 'cli-')), 'data');
}

function newPassphrase(label: string): { passphrase: string; file: string } {
  const passphrase = `pp-${randomBytes(18).toString('base64url')}`;
  recordTestSecret(label, passphrase);
  return { passphrase, file: writeInput('passphrase', `${passphrase}\n`) };
}

interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `custos ...args` to completion (killed after timeoutMs). `direct` executes the bin file itself (shebang). */
function runCli(args: string[], { timeoutMs = 30_000, direct = false }: { timeoutMs?: number; direct?: boolean } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` };
    const child = direct
      ? spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`custos ${args.join(' ')} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A failed command: the exit status, nothing on stdout, and exactly one line `custos: <code>: ...` on stderr. */
function assertFailure(result: CliResult, exit: number, code: string, mentions?: string): void {
  assert.equal(result.code, exit, `exit status; stderr: ${result.stderr}`);
  assert.equal(result.stdout, '');
  const lines = result.stderr.split('\n');
  assert.equal(lines.length, 2, `one line on stderr, got ${JSON.stringify(result.stderr)}`);
  assert.equal(lines[1], '');
  assert.ok(lines[0]?.startsWith(`custos: ${code}: `), `stderr line: ${lines[0]}`);
  if (mentions !== undefined) assert.ok(lines[0]?.includes(mentions), `stderr line ${JSON.stringify(lines[0])} should mention ${mentions}`);
}

async function init(args: string[]): Promise<{ signerId: string; stdout: string }> {
  const result = await runCli(['init', ...args, '--scrypt-log-n', '10']);
  assert.equal(result.code, 0, `init failed: ${result.stderr}`);
  assert.equal(result.stderr, '');
  const signerId = /^signerId (\S+)$/m.exec(result.stdout)?.[1];
  assert.ok(signerId !== undefined && UUID.test(signerId), `signerId line in ${result.stdout}`);
  return { signerId, stdout: result.stdout };
}

async function createKey(dataDir: string, name: string, scopes = 'register,derive,sign'): Promise<{ id: string; token: string; stdout: string }> {
  const result = await runCli(['apikey', 'create', '--data-dir', dataDir, '--name', name, '--scopes', scopes]);
  assert.equal(result.code, 0, `apikey create failed: ${result.stderr}`);
  assert.equal(result.stderr, '');
  const token = result.stdout.trim().split(/\s+/).at(-1) ?? '';
  const match = API_KEY.exec(token);
  assert.ok(match !== null, 'the last word of apikey create is an API key');
  const id = match[1] ?? '';
  recordTestSecret(`cli apiKey ${name}`, token);
  recordTestSecret(`cli apiKey secret ${name}`, match[2] ?? '');
  return { id, token, stdout: result.stdout };
}

interface Served {
  url: string;
  child: ChildProcess;
  logFile: string;
  /** SIGTERM, then SIGKILL after 5 s; resolves with the exit status. */
  stop(): Promise<number | null>;
}

const running = new Set<Served>();
after(async () => {
  await Promise.all([...running].map((s) => s.stop()));
});

/** Starts `custos serve` on a free port with stdout and stderr in a log file; resolves once it listens. */
async function serve(dataDir: string, extra: string[] = []): Promise<Served> {
  const logFile = join(testArtifactsDir(), `cli-serve-${process.pid}-${Date.now()}-${randomBytes(4).toString('hex')}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [BIN, 'serve', '--data-dir', dataDir, '--port', '0', ...extra], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const stop = async (): Promise<number | null> => {
    running.delete(served);
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  const served: Served = { url: '', child, logFile, stop };
  running.add(served);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const log = readFileSync(logFile, 'utf8');
    const url = /^custos: listening on (http:\/\/\S+) \(/m.exec(log)?.[1];
    if (url !== undefined) {
      served.url = url;
      return served;
    }
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`custos serve did not start: ${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

interface HttpResult {
  status: number;
  body: unknown;
}

async function request(url: string, init: { method?: string; token?: string; json?: unknown } = {}): Promise<HttpResult> {
  const headers: Record<string, string> = {};
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(url, { method: init.method ?? 'GET', headers, ...(init.json === undefined ? {} : { body: JSON.stringify(init.json) }) });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

function errorCode(result: HttpResult): unknown {
  return (result.body as { error?: { code?: unknown } } | undefined)?.error?.code;
}

async function getKey(served: Served, token: string, walletName: string, keyIndex: number | string): Promise<HttpResult> {
  return request(`${served.url}/v1/keys?walletName=${encodeURIComponent(walletName)}&keyIndex=${keyIndex}`, { token });
}

async function status(served: Served): Promise<unknown> {
  const result = await request(`${served.url}/v1/sys/status`);
  assert.equal(result.status, 200);
  return result.body;
}

describe('custos --help', () => {
  it('prints the usage with every command and exits 0', async () => {
    const result = await runCli(['--help']);
    assert.equal(result.code, 0);
    assert.equal(result.stderr, '');
    assert.match(result.stdout, /^Usage: custos <command> \[options\]$/m);
    for (const command of ['init', 'apikey', 'serve', 'audit verify']) assert.match(result.stdout, new RegExp(`^  ${command} `, 'm'));
  });

  it('runs as an executable through its shebang', async () => {
    const result = await runCli(['--help'], { direct: true });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^Usage: custos <command> \[options\]$/m);
  });

  it('prints the usage on stdout but exits 2 when no command is given', async () => {
    const result = await runCli([]);
    assert.equal(result.code, 2);
    assert.match(result.stdout, /^Usage: custos <command> \[options\]$/m);
  });

  const commands: Array<{ args: string[]; usage: RegExp; options: string[] }> = [
    {
      args: ['init', '--help'],
      usage: /^Usage: custos init /m,
      options: [
        '--data-dir',
        '--passphrase-file',
        '--mnemonic-file',
        '--seed-hex-file',
        '--xprv-file',
        '--derivation',
        'custos-v1',
        'fortanix-v1',
        '--scrypt-log-n',
      ],
    },
    {
      args: ['apikey', '--help'],
      usage: /^ {2}custos apikey create /m,
      options: ['create', 'list', 'revoke', '--data-dir', '--name', '--scopes', '--id', 'register', 'derive', 'sign'],
    },
    { args: ['apikey', 'create', '--help'], usage: /^ {2}custos apikey create /m, options: ['--data-dir', '--name', '--scopes'] },
    { args: ['serve', '--help'], usage: /^Usage: custos serve /m, options: ['--data-dir', '--host', '--port', '--passphrase-file', '--log-level'] },
    { args: ['audit', '--help'], usage: /^Usage: custos audit verify /m, options: ['--data-dir'] },
    { args: ['audit', 'verify', '--help'], usage: /^Usage: custos audit verify /m, options: ['--data-dir'] },
  ];
  for (const { args, usage, options } of commands) {
    it(`custos ${args.join(' ')} names the command's options and exits 0`, async () => {
      const result = await runCli(args);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, '');
      assert.match(result.stdout, usage);
      for (const option of options) assert.ok(result.stdout.includes(option), `${args.join(' ')} names ${option}`);
    });
  }
});

describe('custos init', () => {
  it('generates a 24-word mnemonic that restores the same keys, and refuses to initialise twice', { timeout: 120_000 }, async (t) => {
    const dataDir = newDataDir();
    const { file: passphraseFile } = newPassphrase('cli passphrase generated');
    const { signerId, stdout } = await init(['--data-dir', dataDir, '--passphrase-file', passphraseFile]);
    assert.match(stdout, new RegExp(`^Initialised signer ${signerId} \\(derivation custos-v1\\) in `, 'm'));

    // the mnemonic: one indented line of 24 words from the English wordlist, checksum valid
    const mnemonic = /^ {2}([a-z]+(?: [a-z]+)+)$/m.exec(stdout)?.[1];
    assert.ok(mnemonic !== undefined, 'a mnemonic line in the output');
    recordTestSecret('cli generated mnemonic', mnemonic);
    const words = mnemonic.split(' ');
    assert.equal(words.length, 24);
    for (const word of words) assert.ok(wordlist.includes(word), `${word} is a BIP39 English word`);
    assert.equal(validateMnemonic(mnemonic, wordlist), true);

    // a second init on the same directory: refused, one line, the signer untouched
    const { file: otherPassphraseFile } = newPassphrase('cli passphrase second init');
    const again = await runCli(['init', '--data-dir', dataDir, '--passphrase-file', otherPassphraseFile, '--scrypt-log-n', '10']);
    assertFailure(again, 1, 'already_initialized');
    const againWithImport = await runCli([
      'init',
      '--data-dir',
      dataDir,
      '--passphrase-file',
      otherPassphraseFile,
      '--mnemonic-file',
      writeInput('mnemonic', TEST_MNEMONIC),
      '--scrypt-log-n',
      '10',
    ]);
    assertFailure(againWithImport, 1, 'already_initialized');

    // the printed mnemonic is the backup: imported elsewhere, it derives the same addresses
    const restoredDir = newDataDir();
    const restored = await init([
      '--data-dir',
      restoredDir,
      '--passphrase-file',
      otherPassphraseFile,
      '--mnemonic-file',
      writeInput('mnemonic', `${mnemonic}\n`),
    ]);
    assert.notEqual(restored.signerId, signerId);

    const original = await serve(dataDir, ['--passphrase-file', passphraseFile]);
    t.after(() => original.stop());
    const copy = await serve(restoredDir, ['--passphrase-file', otherPassphraseFile]);
    t.after(() => copy.stop());
    // the original passphrase still unseals it and the signerId is the first one
    assert.deepEqual(await status(original), { sealed: false, signerId, version: KERNEL_VERSION, derivation: 'custos-v1' });
    const keyA = await createKey(dataDir, 'original');
    const keyB = await createKey(restoredDir, 'restored');
    for (const [walletName, keyIndex] of [
      ['alice@acme.com', 0],
      ['bob@acme.com', 5],
    ] as const) {
      const a = await getKey(original, keyA.token, walletName, keyIndex);
      const b = await getKey(copy, keyB.token, walletName, keyIndex);
      assert.equal(a.status, 200);
      assert.deepEqual(b.body, a.body);
    }
  });

  const imports: Array<{ kind: string; option: string; content: string }> = [
    { kind: 'the test mnemonic', option: '--mnemonic-file', content: `${ethVectors.bip39.mnemonic}\n` },
    { kind: 'the seed hex', option: '--seed-hex-file', content: `${ethVectors.bip39.seedHex}\n` },
    { kind: 'the root xprv', option: '--xprv-file', content: `${ethVectors.bip39.rootXprv}\n` },
  ];
  for (const { kind, option, content } of imports) {
    it(`imports ${kind} (${option}) with fortanix-v1 derivation: the published addresses`, { timeout: 60_000 }, async (t) => {
      const dataDir = newDataDir();
      const { file: passphraseFile } = newPassphrase(`cli passphrase import ${option}`);
      const { signerId, stdout } = await init([
        '--data-dir',
        dataDir,
        '--passphrase-file',
        passphraseFile,
        option,
        writeInput('import', content),
        '--derivation',
        'fortanix-v1',
      ]);
      assert.doesNotMatch(stdout, /mnemonic/i, 'an import prints no mnemonic');
      const { token } = await createKey(dataDir, 'importer');
      const served = await serve(dataDir, ['--passphrase-file', passphraseFile]);
      t.after(() => served.stop());
      assert.deepEqual(await status(served), { sealed: false, signerId, version: KERNEL_VERSION, derivation: 'fortanix-v1' });
      assert.equal(ethVectors.fortanixV1.vectors.length, 4);
      for (const v of ethVectors.fortanixV1.vectors) {
        const result = await getKey(served, token, v.walletName, v.keyIndex);
        assert.equal(result.status, 200, JSON.stringify(result.body));
        const body = result.body as { address: string; publicKey: string; keyIndex: number; walletName: string };
        assert.equal(body.address.toLowerCase(), v.address.toLowerCase());
        assert.equal(body.publicKey, v.publicKey);
        assert.equal(body.walletName, v.walletName);
        assert.equal(body.keyIndex, Number(v.keyIndex));
      }
    });
  }

  it('defaults to custos-v1 derivation: the published custos-v1 addresses (EIP-55)', { timeout: 60_000 }, async (t) => {
    assert.equal(custosVectors.seedHex, ethVectors.bip39.seedHex);
    const dataDir = newDataDir();
    const { file: passphraseFile } = newPassphrase('cli passphrase custos-v1');
    const { signerId } = await init(['--data-dir', dataDir, '--passphrase-file', passphraseFile, '--mnemonic-file', writeInput('mnemonic', TEST_MNEMONIC)]);
    const { token } = await createKey(dataDir, 'derive-only', 'derive');
    const served = await serve(dataDir, ['--passphrase-file', passphraseFile]);
    t.after(() => served.stop());
    assert.deepEqual(await status(served), { sealed: false, signerId, version: KERNEL_VERSION, derivation: 'custos-v1' });
    for (const v of custosVectors.vectors) {
      const result = await getKey(served, token, v.walletName, v.keyIndex);
      assert.equal(result.status, 200, JSON.stringify(result.body));
      assert.deepEqual(result.body, { walletName: v.walletName, keyIndex: v.keyIndex, publicKey: v.publicKey, address: v.address });
    }
    // the key's scopes hold: derive only, no enrolment
    const enrol = await request(`${served.url}/v1/totp/enroll`, { method: 'POST', token, json: { walletName: 'alice@acme.com' } });
    assert.equal(enrol.status, 403);
    assert.equal(errorCode(enrol), 'forbidden_scope');
  });
});

describe('custos serve', () => {
  it('starts sealed without a passphrase file and unseals over HTTP with the right passphrase only', { timeout: 60_000 }, async (t) => {
    const dataDir = newDataDir();
    const { passphrase, file: passphraseFile } = newPassphrase('cli passphrase sealed');
    const { signerId } = await init([
      '--data-dir',
      dataDir,
      '--passphrase-file',
      passphraseFile,
      '--mnemonic-file',
      writeInput('mnemonic', TEST_MNEMONIC),
      '--derivation',
      'fortanix-v1',
    ]);
    const { token } = await createKey(dataDir, 'app');
    const served = await serve(dataDir);
    t.after(() => served.stop());
    const vector = ethVectors.fortanixV1.vectors[0];
    assert.ok(vector !== undefined);

    assert.match(
      readFileSync(served.logFile, 'utf8'),
      new RegExp(`^custos: listening on http://127\\.0\\.0\\.1:\\d+ \\(signerId ${signerId}, sealed\\)$`, 'm'),
    );
    assert.deepEqual(await status(served), { sealed: true, signerId, version: KERNEL_VERSION, derivation: 'fortanix-v1' });

    const sealedKey = await getKey(served, token, vector.walletName, vector.keyIndex);
    assert.equal(sealedKey.status, 503);
    assert.equal(errorCode(sealedKey), 'sealed');
    const sealedSession = await fetch(`${served.url}/sys/v1/session/auth`, { method: 'POST', headers: { authorization: `Basic ${token}` } });
    assert.equal(sealedSession.status, 503);
    assert.equal(((await sealedSession.json()) as { error: { code: string } }).error.code, 'sealed');

    const wrongPassphrase = `${passphrase}x`;
    recordTestSecret('cli wrong passphrase', wrongPassphrase);
    const wrong = await request(`${served.url}/v1/sys/unseal`, { method: 'POST', json: { passphrase: wrongPassphrase } });
    assert.equal(wrong.status, 401);
    assert.equal(errorCode(wrong), 'unseal_failed');
    const empty = await request(`${served.url}/v1/sys/unseal`, { method: 'POST', json: { passphrase: '' } });
    assert.equal(empty.status, 400);
    assert.equal(errorCode(empty), 'invalid_input');
    assert.deepEqual(await status(served), { sealed: true, signerId, version: KERNEL_VERSION, derivation: 'fortanix-v1' });
    assert.equal((await getKey(served, token, vector.walletName, vector.keyIndex)).status, 503);

    const right = await request(`${served.url}/v1/sys/unseal`, { method: 'POST', json: { passphrase } });
    assert.equal(right.status, 200);
    assert.deepEqual(right.body, { sealed: false, signerId, version: KERNEL_VERSION, derivation: 'fortanix-v1' });
    const key = await getKey(served, token, vector.walletName, vector.keyIndex);
    assert.equal(key.status, 200);
    assert.equal((key.body as { address: string }).address.toLowerCase(), vector.address);

    const twice = await request(`${served.url}/v1/sys/unseal`, { method: 'POST', json: { passphrase } });
    assert.equal(twice.status, 409);
    assert.equal(errorCode(twice), 'already_unsealed');

    // SIGTERM: a clean shutdown, exit 0, and the port is closed
    assert.equal(await served.stop(), 0);
    await assert.rejects(fetch(`${served.url}/v1/sys/status`));
  });

  it('refuses to start with a wrong passphrase file: exit 1, one line unseal_failed', { timeout: 60_000 }, async () => {
    const dataDir = newDataDir();
    const { file: passphraseFile } = newPassphrase('cli passphrase serve-wrong');
    await init(['--data-dir', dataDir, '--passphrase-file', passphraseFile]);
    const { file: wrongFile } = newPassphrase('cli wrong passphrase serve');
    const result = await runCli(['serve', '--data-dir', dataDir, '--port', '0', '--passphrase-file', wrongFile, '--log-level', 'silent']);
    assertFailure(result, 1, 'unseal_failed');
  });
});

describe('custos: bad input', () => {
  // one initialised directory for the commands that need one, and fresh ones for refused inits
  let ready: { dataDir: string; passphraseFile: string } | undefined;
  async function readyDir(): Promise<{ dataDir: string; passphraseFile: string }> {
    if (ready === undefined) {
      const dataDir = newDataDir();
      const { file: passphraseFile } = newPassphrase('cli passphrase bad-input');
      await init(['--data-dir', dataDir, '--passphrase-file', passphraseFile]);
      ready = { dataDir, passphraseFile };
    }
    return ready;
  }

  const pass = () => writeInput('passphrase', 'a passphrase for a refused init\n');
  const refusedInits: Array<{ name: string; args: (dir: string) => string[]; mentions: string }> = [
    { name: 'an unknown option', args: (dir) => ['--data-dir', dir, '--passphrase-file', pass(), '--frobnicate'], mentions: "'--frobnicate'" },
    { name: 'a stray positional', args: (dir) => ['--data-dir', dir, '--passphrase-file', pass(), 'extra'], mentions: 'extra' },
    { name: '--derivation bogus', args: (dir) => ['--data-dir', dir, '--passphrase-file', pass(), '--derivation', 'bogus'], mentions: '--derivation' },
    {
      name: 'an unreadable passphrase file',
      args: (dir) => ['--data-dir', dir, '--passphrase-file', join(inputsDir, 'no-such-file')],
      mentions: '--passphrase-file',
    },
    { name: 'a directory as passphrase file', args: (dir) => ['--data-dir', dir, '--passphrase-file', inputsDir], mentions: '--passphrase-file' },
    { name: 'an empty passphrase file', args: (dir) => ['--data-dir', dir, '--passphrase-file', writeInput('empty', '\n')], mentions: '--passphrase-file' },
    { name: 'no --passphrase-file', args: (dir) => ['--data-dir', dir], mentions: '--passphrase-file' },
    {
      name: 'a mnemonic with a bad checksum',
      args: (dir) => ['--data-dir', dir, '--passphrase-file', pass(), '--mnemonic-file', writeInput('mnemonic', 'abandon '.repeat(12).trim())],
      mentions: '--mnemonic-file',
    },
    {
      name: 'a mnemonic with a word outside the wordlist',
      args: (dir) => ['--data-dir', dir, '--passphrase-file', pass(), '--mnemonic-file', writeInput('mnemonic', TEST_MNEMONIC.replace('about', 'abouts'))],
      mentions: '--mnemonic-file',
    },
    {
      name: 'two imports at once',
      args: (dir) => [
        '--data-dir',
        dir,
        '--passphrase-file',
        pass(),
        '--mnemonic-file',
        writeInput('mnemonic', TEST_MNEMONIC),
        '--seed-hex-file',
        writeInput('seed', ethVectors.bip39.seedHex),
      ],
      mentions: '--seed-hex-file',
    },
    {
      name: 'a seed of 15 bytes',
      args: (dir) => ['--data-dir', dir, '--passphrase-file', pass(), '--seed-hex-file', writeInput('seed', 'ab'.repeat(15))],
      mentions: '--seed-hex-file',
    },
    {
      name: 'a seed that is not hex',
      args: (dir) => ['--data-dir', dir, '--passphrase-file', pass(), '--seed-hex-file', writeInput('seed', 'zz'.repeat(32))],
      mentions: '--seed-hex-file',
    },
    {
      name: 'an xprv with a bad checksum',
      args: (dir) => ['--data-dir', dir, '--passphrase-file', pass(), '--xprv-file', writeInput('xprv', `${ethVectors.bip39.rootXprv.slice(0, -1)}v`)],
      mentions: 'xprv',
    },
    { name: '--scrypt-log-n 9', args: (dir) => ['--data-dir', dir, '--passphrase-file', pass(), '--scrypt-log-n', '9'], mentions: '--scrypt-log-n' },
  ];
  for (const { name, args, mentions } of refusedInits) {
    it(`init with ${name}: exit 2, one line invalid_input, nothing initialised`, async () => {
      const dataDir = newDataDir();
      const result = await runCli(['init', ...args(dataDir)]);
      assertFailure(result, 2, 'invalid_input', mentions);
      assert.equal(existsSync(join(dataDir, 'custos.db')), false, 'no database was created');
    });
  }

  it('init without --data-dir: exit 2, one line invalid_input', async () => {
    assertFailure(await runCli(['init', '--passphrase-file', pass()]), 2, 'invalid_input', '--data-dir');
  });

  it('an unknown command: exit 2, one line invalid_input', async () => {
    assertFailure(await runCli(['frobnicate']), 2, 'invalid_input', '"frobnicate"');
    assertFailure(await runCli(['apikey', 'frobnicate', '--data-dir', 'x']), 2, 'invalid_input', '"frobnicate"');
    assertFailure(await runCli(['audit', 'frobnicate']), 2, 'invalid_input', '"frobnicate"');
  });

  it('apikey create --scopes bogus: exit 2, one line invalid_input, no key created', async () => {
    const { dataDir } = await readyDir();
    assertFailure(await runCli(['apikey', 'create', '--data-dir', dataDir, '--name', 'x', '--scopes', 'derive,bogus']), 2, 'invalid_input', 'scopes');
    assertFailure(await runCli(['apikey', 'create', '--data-dir', dataDir, '--name', 'x', '--scopes', '']), 2, 'invalid_input', '--scopes');
    const list = await runCli(['apikey', 'list', '--data-dir', dataDir]);
    assert.equal(list.code, 0);
    assert.equal(list.stdout.trim().split('\n').length, 1, `only the header: ${list.stdout}`);
  });

  for (const port of ['abc', '70000', '-1', '', '1e3']) {
    it(`serve --port ${JSON.stringify(port)}: exit 2, one line invalid_input`, async () => {
      const { dataDir } = await readyDir();
      assertFailure(await runCli(['serve', '--data-dir', dataDir, `--port=${port}`]), 2, 'invalid_input', '--port');
    });
  }

  it('serve --log-level loud and serve without --data-dir: exit 2', async () => {
    const { dataDir } = await readyDir();
    assertFailure(await runCli(['serve', '--data-dir', dataDir, '--log-level', 'loud']), 2, 'invalid_input', '--log-level');
    assertFailure(await runCli(['serve', '--port', '0']), 2, 'invalid_input', '--data-dir');
  });

  it('commands on a directory without a signer: exit 1, one line not_initialized, no database created', async () => {
    const dataDir = newDataDir();
    assertFailure(await runCli(['serve', '--data-dir', dataDir, '--port', '0']), 1, 'not_initialized');
    assertFailure(await runCli(['apikey', 'create', '--data-dir', dataDir, '--name', 'x', '--scopes', 'derive']), 1, 'not_initialized');
    assertFailure(await runCli(['apikey', 'list', '--data-dir', dataDir]), 1, 'not_initialized');
    assertFailure(await runCli(['audit', 'verify', '--data-dir', dataDir]), 1, 'not_initialized');
    assert.equal(existsSync(join(dataDir, 'custos.db')), false);
  });

  it('apikey revoke of an unknown id: exit 1, one line not_found', async () => {
    const { dataDir } = await readyDir();
    assertFailure(await runCli(['apikey', 'revoke', '--data-dir', dataDir, '--id', '0123456789abcdef']), 1, 'not_found');
    assertFailure(await runCli(['apikey', 'revoke', '--data-dir', dataDir]), 2, 'invalid_input', '--id');
  });
});

describe('custos apikey', () => {
  it('creates, lists (never the key) and revokes; a revoked key gets 401 from a running server', { timeout: 60_000 }, async (t) => {
    const dataDir = newDataDir();
    const { file: passphraseFile } = newPassphrase('cli passphrase apikey');
    const { signerId } = await init(['--data-dir', dataDir, '--passphrase-file', passphraseFile]);
    const first = await createKey(dataDir, 'payments backend');
    const second = await createKey(dataDir, 'reporting', 'derive');
    assert.notEqual(first.id, second.id);
    assert.match(first.stdout, new RegExp(`^Created API key ${first.id} \\(payments backend; scopes register,derive,sign\\)`));
    assert.ok(first.token.startsWith(`ck1.${first.id}.`));

    const list = await runCli(['apikey', 'list', '--data-dir', dataDir]);
    assert.equal(list.code, 0);
    assert.equal(list.stderr, '');
    const rows = list.stdout.trim().split('\n').slice(1);
    assert.equal(rows.length, 2);
    const rowOf = (id: string) => rows.find((row) => row.startsWith(`${id} `)) ?? '';
    assert.match(rowOf(first.id), /^[0-9a-f]{16} +payments backend +register,derive,sign +\d{4}-\d\d-\d\dT[\d:.]+Z +-$/);
    assert.match(rowOf(second.id), /^[0-9a-f]{16} +reporting +derive +\d{4}-\d\d-\d\dT[\d:.]+Z +-$/);
    for (const key of [first, second]) {
      assert.ok(!list.stdout.includes(key.token));
      assert.ok(!list.stdout.includes(key.token.split('.')[2] ?? 'missing'));
    }

    const served = await serve(dataDir, ['--passphrase-file', passphraseFile]);
    t.after(() => served.stop());
    assert.equal((await getKey(served, first.token, 'alice@acme.com', 0)).status, 200);
    assert.equal((await getKey(served, second.token, 'alice@acme.com', 0)).status, 200);
    // a compatibility session opened before the revocation
    const auth = await fetch(`${served.url}/sys/v1/session/auth`, { method: 'POST', headers: { authorization: `Basic ${first.token}` } });
    assert.equal(auth.status, 200);
    const accessToken = ((await auth.json()) as { access_token: string }).access_token;
    recordTestSecret('cli access_token', accessToken);
    const getPubKey = () =>
      fetch(`${served.url}/sys/v1/plugins/${signerId}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${accessToken}` },
        body: JSON.stringify({ operation: 'getPubKey', walletName: 'alice@acme.com', keyIndex: 0 }),
      });
    assert.equal((await getPubKey()).status, 200);

    const revoke = await runCli(['apikey', 'revoke', '--data-dir', dataDir, '--id', first.id]);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.equal(revoke.stdout, `Revoked API key ${first.id}\n`);

    const refused = await getKey(served, first.token, 'alice@acme.com', 0);
    assert.equal(refused.status, 401);
    assert.equal(errorCode(refused), 'unauthorized');
    assert.equal((await getKey(served, second.token, 'alice@acme.com', 0)).status, 200, 'the other key still works');
    const afterRevoke = await getPubKey();
    assert.equal(afterRevoke.status, 401);
    assert.equal(((await afterRevoke.json()) as { error: { code: string } }).error.code, 'unauthorized');

    const listAfter = await runCli(['apikey', 'list', '--data-dir', dataDir]);
    assert.match(listAfter.stdout, new RegExp(`^${first.id} .* \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z$`, 'm'), 'the revocation time is listed');
    assert.match(listAfter.stdout, new RegExp(`^${second.id} .* -$`, 'm'));
    assertFailure(await runCli(['apikey', 'revoke', '--data-dir', dataDir, '--id', first.id]), 1, 'not_found');
  });
});

describe('custos audit verify', () => {
  interface AuditRow {
    seq: number;
    ts: number;
    app_id: string | null;
    wallet_name: string | null;
    action: string;
    op_hash: string | null;
    decision: 'allowed' | 'denied';
    reason: string | null;
    detail: string;
    prev_hash: string;
    hash: string;
  }
  const toRecord = (row: AuditRow): AuditRecord => ({
    seq: row.seq,
    ts: row.ts,
    appId: row.app_id,
    walletName: row.wallet_name,
    action: row.action,
    opHash: row.op_hash,
    decision: row.decision,
    reason: row.reason,
    detail: JSON.parse(row.detail) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
  });

  it('accepts the chain of a fresh signer and names the record where it was edited or cut', { timeout: 60_000 }, async () => {
    const dataDir = newDataDir();
    const { file: passphraseFile } = newPassphrase('cli passphrase audit');
    await init(['--data-dir', dataDir, '--passphrase-file', passphraseFile]);
    const empty = await runCli(['audit', 'verify', '--data-dir', dataDir]);
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal(empty.stdout, `audit chain OK: 0 records, head seq 0 hash ${'0'.repeat(64)}\n`);

    const { token } = await createKey(dataDir, 'audited'); // seq 1
    const served = await serve(dataDir, ['--passphrase-file', passphraseFile]);
    try {
      for (const keyIndex of [0, 1, 2]) assert.equal((await getKey(served, token, 'alice@acme.com', keyIndex)).status, 200); // seq 2..4
      const denied = await request(`${served.url}/v1/wallets?walletName=nobody`, { token });
      assert.equal(errorCode(denied), 'wallet_not_found');
    } finally {
      assert.equal(await served.stop(), 0);
    }

    const ok = await runCli(['audit', 'verify', '--data-dir', dataDir]);
    assert.equal(ok.code, 0, ok.stderr);
    const head = /^audit chain OK: 4 records, head seq 4 hash ([0-9a-f]{64})\n$/.exec(ok.stdout)?.[1];
    assert.ok(head !== undefined, ok.stdout);

    const dbPath = join(dataDir, 'custos.db');
    const withDb = (work: (db: Database.Database) => void) => {
      const db = new Database(dbPath);
      try {
        work(db);
      } finally {
        db.close();
      }
    };
    const verify = () => runCli(['audit', 'verify', '--data-dir', dataDir]);

    // an edited field: that record's hash no longer matches
    withDb((db) => assert.equal(db.prepare("UPDATE audit_log SET reason = 'x' WHERE seq = 2").run().changes, 1));
    let broken = await verify();
    assert.equal(broken.code, 1);
    assert.equal(broken.stdout, 'audit chain BROKEN at record seq 2: hash mismatch (1 records verified before it)\n', broken.stderr);
    withDb((db) => db.prepare('UPDATE audit_log SET reason = NULL WHERE seq = 2').run());
    assert.equal((await verify()).stdout, ok.stdout, 'restored: the same head again');

    // an edited record whose own hash was recomputed: the next record no longer links to it
    withDb((db) => {
      const row = db.prepare('SELECT * FROM audit_log WHERE seq = 2').get() as AuditRow;
      const record = toRecord(row);
      const forged = { ...record, detail: { ...record.detail, keyIndex: 99 } };
      const hash = computeAuditHash(forged, record.seq, record.prevHash);
      db.prepare('UPDATE audit_log SET detail = ?, hash = ? WHERE seq = 2').run(JSON.stringify(forged.detail), hash);
      assert.equal(toRecord(db.prepare('SELECT * FROM audit_log WHERE seq = 1').get() as AuditRow).hash, record.prevHash);
      // restore later from the saved row
      db.prepare('CREATE TABLE saved AS SELECT * FROM audit_log WHERE seq = 2').run();
      db.prepare('UPDATE saved SET detail = ?, hash = ?').run(row.detail, row.hash);
    });
    broken = await verify();
    assert.equal(broken.code, 1);
    assert.equal(broken.stdout, 'audit chain BROKEN at record seq 3: prev hash mismatch (2 records verified before it)\n', broken.stderr);
    withDb((db) => {
      db.prepare('UPDATE audit_log SET detail = (SELECT detail FROM saved), hash = (SELECT hash FROM saved) WHERE seq = 2').run();
      db.prepare('DROP TABLE saved').run();
    });
    assert.equal((await verify()).stdout, ok.stdout, 'restored: the same head again');

    // a deleted middle record: the gap is named
    withDb((db) => assert.equal(db.prepare('DELETE FROM audit_log WHERE seq = 3').run().changes, 1));
    broken = await verify();
    assert.equal(broken.code, 1);
    assert.equal(broken.stdout, 'audit chain BROKEN at record seq 3: gap (2 records verified before it)\n', broken.stderr);
    assert.equal(broken.stderr, '');
  });
});
