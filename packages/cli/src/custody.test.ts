import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseShareFile, REKEY_STEPS, type RekeyStep, rekeyStepsFor } from '@custos/kernel';
import { resealWithUnsignedShares } from '@custos/kernel/testing/unsignedShares';
import { openStore, type StoreLocation } from '@custos/server';
import {
  assertFailure,
  freshStoreLocation,
  recordTestSecret,
  runCli,
  runCliInProcess,
  type Served,
  secretInputs,
  serve,
  storeArgs,
  testStoreKind,
} from './testing/cliHarness.js';

// Unsealers, unseal and rekey through the real `custos` binary on the store of the pass. Share files
// and passphrases are secret inputs: they live in a directory removed at the end, and every share
// is recorded so that the scan of the artifacts (logs, databases) looks for it.

const inputs = secretInputs('custos-custody-inputs');
const API_KEY = /^ck1\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;
const KIND = testStoreKind();
const SQLITE_ONLY = KIND === 'sqlite' ? {} : { skip: 'about the files of the data directory' };

function newPassphrase(label: string): string {
  const passphrase = `pp-${randomBytes(18).toString('base64url')}`;
  recordTestSecret(label, passphrase);
  return inputs.write('passphrase', `${passphrase}\n`);
}

let dirs = 0;
function newShareDir(): string {
  dirs += 1;
  return join(inputs.dir, `shares-${dirs}`);
}

/** The share files of a directory, in index order; every share is recorded as a secret. */
function shareFiles(dir: string, n: number): string[] {
  assert.deepEqual(readdirSync(dir).sort(), Array.from({ length: n }, (_, i) => `share-${i + 1}.json`).sort());
  const files = Array.from({ length: n }, (_, i) => join(dir, `share-${i + 1}.json`));
  for (const f of files) recordTestSecret('share', (JSON.parse(readFileSync(f, 'utf8')) as { share: string }).share);
  return files;
}

/** custos …args in the test process (runCliInProcess): exit 0, nothing on stderr; returns stdout. The fault-injection runs spawn. */
async function ok(args: string[]): Promise<string> {
  const result = await runCliInProcess(args);
  assert.equal(result.code, 0, `custos ${args[0]} failed: ${result.stderr}`);
  assert.equal(result.stderr, '');
  return result.stdout;
}

async function initShamir(store: StoreLocation, threshold: number, n: number): Promise<{ dir: string; files: string[]; stdout: string }> {
  const dir = newShareDir();
  const stdout = await ok(['init', ...storeArgs(store), '--unsealer', 'shamir', '--shares', String(n), '--threshold', String(threshold), '--share-dir', dir]);
  return { dir, files: shareFiles(dir, n), stdout };
}

async function adminKey(store: StoreLocation): Promise<string> {
  const token =
    (await ok(['apikey', 'create', ...storeArgs(store), '--name', 'ops', '--tenant', 'system', '--scopes', 'derive,admin'])).trim().split(/\s+/).at(-1) ?? '';
  assert.match(token, API_KEY);
  recordTestSecret('custody apiKey', token);
  return token;
}

async function http(
  url: string,
  { method = 'GET', token, json }: { method?: string; token?: string; json?: unknown } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (json !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(url, { method, headers, ...(json === undefined ? {} : { body: JSON.stringify(json) }) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** The addresses of a few keys, through the running signer. */
async function addresses(served: Served, token: string): Promise<string[]> {
  const out: string[] = [];
  for (const [walletName, keyIndex] of [
    ['alice@acme.com', 0],
    ['bob', 7],
  ] as const) {
    const res = await http(`${served.url}/v1/keys?walletName=${encodeURIComponent(walletName)}&keyIndex=${keyIndex}`, { token });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    out.push(String(res.body.address));
  }
  return out;
}

/** Starts `custos serve` with the credentials and returns the addresses (it must unseal), then stops. */
async function addressesWith(store: StoreLocation, token: string, credentials: string[]): Promise<string[]> {
  const served = await serve(store, credentials);
  try {
    const status = await http(`${served.url}/v1/sys/status`);
    assert.equal(status.body.sealed, false);
    return await addresses(served, token);
  } finally {
    assert.equal(await served.stop(), 0);
  }
}

/** `custos serve` with these credentials refuses to start with that code (in its log). */
async function refusedWith(store: StoreLocation, credentials: string[], code: string): Promise<void> {
  await assert.rejects(serve(store, credentials), (error: Error) => error.message.includes(`custos: ${code}: `));
}

const shareArgs = (files: string[]) => files.flatMap((f) => ['--share-file', f]);

describe('custos init --unsealer shamir', () => {
  it('writes N share files (0600, in a 0700 directory), prints none, refuses a directory that holds shares', { timeout: 60_000 }, async () => {
    const store = freshStoreLocation();
    const { dir, files, stdout } = await initShamir(store, 2, 3);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const f of files) assert.equal(statSync(f).mode & 0o777, 0o600);
    const parsed = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>);
    assert.deepEqual(
      parsed.map((p) => [p.index, p.threshold, p.shares]),
      [
        [1, 2, 3],
        [2, 2, 3],
        [3, 2, 3],
      ],
    );
    assert.equal(new Set(parsed.map((p) => p.shareSetId)).size, 1);
    for (const p of parsed) assert.ok(!stdout.includes(String(p.share)), 'no share on stdout');
    assert.match(stdout, /Wrote 3 share files .* \(2 of them unseal\)/);
    // one line per file: index, threshold, set and a checksum prefix the operator can compare
    for (const [i, p] of parsed.entries()) {
      assert.ok(
        stdout.includes(`${files[i]}  share ${i + 1} of 3, 2 needed, set ${String(p.shareSetId)}, checksum ${String(p.checksum).slice(0, 16)}…\n`),
        stdout,
      );
    }
    // a second init into the same share directory is refused before anything is created
    const other = freshStoreLocation();
    assertFailure(
      await runCliInProcess(['init', ...storeArgs(other), '--unsealer', 'shamir', '--shares', '3', '--threshold', '2', '--share-dir', dir]),
      2,
      'invalid_input',
      'share-',
    );
    // bad parameters, named
    assertFailure(
      await runCliInProcess(['init', ...storeArgs(other), '--unsealer', 'shamir', '--shares', '3', '--threshold', '4', '--share-dir', newShareDir()]),
      2,
      'invalid_input',
      '--threshold',
    );
    assertFailure(
      await runCliInProcess(['init', ...storeArgs(other), '--unsealer', 'shamir', '--shares', '1', '--threshold', '1', '--share-dir', newShareDir()]),
      2,
      'invalid_input',
      '--shares',
    );
    assertFailure(
      await runCliInProcess(['init', ...storeArgs(other), '--unsealer', 'shamir', '--shares', '3', '--threshold', '2']),
      2,
      'invalid_input',
      '--share-dir',
    );
    assertFailure(await runCliInProcess(['init', ...storeArgs(other), '--unsealer', 'hsm']), 2, 'invalid_input', '--unsealer');
    assertFailure(await runCliInProcess(['init', ...storeArgs(other), '--unsealer', 'pkcs11']), 2, 'invalid_input', '--pkcs11-module');
  });
});

describe('custos unseal', () => {
  it('submits shares one at a time to a running signer (progress, reset), and a passphrase', { timeout: 90_000 }, async () => {
    const store = freshStoreLocation();
    const { files } = await initShamir(store, 2, 3);
    const token = await adminKey(store);
    const served = await serve(store);
    try {
      assert.deepEqual((await http(`${served.url}/v1/sys/status`)).body.unsealer, {
        type: 'shamir',
        threshold: 2,
        shares: 3,
        sharesSigned: true,
        progress: { submitted: 0, threshold: 2 },
      });
      assert.equal(await ok(['unseal', '--url', served.url, '--share-file', files[1] ?? '']), 'Share accepted (1 of 2): still sealed\n');
      assertFailure(await runCli(['unseal', '--url', served.url, '--share-file', files[1] ?? '']), 1, 'share_duplicate');
      // a reset needs one share file of the current set
      assertFailure(await runCli(['unseal', '--url', served.url, '--reset']), 2, 'invalid_input', '--share-file');
      assert.equal(await ok(['unseal', '--url', served.url, '--share-file', files[0] ?? '', '--reset']), 'Discarded 1 submitted share(s)\n');
      assert.equal(await ok(['unseal', '--url', served.url, '--share-file', files[0] ?? '']), 'Share accepted (1 of 2): still sealed\n');
      const passFile = newPassphrase('wrong kind');
      assertFailure(await runCli(['unseal', '--url', served.url, '--passphrase-file', passFile]), 1, 'unsealer_mismatch');
      assert.equal(await ok(['unseal', '--url', served.url, '--share-file', files[2] ?? '']), 'Share accepted (2 of 2): unsealed\n');
      assert.equal((await addresses(served, token)).length, 2);
      // seal on demand with the admin key, then unseal again with two shares in one command
      assert.equal((await http(`${served.url}/v1/sys/seal`, { method: 'POST', token })).status, 200);
      assert.equal(
        await ok(['unseal', '--url', served.url, ...shareArgs([files[2] ?? '', files[1] ?? ''])]),
        'Share accepted (1 of 2): still sealed\nShare accepted (2 of 2): unsealed\n',
      );
      assertFailure(await runCli(['unseal', '--url', served.url, '--share-file', files[0] ?? '']), 1, 'already_unsealed');
    } finally {
      assert.equal(await served.stop(), 0);
    }
    // usage errors
    assertFailure(await runCliInProcess(['unseal', '--share-file', files[0] ?? '']), 2, 'invalid_input', '--url');
    assertFailure(await runCliInProcess(['unseal', '--url', 'http://127.0.0.1:1']), 2, 'invalid_input');
    assertFailure(await runCliInProcess(['unseal', '--url', 'http://127.0.0.1:1', '--share-file', files[0] ?? '']), 1, 'signer_unreachable', 'nothing answers');
    const typo = inputs.write('typo.json', readFileSync(files[0] ?? '', 'utf8').replace('"index": 1', '"index": 2'));
    const served2 = await serve(store);
    try {
      assertFailure(await runCli(['unseal', '--url', served2.url, '--share-file', typo]), 1, 'share_invalid', 'checksum');
    } finally {
      await served2.stop();
    }
  });

  it('custos serve --share-file ×M starts unsealed; fewer than M or a foreign share refuse to start', { timeout: 90_000 }, async () => {
    const store = freshStoreLocation();
    const { files } = await initShamir(store, 2, 3);
    const token = await adminKey(store);
    const a = await addressesWith(store, token, shareArgs([files[0] ?? '', files[2] ?? '']));
    const b = await addressesWith(store, token, shareArgs([files[2] ?? '', files[1] ?? '']));
    assert.deepEqual(a, b);
    await refusedWith(store, shareArgs([files[0] ?? '']), 'unseal_failed');
    const other = await initShamir(freshStoreLocation(), 2, 3);
    await refusedWith(store, shareArgs([files[0] ?? '', other.files[1] ?? '']), 'share_foreign');
  });
});

describe('a share set made before shares were signed', () => {
  it('still unseals (sharesSigned false) until custos rekey issues a signed set', { timeout: 120_000 }, async () => {
    const store = freshStoreLocation();
    const { files } = await initShamir(store, 2, 3);
    const token = await adminKey(store);
    const before = await addressesWith(store, token, shareArgs(files.slice(0, 2)));
    // the store's envelope and the files as an earlier Custos wrote them (no share key, version 1)
    const opened = await openStore(store);
    let legacy: string[];
    try {
      const current = files.slice(0, 2).map((f) => parseShareFile(readFileSync(f, 'utf8')));
      const written = await resealWithUnsignedShares(opened, { type: 'shamir', shares: current }, { threshold: 2, shares: 3 });
      legacy = written.map((f) => {
        recordTestSecret('unsigned share', (JSON.parse(f.text) as { share: string }).share);
        return inputs.write(`legacy-${f.name}`, f.text);
      });
    } finally {
      await opened.close();
    }
    const served = await serve(store, shareArgs(legacy.slice(1, 3)));
    try {
      assert.deepEqual((await http(`${served.url}/v1/sys/status`)).body.unsealer, { type: 'shamir', threshold: 2, shares: 3, sharesSigned: false });
      assert.deepEqual(await addresses(served, token), before);
    } finally {
      assert.equal(await served.stop(), 0);
    }
    const dir = newShareDir();
    await ok([
      'rekey',
      ...storeArgs(store),
      ...shareArgs(legacy.slice(0, 2)),
      '--new-unsealer',
      'shamir',
      '--shares',
      '3',
      '--threshold',
      '2',
      '--share-dir',
      dir,
    ]);
    const signed = shareFiles(dir, 3);
    assert.equal((JSON.parse(readFileSync(signed[0] ?? '', 'utf8')) as { version: number }).version, 2);
    const again = await serve(store, shareArgs(signed.slice(0, 2)));
    try {
      assert.deepEqual((await http(`${again.url}/v1/sys/status`)).body.unsealer, { type: 'shamir', threshold: 2, shares: 3, sharesSigned: true });
      assert.deepEqual(await addresses(again, token), before);
    } finally {
      assert.equal(await again.stop(), 0);
    }
    await refusedWith(store, shareArgs(legacy.slice(0, 2)), 'share_foreign');
  });
});

describe('custos rekey', () => {
  it('passphrase → Shamir → passphrase: addresses unchanged, old credentials stop working', { timeout: 120_000 }, async () => {
    const store = freshStoreLocation();
    const first = newPassphrase('rekey first');
    await ok(['init', ...storeArgs(store), '--passphrase-file', first, '--scrypt-log-n', '10']);
    const token = await adminKey(store);
    const before = await addressesWith(store, token, ['--passphrase-file', first]);

    const dir = newShareDir();
    const out = await ok([
      'rekey',
      ...storeArgs(store),
      '--passphrase-file',
      first,
      '--new-unsealer',
      'shamir',
      '--shares',
      '3',
      '--threshold',
      '2',
      '--share-dir',
      dir,
    ]);
    assert.match(out, /passphrase → shamir \(2 of 3 shares/);
    const files = shareFiles(dir, 3);
    await refusedWith(store, ['--passphrase-file', first], 'unsealer_mismatch');
    assert.deepEqual(await addressesWith(store, token, shareArgs([files[1] ?? '', files[2] ?? ''])), before);

    const second = newPassphrase('rekey second');
    assert.match(
      await ok(['rekey', ...storeArgs(store), ...shareArgs([files[0] ?? '', files[1] ?? '']), '--new-passphrase-file', second, '--scrypt-log-n', '10']),
      /shamir → passphrase/,
    );
    await refusedWith(store, shareArgs([files[0] ?? '', files[1] ?? '']), 'unsealer_mismatch');
    await refusedWith(store, ['--passphrase-file', first], 'unseal_failed');
    assert.deepEqual(await addressesWith(store, token, ['--passphrase-file', second]), before);

    // wrong current credentials, a share directory that holds shares: refused, nothing changed
    assertFailure(await runCli(['rekey', ...storeArgs(store), '--passphrase-file', first, '--new-passphrase-file', second]), 1, 'unseal_failed');
    assertFailure(
      await runCli([
        'rekey',
        ...storeArgs(store),
        '--passphrase-file',
        second,
        '--new-unsealer',
        'shamir',
        '--shares',
        '2',
        '--threshold',
        '2',
        '--share-dir',
        dir,
      ]),
      2,
      'invalid_input',
      'share-1.json',
    );
    assertFailure(await runCli(['rekey', ...storeArgs(store), '--new-passphrase-file', second]), 2, 'invalid_input', 'current credentials');
    assert.deepEqual(await addressesWith(store, token, ['--passphrase-file', second]), before);
  });

  for (const step of rekeyStepsFor('passphrase', 'shamir')) {
    it(
      `killed at step ${step} (CUSTOS_FAULT_INJECT=rekey:${step}): the old or the new credentials unseal, addresses unchanged`,
      { timeout: 120_000 },
      async () => {
        const store = freshStoreLocation();
        const old = newPassphrase(`fault ${step}`);
        await ok(['init', ...storeArgs(store), '--passphrase-file', old, '--scrypt-log-n', '10']);
        const token = await adminKey(store);
        const before = await addressesWith(store, token, ['--passphrase-file', old]);
        const dir = newShareDir();
        const saved = process.env.CUSTOS_FAULT_INJECT;
        process.env.CUSTOS_FAULT_INJECT = `rekey:${step}`;
        let killed: Awaited<ReturnType<typeof runCli>>;
        try {
          killed = await runCli([
            'rekey',
            ...storeArgs(store),
            '--passphrase-file',
            old,
            '--new-unsealer',
            'shamir',
            '--shares',
            '3',
            '--threshold',
            '2',
            '--share-dir',
            dir,
          ]);
        } finally {
          if (saved === undefined) delete process.env.CUSTOS_FAULT_INJECT;
          else process.env.CUSTOS_FAULT_INJECT = saved;
        }
        assert.equal(killed.signal, 'SIGKILL', `killed at ${step}: ${killed.stderr}`);
        const switched: RekeyStep[] = ['swapped'];
        const written: RekeyStep[] = ['shares-written', 'swapped'];
        if (written.includes(step)) {
          const files = shareFiles(dir, 3);
          if (switched.includes(step)) {
            // the store switched: the new shares unseal, the old passphrase does not
            assert.deepEqual(await addressesWith(store, token, shareArgs([files[0] ?? '', files[2] ?? ''])), before);
            await refusedWith(store, ['--passphrase-file', old], 'unsealer_mismatch');
            return;
          }
          // the shares are on disk but the store did not switch: they do not unseal yet
          await refusedWith(store, shareArgs([files[0] ?? '', files[2] ?? '']), 'unsealer_mismatch');
        } else {
          assert.deepEqual(readdirSync(inputs.dir).includes(dir.split('/').at(-1) ?? '') ? readdirSync(dir) : [], [], 'no share written before the step');
        }
        // the old passphrase still unseals; the rekey can be run again (into a fresh directory)
        assert.deepEqual(await addressesWith(store, token, ['--passphrase-file', old]), before);
        const again = newShareDir();
        await ok([
          'rekey',
          ...storeArgs(store),
          '--passphrase-file',
          old,
          '--new-unsealer',
          'shamir',
          '--shares',
          '3',
          '--threshold',
          '2',
          '--share-dir',
          again,
        ]);
        const files = shareFiles(again, 3);
        assert.deepEqual(await addressesWith(store, token, shareArgs([files[1] ?? '', files[0] ?? ''])), before);
      },
    );
  }

  it('an unknown fault-injection step is refused, nothing changed', async () => {
    const saved = process.env.CUSTOS_FAULT_INJECT;
    process.env.CUSTOS_FAULT_INJECT = 'rekey:nowhere';
    try {
      assertFailure(
        await runCliInProcess([
          'rekey',
          '--data-dir',
          join(inputs.dir, 'none'),
          '--passphrase-file',
          newPassphrase('x'),
          '--new-passphrase-file',
          newPassphrase('y'),
        ]),
        2,
        'invalid_input',
        'CUSTOS_FAULT_INJECT',
      );
    } finally {
      if (saved === undefined) delete process.env.CUSTOS_FAULT_INJECT;
      else process.env.CUSTOS_FAULT_INJECT = saved;
    }
  });

  it('share files are written 0600 by rekey too (SQLite pass)', { ...SQLITE_ONLY, timeout: 60_000 }, async () => {
    const store = freshStoreLocation();
    const pass = newPassphrase('rekey modes');
    await ok(['init', ...storeArgs(store), '--passphrase-file', pass, '--scrypt-log-n', '10']);
    const dir = newShareDir();
    await ok(['rekey', ...storeArgs(store), '--passphrase-file', pass, '--new-unsealer', 'shamir', '--shares', '2', '--threshold', '2', '--share-dir', dir]);
    for (const f of shareFiles(dir, 2)) assert.equal(statSync(f).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
  });
});

describe('--help of the new commands', () => {
  for (const [command, mentions] of [
    ['unseal', ['--url', '--admin-socket', '--share-file', '--passphrase-file', '--pin-file', '--reset']],
    ['seal', ['--admin-socket', '0600']],
    [
      'rekey',
      [
        '--new-passphrase-file',
        '--new-unsealer',
        '--share-dir',
        '--pkcs11-module',
        '--pkcs11-pin-file',
        '--pkcs11-token',
        '--pkcs11-key-label',
        '--new-pkcs11-pin-file',
        'CUSTOS_FAULT_INJECT',
        ...REKEY_STEPS,
      ],
    ],
    ['init', ['--unsealer', '--shares', '--threshold', '--share-dir', '--pkcs11-module', '--pkcs11-token', '--pkcs11-pin-file', '--pkcs11-key-label']],
    ['serve', ['--share-file', '--pkcs11-module', '--pkcs11-pin-file', '--admin-socket', '--trust-proxy']],
  ] as const) {
    it(`custos ${command} --help`, async () => {
      const result = await runCliInProcess([command, '--help']);
      assert.equal(result.code, 0);
      assert.equal(result.stderr, '');
      for (const m of mentions) assert.ok(result.stdout.includes(m), `${command} --help mentions ${m}`);
    });
  }
  it('custos --help lists unseal and rekey', async () => {
    const result = await runCliInProcess(['--help']);
    assert.match(result.stdout, /\n {2}unseal /);
    assert.match(result.stdout, /\n {2}rekey /);
  });
});
