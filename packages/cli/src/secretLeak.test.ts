import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { generateTotp, parseOtpauthUri } from '@custos/kernel';
import type { StoreLocation } from '@custos/server';
import { mnemonicToSeedSync } from '@scure/bip39';
import {
  dumpStoreCells,
  freshStoreLocation,
  ROOT,
  recordTestSecret,
  runCli,
  secretInputs,
  serve,
  storeArgs,
  testArtifactsDir,
  testStoreKind,
} from './testing/cliHarness.js';

// One end-to-end run of the real `custos` binary that handles every kind of secret Custos sees
// (mnemonics, seeds, the passphrase, API keys, TOTP secrets and codes, compatibility-API bearer
// tokens), through successful and refused requests, with the server logging at debug level. Then
// none of those secrets may appear in the server logs or in the bytes of the data directories,
// nor in any HTTP response other than the one that hands it out (TOTP enrolment, session).
// The store is the pass's: two data directories (SQLite: their files are read byte for byte, WAL
// included) or two PostgreSQL schemas reached through URLs that carry a password (their rows are read
// cell by cell; the password is one more secret).

const vectors = JSON.parse(readFileSync(join(ROOT, 'test/vectors/secp256k1-ethereum.json'), 'utf8')) as { bip39: { mnemonic: string; seedHex: string } };
const custosVectors = JSON.parse(readFileSync(join(ROOT, 'test/vectors/custos-v1.json'), 'utf8')) as {
  vectors: Array<{ walletName: string; keyIndex: number; address: string }>;
};

// The input files hold secrets on purpose: outside the artifacts directory, removed at the end.
const writeInput = secretInputs('custos-leak-inputs').write;

// ── the secrets seen in this run ────────────────────────────────────────────────────────────

interface Secret {
  label: string;
  bytes: Buffer;
  /** A TOTP code: short and all digits, matched as a whole number (see findSecret). */
  code: boolean;
  /** The one response that hands this secret out (an enrolment, a session), which may carry it. */
  handedOutBy?: string;
}
const secrets: Secret[] = [];

function addSecret(label: string, value: string, options: { handedOutBy?: string; record?: boolean } = {}): void {
  assert.ok(value.length > 0, label);
  if (options.record !== false) recordTestSecret(label, value);
  const code = /^[0-9]{6}$/.test(value);
  secrets.push({ label, bytes: Buffer.from(value, 'utf8'), code, ...(options.handedOutBy === undefined ? {} : { handedOutBy: options.handedOutBy }) });
}
/** A secret also looked for as raw bytes (seeds, TOTP keys). */
function addBinarySecret(label: string, bytes: Uint8Array, handedOutBy?: string): void {
  const by = handedOutBy === undefined ? {} : { handedOutBy };
  secrets.push({ label: `${label} (raw bytes)`, bytes: Buffer.from(bytes), code: false, ...by });
  addSecret(`${label} (hex)`, Buffer.from(bytes).toString('hex'), by);
  addSecret(`${label} (HEX)`, Buffer.from(bytes).toString('hex').toUpperCase(), { record: false, ...by });
}
function addMnemonic(label: string, mnemonic: string): void {
  addSecret(label, mnemonic);
  const words = mnemonic.split(' ');
  for (let i = 0; i + 4 <= words.length; i++) addSecret(`${label} words ${i + 1}-${i + 4}`, words.slice(i, i + 4).join(' '), { record: false });
}
function addApiKey(label: string, token: string): void {
  addSecret(label, token);
  const secretPart = token.split('.')[2];
  assert.ok(secretPart !== undefined && secretPart.length === 43, `${label} has a secret part`);
  addSecret(`${label} secret part`, secretPart);
}

/**
 * Where `secret` occurs in `haystack`. A 6-digit code also occurs by chance inside longer numbers
 * (timestamps, durations) and hex strings, so in text it counts only as a whole number (no digit
 * or '.' before it, no digit after it); in database bytes only in a JSON-quoted or JSON-number
 * form (every cell is also checked as a whole, see dumpStoreCells).
 */
function findSecret(haystack: Buffer, secret: Secret, kind: 'text' | 'database'): boolean {
  if (!secret.code) return haystack.includes(secret.bytes);
  const code = secret.bytes.toString('ascii');
  if (kind === 'database') return haystack.includes(`"${code}"`) || new RegExp(`:${code}(?![0-9])`).test(haystack.toString('latin1'));
  return new RegExp(`(?<![0-9.])${code}(?![0-9])`).test(haystack.toString('latin1'));
}

// ── HTTP ─────────────────────────────────────────────────────────────────────

interface Response {
  what: string;
  status: number;
  text: string;
  json: Record<string, unknown>;
  /** Set on a response that hands a secret out (see Secret.handedOutBy). */
  handsOut?: string;
}
const responses: Response[] = [];

async function call(
  what: string,
  url: string,
  {
    method = 'POST',
    authorization,
    body,
    contentType = 'application/json',
    handsOut,
  }: { method?: string; authorization?: string; body?: unknown; contentType?: string; handsOut?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = {};
  if (authorization !== undefined) headers.authorization = authorization;
  if (body !== undefined) headers['content-type'] = contentType;
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const response = await fetch(url, init);
  const text = await response.text();
  const result: Response = {
    what,
    status: response.status,
    text,
    json: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>,
    ...(handsOut === undefined ? {} : { handsOut }),
  };
  responses.push(result);
  return result;
}

function assertError(response: Response, status: number, code: string): void {
  assert.equal(response.status, status, `${response.what}: ${response.text}`);
  assert.equal((response.json.error as { code?: unknown } | undefined)?.code, code, response.what);
}

/** The current TOTP code of a secret, and one valid at none of the steps around now. */
function currentCode(secret: Uint8Array, offsetSeconds = 0): string {
  return generateTotp(secret, Math.floor(Date.now() / 1000) + offsetSeconds);
}
function wrongCode(secret: Uint8Array): string {
  const near = new Set([-90, -60, -30, 0, 30, 60, 90].map((offset) => currentCode(secret, offset)));
  for (;;) {
    const candidate = String(randomInt(0, 1_000_000)).padStart(6, '0');
    if (!near.has(candidate)) return candidate;
  }
}

/** Every file of a directory tree. */
function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

describe('secret leak', () => {
  it('no secret of a full run reaches the logs, the store (database files or rows) or another response', { timeout: 180_000 }, async () => {
    const artifacts = testArtifactsDir();
    const runDir = mkdtempSync(join(artifacts, 'leak-'));
    /** A store per signer: a data directory of the run, or a schema reached through a URL with a password. */
    const newStore = (name: string): StoreLocation => {
      if (testStoreKind() === 'sqlite') return { dataDir: join(runDir, name) };
      const password = `store-pw-${randomBytes(18).toString('hex')}`;
      addSecret(`store URL password of ${name}`, password, { record: false }); // freshStoreLocation records it
      return freshStoreLocation({ kind: 'postgres', password });
    };
    const dataA = newStore('data-generated');
    const dataB = newStore('data-imported');
    const logA = join(runDir, 'serve-generated.log');
    const logB = join(runDir, 'serve-imported.log');

    // ── two signers: a generated mnemonic, and the published test mnemonic ─────────────────
    const passphrase = `leak-test ${randomBytes(24).toString('base64url')}`;
    addSecret('passphrase', passphrase);
    const passphraseFile = writeInput('passphrase', `${passphrase}\n`);

    const initA = await runCli(['init', ...storeArgs(dataA), '--passphrase-file', passphraseFile, '--scrypt-log-n', '10']);
    assert.equal(initA.code, 0, initA.stderr);
    const mnemonic = /^ {2}([a-z]+(?: [a-z]+){23})$/m.exec(initA.stdout)?.[1];
    assert.ok(mnemonic !== undefined, 'the generated mnemonic is printed');
    addMnemonic('generated mnemonic', mnemonic);
    addBinarySecret('generated seed', mnemonicToSeedSync(mnemonic));
    const signerA = /^signerId (\S+)$/m.exec(initA.stdout)?.[1] ?? '';

    const initB = await runCli([
      'init',
      ...storeArgs(dataB),
      '--passphrase-file',
      passphraseFile,
      '--mnemonic-file',
      writeInput('mnemonic', vectors.bip39.mnemonic),
      '--scrypt-log-n',
      '10',
    ]);
    assert.equal(initB.code, 0, initB.stderr);
    addMnemonic('test mnemonic', vectors.bip39.mnemonic);
    addBinarySecret('test seed', Buffer.from(vectors.bip39.seedHex, 'hex'));

    const createKey = async (store: StoreLocation, name: string) => {
      const result = await runCli(['apikey', 'create', ...storeArgs(store), '--name', name, '--scopes', 'register,derive,sign']);
      assert.equal(result.code, 0, result.stderr);
      const token = result.stdout.trim().split(/\s+/).at(-1) ?? '';
      addApiKey(`apiKey ${name}`, token);
      return token;
    };
    const keyA = await createKey(dataA, 'native');
    const keyCompat = await createKey(dataA, 'compat');
    const keyB = await createKey(dataB, 'imported');

    // ── signer A starts sealed; signer B unseals from its passphrase file ─────────────────
    // the run signs raw hashes for enrolled wallets: its deployment allows them (the kernel's default refuses)
    const policyFile = writeInput('policy', '{"rawHash":"allow"}');
    const serverA = await serve(dataA, ['--log-level', 'debug', '--policy-file', policyFile], { logFile: logA });
    const serverB = await serve(dataB, ['--log-level', 'debug', '--passphrase-file', passphraseFile, '--policy-file', policyFile], { logFile: logB });
    const a = serverA.url;
    const bearer = (token: string) => `Bearer ${token}`;

    const wrongPassphrase = `${passphrase.slice(0, -1)}#`;
    addSecret('wrong passphrase', wrongPassphrase);
    assertError(await call('unseal, wrong passphrase', `${a}/v1/sys/unseal`, { body: { passphrase: wrongPassphrase } }), 401, 'unseal_failed');
    assertError(await call('unseal, malformed JSON', `${a}/v1/sys/unseal`, { body: `{"passphrase":"${passphrase}" oops}` }), 400, 'invalid_input');
    assertError(await call('unseal, unknown field', `${a}/v1/sys/unseal`, { body: { passphrase, mnemonic } }), 400, 'invalid_input');
    // a failed unseal makes the next one wait 1 s (docs/errors.md#unseal-throttled)
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    const unsealed = await call('unseal', `${a}/v1/sys/unseal`, { body: { passphrase } });
    assert.equal(unsealed.status, 200, unsealed.text);
    assert.equal(unsealed.json.sealed, false);

    // ── TOTP enrolment: native and compatibility APIs ─────────────────────────────────────
    const enrolled = await call('enrol alice', `${a}/v1/totp/enroll`, {
      authorization: bearer(keyA),
      body: { walletName: 'alice@acme.com' },
      handsOut: 'enrol alice',
    });
    assert.equal(enrolled.status, 200, enrolled.text);
    const aliceUri = String(enrolled.json.otpauthUri);
    const alice = parseOtpauthUri(aliceUri).secret;
    addSecret('TOTP secret alice (base32)', new URL(aliceUri).searchParams.get('secret') ?? '', { handedOutBy: 'enrol alice' });
    addBinarySecret('TOTP secret alice', alice, 'enrol alice');
    assertError(
      await call('enrol alice again', `${a}/v1/totp/enroll`, { authorization: bearer(keyA), body: { walletName: 'alice@acme.com' } }),
      409,
      'already_enrolled',
    );

    const session = await call('compat session', `${a}/sys/v1/session/auth`, { authorization: `Basic ${keyCompat}`, handsOut: 'compat session' });
    assert.equal(session.status, 200, session.text);
    const accessToken = String(session.json.access_token);
    addSecret('access_token', accessToken, { handedOutBy: 'compat session' });
    const plugin = `${a}/sys/v1/plugins/${signerA}`;
    const registered = await call('compat register bob', plugin, {
      authorization: bearer(accessToken),
      body: { operation: 'register', walletName: 'bob@acme.com' },
      handsOut: 'register bob',
    });
    assert.equal(registered.status, 200, registered.text);
    assert.equal(registered.json.security_object, 'totp/bob@acme.com');
    const bobUri = String(registered.json.url);
    const bob = parseOtpauthUri(bobUri).secret;
    addSecret('TOTP secret bob (base32)', new URL(bobUri).searchParams.get('secret') ?? '', { handedOutBy: 'register bob' });
    addBinarySecret('TOTP secret bob', bob, 'register bob');
    const pubKey = await call('compat getPubKey bob', plugin, {
      authorization: bearer(accessToken),
      body: { operation: 'getPubKey', walletName: 'bob@acme.com', keyIndex: 0 },
    });
    assert.equal(pubKey.status, 200, pubKey.text);

    // ── signing: success, replay, wrong codes, no code ────────────────────────────────────
    const hash = randomBytes(32).toString('hex');
    const sign = (what: string, code: string | undefined, token = keyA) =>
      call(what, `${a}/v1/sign/hash`, {
        authorization: bearer(token),
        body: { walletName: 'alice@acme.com', keyIndex: 0, hash, ...(code === undefined ? {} : { code }) },
      });

    assertError(await sign('sign without code', undefined), 403, 'code_required');
    const code1 = currentCode(alice);
    addSecret('code alice 1', code1);
    const signed = await sign('sign alice', code1);
    assert.equal(signed.status, 200, signed.text);
    assert.match(String(signed.json.signature), /^0x[0-9a-f]{130}$/);
    assertError(await sign('sign alice, replayed code', code1), 403, 'code_reused');
    for (const n of [1, 2]) {
      const wrong = wrongCode(alice);
      addSecret(`wrong code alice ${n}`, wrong);
      assertError(await sign(`sign alice, wrong code ${n}`, wrong), 403, 'code_invalid');
    }
    const code2 = currentCode(alice, 30);
    addSecret('code alice 2 (next step)', code2);
    assert.equal((await sign('sign alice, next step', code2)).status, 200);

    const compatSign = (what: string, code: string) =>
      call(what, plugin, {
        authorization: bearer(accessToken),
        contentType: 'text/plain',
        body: { operation: 'sign', walletName: 'bob@acme.com', keyIndex: 0, msgHash: hash, code },
      });
    const codeBob = currentCode(bob);
    addSecret('code bob', codeBob);
    const compatSigned = await compatSign('compat sign bob', codeBob);
    assert.equal(compatSigned.status, 200, compatSigned.text);
    assert.match(String(compatSigned.json.r), /^[0-9a-f]{64}$/);
    assertError(await compatSign('compat sign bob, replayed code', codeBob), 403, 'code_reused');
    const wrongBob = wrongCode(bob);
    addSecret('wrong code bob', wrongBob);
    assertError(await compatSign('compat sign bob, wrong code', wrongBob), 403, 'code_invalid');

    // ── wrong credentials ─────────────────────────────────────────────────────────────────
    const unknownKey = `ck1.${randomBytes(8).toString('hex')}.${randomBytes(32).toString('base64url')}`;
    addApiKey('unknown apiKey', unknownKey);
    const forgedKey = `ck1.${keyA.split('.')[1]}.${randomBytes(32).toString('base64url')}`;
    addApiKey('forged apiKey (right id)', forgedKey);
    const codeForWrongKey = currentCode(alice, 60);
    addSecret('code sent with a wrong key', codeForWrongKey);
    assertError(await sign('sign, unknown API key', codeForWrongKey, unknownKey), 401, 'unauthorized');
    assertError(await sign('sign, forged API key', codeForWrongKey, forgedKey), 401, 'unauthorized');
    assertError(
      await call('keys, API key as Basic', `${a}/v1/keys?walletName=alice%40acme.com&keyIndex=0`, { method: 'GET', authorization: `Basic ${keyA}` }),
      401,
      'unauthorized',
    );
    assertError(await call('compat session, unknown key', `${a}/sys/v1/session/auth`, { authorization: `Basic ${unknownKey}` }), 401, 'unauthorized');
    assertError(
      await call('compat plugin, API key as bearer', plugin, {
        authorization: bearer(keyCompat),
        body: { operation: 'getPubKey', walletName: 'bob@acme.com', keyIndex: 0 },
      }),
      401,
      'unauthorized',
    );

    // ── malformed requests that carry secrets ─────────────────────────────────────────────
    const codeMalformed = currentCode(alice, 60);
    addSecret('code in malformed JSON', codeMalformed);
    assertError(
      await call('sign, malformed JSON', `${a}/v1/sign/hash`, {
        authorization: bearer(keyA),
        body: `{"walletName":"alice@acme.com","keyIndex":0,"hash":"${hash}","code":"${codeMalformed}" x}`,
      }),
      400,
      'invalid_input',
    );
    assertError(
      await call('sign, truncated JSON', `${a}/v1/sign/hash`, { authorization: bearer(keyA), body: `{"code":"${codeMalformed}","apiKey":"${keyA}"` }),
      400,
      'invalid_input',
    );
    assertError(
      await call('sign, form body', `${a}/v1/sign/hash`, {
        authorization: bearer(keyA),
        contentType: 'application/x-www-form-urlencoded',
        body: `code=${codeMalformed}&passphrase=${encodeURIComponent(passphrase)}`,
      }),
      415,
      'unsupported_media_type',
    );
    // the native API takes JSON only: text is refused as a media type, not parsed as a string
    assertError(
      await call('sign, text body', `${a}/v1/sign/hash`, {
        authorization: bearer(keyA),
        contentType: 'text/plain',
        body: `code=${codeMalformed}&passphrase=${passphrase}`,
      }),
      415,
      'unsupported_media_type',
    );
    assertError(
      await call('sign, code of the wrong shape', `${a}/v1/sign/hash`, {
        authorization: bearer(keyA),
        body: { walletName: 'alice@acme.com', keyIndex: 0, hash, code: `${codeMalformed}0` },
      }),
      400,
      'invalid_input',
    );
    assertError(
      await call('compat, malformed JSON', plugin, { authorization: bearer(accessToken), body: `{"operation":"sign","code":"${codeMalformed}",` }),
      400,
      'invalid_input',
    );
    assertError(await call('compat session, malformed Basic', `${a}/sys/v1/session/auth`, { authorization: `Basic ${keyCompat}x` }), 401, 'unauthorized');

    // ── signer B: the imported test mnemonic ──────────────────────────────────────────────
    const b = serverB.url;
    const vector = custosVectors.vectors[0];
    assert.ok(vector !== undefined);
    const keyOfB = await call('keys on B', `${b}/v1/keys?walletName=${encodeURIComponent(vector.walletName)}&keyIndex=${vector.keyIndex}`, {
      method: 'GET',
      authorization: bearer(keyB),
    });
    assert.equal(keyOfB.json.address, vector.address);
    const enrolledB = await call('enrol carol on B', `${b}/v1/totp/enroll`, {
      authorization: bearer(keyB),
      body: { walletName: 'carol@acme.com' },
      handsOut: 'enrol carol',
    });
    assert.equal(enrolledB.status, 200, enrolledB.text);
    const carolUri = String(enrolledB.json.otpauthUri);
    const carol = parseOtpauthUri(carolUri).secret;
    addSecret('TOTP secret carol (base32)', new URL(carolUri).searchParams.get('secret') ?? '', { handedOutBy: 'enrol carol' });
    addBinarySecret('TOTP secret carol', carol, 'enrol carol');
    const codeCarol = currentCode(carol);
    addSecret('code carol', codeCarol);
    const signedB = await call('sign carol on B', `${b}/v1/sign/hash`, {
      authorization: bearer(keyB),
      body: { walletName: 'carol@acme.com', keyIndex: 3, hash, code: codeCarol },
    });
    assert.equal(signedB.status, 200, signedB.text);

    // the store while the servers run, then after: the database files (the WAL holds the recent
    // pages) or, in PostgreSQL, every cell of the schema (NUL-separated, read as database bytes)
    const dataFiles = async () => {
      const files: Array<{ path: string; bytes: Buffer }> = [];
      for (const [name, store] of [
        ['A', dataA],
        ['B', dataB],
      ] as const) {
        if ('dataDir' in store) files.push(...listFiles(store.dataDir).map((path) => ({ path, bytes: readFileSync(path) })));
        else files.push({ path: `rows of signer ${name}`, bytes: Buffer.from((await dumpStoreCells(store)).cells.join('\0'), 'latin1') });
      }
      return files;
    };
    const whileRunning = await dataFiles();
    if (testStoreKind() === 'sqlite') {
      assert.ok(
        whileRunning.some((f) => f.path.endsWith('custos.db-wal')),
        `a WAL file while serving: ${whileRunning.map((f) => basename(f.path)).join(', ')}`,
      );
    } else {
      // the rows are real: each signer's wallets are in its own schema (bob only on A, carol only on B)
      assert.deepEqual(
        whileRunning.map((f) => [f.bytes.includes('bob@acme.com'), f.bytes.includes('carol@acme.com')]),
        [
          [true, false],
          [false, true],
        ],
      );
    }
    assert.equal(await serverA.stop(), 0);
    assert.equal(await serverB.stop(), 0);
    const afterStop = await dataFiles();

    for (const store of [dataA, dataB]) {
      const audit = await runCli(['audit', 'verify', ...storeArgs(store)]);
      assert.equal(audit.code, 0, audit.stdout);
      assert.match(audit.stdout, /^audit chain OK: \d+ records/);
    }

    // ── the checks ────────────────────────────────────────────────────────────────────────
    const logs = [logA, logB].map((path) => ({ path, bytes: readFileSync(path) }));
    const logA0 = logs[0]?.bytes.toString('utf8') ?? '';
    // the logs are real: debug lines and every denial of this run were written, with the URLs
    for (const expected of [
      `signerId ${signerA}`,
      '"msg":"incoming request"',
      '"url":"/v1/sign/hash"',
      '/sys/v1/plugins/',
      'request denied: unseal_failed',
      'request denied: code_required',
      'request denied: code_reused',
      'request denied: code_invalid',
      'request denied: unauthorized',
      'request denied: invalid_input',
      'request denied: unsupported_media_type',
    ]) {
      assert.ok(logA0.includes(expected), `the log of A has ${expected}`);
    }
    assert.ok(logs[1]?.bytes.toString('utf8').includes('"url":"/v1/sign/hash"'), 'the log of B has the sign request');
    // the matcher works: an enrolment response holds its secret, found as text
    const aliceBase32 = secrets.find((s) => s.label === 'TOTP secret alice (base32)');
    assert.ok(aliceBase32 !== undefined && findSecret(Buffer.from(enrolled.text), aliceBase32, 'text'));
    const codeSecret = secrets.find((s) => s.label === 'code alice 1');
    assert.ok(codeSecret !== undefined);
    assert.equal(findSecret(Buffer.from(`{"code":"${code1}"}`), codeSecret, 'text'), true);
    assert.equal(findSecret(Buffer.from(`{"code":"${code1}"}`), codeSecret, 'database'), true);
    assert.equal(findSecret(Buffer.from(`"time":17${code1}12`), codeSecret, 'text'), false);

    const leaks: string[] = [];
    for (const file of logs) for (const s of secrets) if (findSecret(file.bytes, s, 'text')) leaks.push(`${s.label} in ${basename(file.path)}`);
    for (const [when, files] of [
      ['while serving', whileRunning],
      ['after stop', afterStop],
    ] as const) {
      for (const file of files)
        for (const s of secrets) if (findSecret(file.bytes, s, 'database')) leaks.push(`${s.label} in ${basename(file.path)} (${when})`);
    }
    // every database cell as a whole: a code stored in its own column or inside JSON text
    for (const [name, store] of [
      ['A', dataA],
      ['B', dataB],
    ] as const) {
      const { tables, cells } = await dumpStoreCells(store);
      assert.ok(tables.includes('audit_log') && tables.includes('totp_factors') && tables.includes('api_keys'), `tables: ${tables.join(', ')}`);
      for (const cell of cells) {
        for (const s of secrets) {
          const value = s.bytes.toString('latin1');
          const hit = s.code ? cell === value || new RegExp(`(?<![0-9A-Za-z])${value}(?![0-9A-Za-z])`).test(cell) : cell.includes(value);
          if (hit) leaks.push(`${s.label} in a cell of the store of signer ${name}`);
        }
      }
    }
    for (const response of responses) {
      for (const s of secrets) {
        if (s.handedOutBy !== undefined && s.handedOutBy === response.handsOut) continue;
        if (findSecret(Buffer.from(response.text), s, 'text')) leaks.push(`${s.label} in the response to ${response.what}`);
      }
    }
    assert.deepEqual(leaks, []);
    assert.ok(responses.length >= 30, `${responses.length} responses checked`);
  });
});
