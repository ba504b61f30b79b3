import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { type App, describeUnsealer, Kernel, openPkcs11Token, type RekeyStep, rekeyStepsFor, type UnsealCredential, type UnsealerInfo } from '@custos/kernel';
import type { StoreLocation } from '@custos/server';
import { totpFromUri } from '@custos/server/testing';
import { freshTokenLabel, softHsmForTests } from '@custos/kernel/testing/softHsm';
import pkcs11js from 'pkcs11js';
import {
  assertFailure,
  freshStoreLocation,
  recordTestSecret,
  runCli,
  type Served,
  secretInputs,
  serve,
  storeArgs,
  testStoreKind,
  withStore,
  runCliOk,
} from './testing/cliHarness.js';

// The PKCS#11 unsealer end to end: the real `custos` binary, a real SoftHSM2 token initialised here
// with softhsm2-util, pkcs11js. Under CI=true a missing SoftHSM2 fails the file (softHsmForTests).
// The PINs are secret inputs: recorded, so that the scan of the artifacts (logs, databases) looks
// for them; the wrong PIN too.

const { hsm, skip } = softHsmForTests();
const inputs = secretInputs('custos-hsm-inputs');
const MODULE = hsm?.modulePath ?? '';
// SoftHSM2 lists the tokens of its directory at C_Initialize: every token of the file is made first
const TOKEN = freshTokenLabel('hsm-a');
const TOKEN_B = freshTokenLabel('hsm-b');
const SQLITE_ONLY = testStoreKind() === 'sqlite' ? {} : { skip: 'store-independent: run in the SQLite pass' };
const API_KEY = /^ck1\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;

function secret(label: string, prefix: string): string {
  const value = `${prefix}-${randomBytes(12).toString('base64url')}`;
  recordTestSecret(label, value);
  return value;
}
const PIN = secret('pkcs11 user PIN', 'pin');
const PIN_B = secret('pkcs11 user PIN (token B)', 'pinb');
const WRONG_PIN = secret('pkcs11 wrong PIN', 'nope');
const pinFile = inputs.write('pin', `${PIN}\n`);
const pinFileB = inputs.write('pin-b', `${PIN_B}\n`);
const wrongPinFile = inputs.write('wrong-pin', `${WRONG_PIN}\n`);
const pkcs11 = (pin = PIN): UnsealCredential => ({ type: 'pkcs11', modulePath: MODULE, pin: new TextEncoder().encode(pin) });

function newPassphrase(label: string): string {
  return inputs.write('passphrase', `${secret(label, 'pp')}\n`);
}

const ok = runCliOk;

const initPkcs11 = (token = TOKEN, pin = pinFile) => ['--unsealer', 'pkcs11', '--pkcs11-module', MODULE, '--pkcs11-token', token, '--pkcs11-pin-file', pin];

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

async function apiKey(store: StoreLocation): Promise<string> {
  const token =
    (await ok(['apikey', 'create', ...storeArgs(store), '--name', 'ops', '--tenant', 'system', '--scopes', 'register,derive,sign,admin']))
      .trim()
      .split(/\s+/)
      .at(-1) ?? '';
  assert.match(token, API_KEY);
  recordTestSecret('hsm apiKey', token);
  return token;
}

const WALLETS = [
  ['alice@acme.com', 0],
  ['bob', 7],
] as const;

/** The addresses of a few keys through a running signer's GET /v1/keys. */
async function addresses(served: Served, token: string): Promise<string[]> {
  const out: string[] = [];
  for (const [walletName, keyIndex] of WALLETS) {
    const res = await http(`${served.url}/v1/keys?walletName=${encodeURIComponent(walletName)}&keyIndex=${keyIndex}`, { token });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    out.push(String(res.body.address));
  }
  return out;
}

const DERIVER: App = { id: 'hsm-test', name: 'hsm-test', tenant: 'system', scopes: ['derive'] };

/**
 * The addresses the store's signer derives once unsealed with `credential`, by the kernel in this
 * process (the code behind GET /v1/keys, without starting a server: the crash matrix runs it often).
 */
async function addressesWith(store: StoreLocation, credential: UnsealCredential): Promise<string[]> {
  return withStore(store, async (opened) => {
    const kernel = await Kernel.open({ store: opened });
    try {
      await kernel.unsealWith(credential);
      const out: string[] = [];
      for (const [walletName, keyIndex] of WALLETS) out.push((await kernel.getPublicKey(DERIVER, { walletName, keyIndex })).address);
      return out;
    } finally {
      kernel.seal();
    }
  });
}

/** The unsealer of the envelope the store holds now. */
async function unsealerOf(store: StoreLocation): Promise<UnsealerInfo> {
  return withStore(store, async (opened) => describeUnsealer((await opened.getMeta())?.sealedRoot));
}

async function pkcs11KeyOf(store: StoreLocation): Promise<{ tokenLabel: string; keyLabel: string; keyId: string }> {
  const info = await unsealerOf(store);
  assert.equal(info.type, 'pkcs11');
  if (info.type !== 'pkcs11') throw new Error('unreachable');
  return info;
}

/** The CKA_IDs (hex) of the AES keys labelled `keyLabel` on a token, looked at from this process. */
function keyIdsOnToken(tokenLabel: string, keyLabel: string, pin = PIN): string[] {
  const token = openPkcs11Token({ modulePath: MODULE, tokenLabel, pin: new TextEncoder().encode(pin) });
  try {
    const { module, session } = token.use();
    module.C_FindObjectsInit(session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_LABEL, value: keyLabel },
    ]);
    const handles = module.C_FindObjects(session, 64);
    module.C_FindObjectsFinal(session);
    return handles.map((h) => (module.C_GetAttributeValue(session, h, [{ type: pkcs11js.CKA_ID }])[0]?.value ?? Buffer.alloc(0)).toString('hex')).sort();
  } finally {
    token.close();
  }
}

/** The pkcs11js return code name fn fails with. */
function returnCodeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof Error);
    return error.message.replace(/:\d+$/, '');
  }
  assert.fail('expected the token to refuse');
}

async function withFault<T>(step: RekeyStep, work: () => Promise<T>): Promise<T> {
  const saved = process.env.CUSTOS_FAULT_INJECT;
  process.env.CUSTOS_FAULT_INJECT = `rekey:${step}`;
  try {
    return await work();
  } finally {
    if (saved === undefined) delete process.env.CUSTOS_FAULT_INJECT;
    else process.env.CUSTOS_FAULT_INJECT = saved;
  }
}

describe('the PKCS#11 unsealer end to end (SoftHSM2, custos binary)', { skip }, () => {
  before(() => {
    hsm?.initToken(TOKEN, { soPin: secret('so pin', 'so'), pin: PIN });
    hsm?.initToken(TOKEN_B, { soPin: secret('so pin b', 'so'), pin: PIN_B });
  });

  it(
    'init --unsealer pkcs11 → serve → unseal --pin-file → sign with a TOTP code → seal → unseal {pin}; wrong PIN refused; the KEK cannot be extracted',
    { timeout: 90_000 },
    async () => {
      const store = freshStoreLocation();
      const out = await ok(['init', ...storeArgs(store), ...initPkcs11()]);
      assert.ok(!out.includes(PIN));
      const key = await pkcs11KeyOf(store);
      assert.deepEqual({ tokenLabel: key.tokenLabel, keyLabel: key.keyLabel }, { tokenLabel: TOKEN, keyLabel: 'custos-kek' });
      assert.ok(out.includes(`id ${key.keyId}`), out);

      // The key init created is a proper KEK in the token, and it does not come out.
      const token = openPkcs11Token({ modulePath: MODULE, tokenLabel: TOKEN, pin: new TextEncoder().encode(PIN) });
      try {
        const { module, session } = token.use();
        module.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_ID, value: Buffer.from(key.keyId, 'hex') }]);
        const [kek, ...others] = module.C_FindObjects(session, 4);
        module.C_FindObjectsFinal(session);
        assert.ok(kek !== undefined && others.length === 0, 'exactly one object has the envelope key id');
        const flags = module.C_GetAttributeValue(
          session,
          kek,
          [pkcs11js.CKA_TOKEN, pkcs11js.CKA_SENSITIVE, pkcs11js.CKA_EXTRACTABLE, pkcs11js.CKA_NEVER_EXTRACTABLE].map((type) => ({ type })),
        );
        assert.deepEqual(
          flags.map((f) => f.value[0] === 1),
          [true, true, false, true],
        );
        assert.equal(
          returnCodeOf(() => module.C_GetAttributeValue(session, kek, [{ type: pkcs11js.CKA_VALUE }])),
          'CKR_ATTRIBUTE_SENSITIVE',
        );
        const wrappingKey = module.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
          { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
          { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
          { type: pkcs11js.CKA_TOKEN, value: false },
          { type: pkcs11js.CKA_WRAP, value: true },
        ]);
        assert.equal(
          returnCodeOf(() => module.C_WrapKey(session, { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD }, wrappingKey, kek, Buffer.alloc(128))),
          'CKR_KEY_UNEXTRACTABLE',
        );
        assert.equal(
          returnCodeOf(() => module.C_SetAttributeValue(session, kek, [{ type: pkcs11js.CKA_EXTRACTABLE, value: true }])),
          'CKR_ATTRIBUTE_READ_ONLY',
        );
      } finally {
        token.close();
      }

      const apiToken = await apiKey(store);
      const socketDir = mkdtempSync(join(tmpdir(), 'custos-hsm-sock-'));
      const socket = join(socketDir, 'admin.sock');
      // the test signs a raw hash for a TOTP-enrolled wallet: its deployment allows it (the kernel's default refuses)
      const served = await serve(store, ['--pkcs11-module', MODULE, '--admin-socket', socket, '--policy-file', inputs.write('policy', '{"rawHash":"allow"}')]);
      try {
        const status = await http(`${served.url}/v1/sys/status`);
        assert.equal(status.body.sealed, true);
        assert.deepEqual(status.body.unsealer, { type: 'pkcs11', tokenLabel: TOKEN, keyLabel: 'custos-kek', keyId: key.keyId });
        // A wrong PIN: unseal_failed naming CKR_PIN_INCORRECT (CLI and API), still sealed.
        assertFailure(await runCli(['unseal', '--url', served.url, '--pin-file', wrongPinFile]), 1, 'unseal_failed', 'CKR_PIN_INCORRECT');
        // The next attempt at once is refused before C_Login: by the unseal back-off (1 s after one
        // failure) or, once that is over (a slow machine), by the token's flags (below).
        const throttled = await http(`${served.url}/v1/sys/unseal`, { method: 'POST', json: { pin: WRONG_PIN } });
        assert.ok([429, 423].includes(throttled.status), JSON.stringify(throttled.body));
        assert.equal((throttled.body.error as { code: string }).code, throttled.status === 429 ? 'unseal_throttled' : 'hsm_pin_protect');
        await new Promise((resolve) => setTimeout(resolve, 1_050));
        // The token counted the wrong PIN (SoftHSM2 sets CKF_USER_PIN_COUNT_LOW): a PIN from the
        // network is no longer tried, wrong or right, so that nobody can spend the token's last tries.
        const wrong = await http(`${served.url}/v1/sys/unseal`, { method: 'POST', json: { pin: WRONG_PIN } });
        assert.equal(wrong.status, 423);
        assert.equal((wrong.body.error as { code: string }).code, 'hsm_pin_protect');
        assert.deepEqual((wrong.body.error as { details: unknown }).details, { field: 'pin', tokenLabel: TOKEN, pkcs11Flags: ['CKF_USER_PIN_COUNT_LOW'] });
        assertFailure(await runCli(['unseal', '--url', served.url, '--pin-file', pinFile]), 1, 'hsm_pin_protect', '--admin-socket');
        // Other kinds of credential, an over-long PIN: refused before the token is asked.
        assert.equal(
          ((await http(`${served.url}/v1/sys/unseal`, { method: 'POST', json: { passphrase: 'x' } })).body.error as { code: string }).code,
          'unsealer_mismatch',
        );
        const long = await http(`${served.url}/v1/sys/unseal`, { method: 'POST', json: { pin: 'p'.repeat(257) } });
        assert.equal(long.status, 400);
        assert.equal((long.body.error as { details: { field: string } }).details.field, 'pin');
        assert.equal((await http(`${served.url}/v1/sys/status`)).body.sealed, true);

        // the operator's channel tries the PIN (and the successful login clears the token's count)
        assert.equal(await ok(['unseal', '--admin-socket', socket, '--pin-file', pinFile]), 'Unsealed\n');
        const before = await addresses(served, apiToken);
        // Sign with the wallet owner's TOTP code.
        const enrolled = await http(`${served.url}/v1/totp/enroll`, { method: 'POST', token: apiToken, json: { walletName: 'alice@acme.com' } });
        assert.equal(enrolled.status, 200, JSON.stringify(enrolled.body));
        const hash = `0x${randomBytes(32).toString('hex')}`;
        const signBody = { walletName: 'alice@acme.com', keyIndex: 0, hash };
        assert.equal(
          ((await http(`${served.url}/v1/sign/hash`, { method: 'POST', token: apiToken, json: signBody })).body.error as { code: string }).code,
          'code_required',
        );
        const code = totpFromUri(String(enrolled.body.otpauthUri), Date.now());
        const signed = await http(`${served.url}/v1/sign/hash`, { method: 'POST', token: apiToken, json: { ...signBody, code } });
        assert.equal(signed.status, 200, JSON.stringify(signed.body));
        assert.equal(signed.body.address, before[0]);

        // Seal on demand, then unseal over the API with the PIN.
        assert.equal((await http(`${served.url}/v1/sys/seal`, { method: 'POST', token: apiToken })).body.sealed, true);
        assert.equal((await http(`${served.url}/v1/keys?walletName=bob&keyIndex=7`, { token: apiToken })).status, 503);
        const unsealed = await http(`${served.url}/v1/sys/unseal`, { method: 'POST', json: { pin: PIN } });
        assert.equal(unsealed.status, 200, JSON.stringify(unsealed.body));
        assert.equal(unsealed.body.sealed, false);
        assert.deepEqual(await addresses(served, apiToken), before);
      } finally {
        assert.equal(await served.stop(), 0);
      }
      rmSync(socketDir, { recursive: true, force: true });
      const log = readFileSync(served.logFile, 'utf8');
      for (const pin of [PIN, WRONG_PIN]) assert.ok(!log.includes(pin), 'no PIN in the server log');
      assert.match(log, /"errorCode":"unseal_failed"/, 'the refused unseal is logged (its code, never the PIN)');

      // Unattended start: --pkcs11-pin-file; a wrong one refuses to start.
      const unattended = await serve(store, ['--pkcs11-module', MODULE, '--pkcs11-pin-file', pinFile]);
      try {
        assert.equal((await http(`${unattended.url}/v1/sys/status`)).body.sealed, false);
      } finally {
        assert.equal(await unattended.stop(), 0);
      }
      await assert.rejects(serve(store, ['--pkcs11-module', MODULE, '--pkcs11-pin-file', wrongPinFile]), (error: Error) =>
        error.message.includes('custos: unseal_failed: PKCS#11: C_Login failed with CKR_PIN_INCORRECT'),
      );
    },
  );

  // About the token and the options, not the store: run once, in the SQLite pass.
  it('token missing → hsm_unavailable; no module on the server → unsealer_unavailable; bad options named', { ...SQLITE_ONLY, timeout: 90_000 }, async () => {
    // init on a token that does not exist: refused, nothing stored
    const none = freshStoreLocation();
    assertFailure(await runCli(['init', ...storeArgs(none), ...initPkcs11('no-such-token')]), 1, 'hsm_unavailable', 'no-such-token');
    assertFailure(
      await runCli(['init', ...storeArgs(none), '--unsealer', 'pkcs11', '--pkcs11-module', MODULE, '--pkcs11-pin-file', pinFile]),
      2,
      'invalid_input',
      '--pkcs11-token',
    );
    assertFailure(
      await runCli(['init', ...storeArgs(none), '--unsealer', 'pkcs11', '--pkcs11-token', TOKEN, '--pkcs11-pin-file', pinFile]),
      2,
      'invalid_input',
      '--pkcs11-module',
    );
    assertFailure(await runCli(['init', ...storeArgs(none), '--passphrase-file', pinFile, '--pkcs11-module', MODULE]), 2, 'invalid_input', '--pkcs11-module');
    assertFailure(await runCli(['init', ...storeArgs(none), ...initPkcs11(TOKEN, wrongPinFile)]), 1, 'unseal_failed', 'CKR_PIN_INCORRECT');
    assertFailure(await runCli(['init', ...storeArgs(none), ...initPkcs11(TOKEN), '--pkcs11-key-label', ' padded']), 2, 'invalid_input', 'keyLabel');

    const store = freshStoreLocation();
    await ok(['init', ...storeArgs(store), ...initPkcs11(TOKEN_B, pinFileB), '--pkcs11-key-label', 'custos-missing']);
    // The token's directory is not where SoftHSM2 looks: the token is missing.
    const emptyDir = join(inputs.dir, 'empty-tokens');
    mkdirSync(emptyDir, { recursive: true });
    const emptyConf = inputs.write('softhsm2-empty.conf', `directories.tokendir = ${emptyDir}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    const saved = process.env.SOFTHSM2_CONF;
    process.env.SOFTHSM2_CONF = emptyConf;
    try {
      await assert.rejects(serve(store, ['--pkcs11-module', MODULE, '--pkcs11-pin-file', pinFileB]), (error: Error) =>
        error.message.includes(`custos: hsm_unavailable: PKCS#11: no slot holds a token labelled "${TOKEN_B}"`),
      );
    } finally {
      if (saved === undefined) delete process.env.SOFTHSM2_CONF;
      else process.env.SOFTHSM2_CONF = saved;
    }
    // A module that does not load
    await assert.rejects(serve(store, ['--pkcs11-module', join(inputs.dir, 'nothing.so'), '--pkcs11-pin-file', pinFileB]), (error: Error) =>
      error.message.includes('custos: hsm_unavailable: PKCS#11: loading the module'),
    );
    // A server started without --pkcs11-module cannot take a PIN
    const served = await serve(store);
    try {
      const res = await http(`${served.url}/v1/sys/unseal`, { method: 'POST', json: { pin: PIN_B } });
      assert.equal(res.status, 503);
      assert.equal((res.body.error as { code: string }).code, 'unsealer_unavailable');
      assertFailure(await runCli(['unseal', '--url', served.url, '--passphrase-file', pinFileB]), 1, 'unsealer_mismatch');
    } finally {
      assert.equal(await served.stop(), 0);
    }
    // with the token where it belongs, the PIN opens it
    assert.equal((await addressesWith(store, pkcs11(PIN_B))).length, WALLETS.length);
    // an init on a token that already holds a key of the label (another signer's, or an orphan)
    // generates its own key beside it: the envelope pins its key by id
    const labelled = keyIdsOnToken(TOKEN_B, 'custos-missing', PIN_B);
    const second = freshStoreLocation();
    await ok(['init', ...storeArgs(second), ...initPkcs11(TOKEN_B, pinFileB), '--pkcs11-key-label', 'custos-missing']);
    const secondKey = await pkcs11KeyOf(second);
    assert.deepEqual(keyIdsOnToken(TOKEN_B, 'custos-missing', PIN_B), [...labelled, secondKey.keyId].sort());
    assert.notDeepEqual(await addressesWith(second, pkcs11(PIN_B)), await addressesWith(store, pkcs11(PIN_B)));
  });

  it(
    'rekey passphrase → pkcs11 → pkcs11 (rotation: old key destroyed) → shamir → pkcs11 (another token) → passphrase: /v1/keys unchanged',
    { timeout: 120_000 },
    async () => {
      const store = freshStoreLocation();
      const first = newPassphrase('rekey first');
      await ok(['init', ...storeArgs(store), '--passphrase-file', first, '--scrypt-log-n', '10']);
      const apiToken = await apiKey(store);
      const served = await serve(store, ['--passphrase-file', first]);
      let before: string[];
      try {
        before = await addresses(served, apiToken);
      } finally {
        assert.equal(await served.stop(), 0);
      }
      const label = 'custos-matrix';

      // passphrase → pkcs11
      const toHsm = await ok([
        'rekey',
        ...storeArgs(store),
        '--passphrase-file',
        first,
        '--new-unsealer',
        'pkcs11',
        ...initPkcs11().slice(2),
        '--pkcs11-key-label',
        label,
      ]);
      const k1 = await pkcs11KeyOf(store);
      assert.match(toHsm, new RegExp(`passphrase → pkcs11 \\(token "${TOKEN}", key "${label}" id ${k1.keyId}\\)`));
      assert.deepEqual(await addressesWith(store, pkcs11()), before);
      await assert.rejects(addressesWith(store, { type: 'passphrase', passphrase: readFileSync(first).subarray(0, -1) }), { code: 'unsealer_mismatch' });

      // pkcs11 → pkcs11: a new key; the old one is destroyed after the switch
      const rotated = await ok([
        'rekey',
        ...storeArgs(store),
        '--pkcs11-module',
        MODULE,
        '--pkcs11-pin-file',
        pinFile,
        '--new-unsealer',
        'pkcs11',
        '--pkcs11-token',
        TOKEN,
        '--pkcs11-key-label',
        label,
      ]);
      const k2 = await pkcs11KeyOf(store);
      assert.notEqual(k2.keyId, k1.keyId);
      assert.match(rotated, new RegExp(`Destroyed the old key \\(token "${TOKEN}", id ${k1.keyId}\\)`));
      assert.deepEqual(keyIdsOnToken(TOKEN, label), [k2.keyId], 'only the new key is left on the token');
      assert.deepEqual(await addressesWith(store, pkcs11()), before);

      // pkcs11 → shamir: the HSM key goes too
      const dir = join(inputs.dir, 'matrix-shares');
      assert.match(
        await ok([
          'rekey',
          ...storeArgs(store),
          '--pkcs11-module',
          MODULE,
          '--pkcs11-pin-file',
          pinFile,
          '--new-unsealer',
          'shamir',
          '--shares',
          '2',
          '--threshold',
          '2',
          '--share-dir',
          dir,
        ]),
        /pkcs11 → shamir/,
      );
      assert.deepEqual(keyIdsOnToken(TOKEN, label), []);
      const shares = [1, 2].map((i) => join(dir, `share-${i}.json`));
      for (const f of shares) recordTestSecret('share', (JSON.parse(readFileSync(f, 'utf8')) as { share: string }).share);
      await assert.rejects(addressesWith(store, pkcs11()), { code: 'unsealer_mismatch' });

      // shamir → pkcs11 on the other token (its own PIN)
      await ok([
        'rekey',
        ...storeArgs(store),
        ...shares.flatMap((f) => ['--share-file', f]),
        '--new-unsealer',
        'pkcs11',
        '--pkcs11-module',
        MODULE,
        '--pkcs11-token',
        TOKEN_B,
        '--new-pkcs11-pin-file',
        pinFileB,
      ]);
      assert.equal((await pkcs11KeyOf(store)).tokenLabel, TOKEN_B);
      await assert.rejects(addressesWith(store, pkcs11(PIN)), { code: 'unseal_failed' });
      assert.deepEqual(await addressesWith(store, pkcs11(PIN_B)), before);

      // pkcs11 → passphrase, then the signer serves the same /v1/keys
      const last = newPassphrase('rekey last');
      assert.match(
        await ok([
          'rekey',
          ...storeArgs(store),
          '--pkcs11-module',
          MODULE,
          '--pkcs11-pin-file',
          pinFileB,
          '--new-passphrase-file',
          last,
          '--scrypt-log-n',
          '10',
        ]),
        /pkcs11 → passphrase/,
      );
      // PKCS#11 credentials for what is now a passphrase signer: refused, nothing changed
      assertFailure(
        await runCli(['rekey', ...storeArgs(store), '--pkcs11-module', MODULE, '--pkcs11-pin-file', pinFileB, '--new-passphrase-file', first]),
        1,
        'unsealer_mismatch',
      );
      const after = await serve(store, ['--passphrase-file', last]);
      try {
        assert.deepEqual(await addresses(after, apiToken), before);
      } finally {
        assert.equal(await after.stop(), 0);
      }
    },
  );

  it(
    'a SIGKILL at each step of a pkcs11 rotation, and of passphrase → pkcs11 and pkcs11 → passphrase, leaves the old or the new envelope valid; orphan keys do not trip a later rekey',
    { timeout: 120_000 },
    async () => {
      const store = freshStoreLocation();
      const pass = newPassphrase('fault passphrase');
      await ok(['init', ...storeArgs(store), '--passphrase-file', pass, '--scrypt-log-n', '10']);
      const passphrase = (): UnsealCredential => ({ type: 'passphrase', passphrase: new Uint8Array(readFileSync(pass).subarray(0, -1)) });
      const before = await addressesWith(store, passphrase());
      const label = 'custos-fault';
      const toPkcs11 = [
        '--new-unsealer',
        'pkcs11',
        '--pkcs11-module',
        MODULE,
        '--pkcs11-token',
        TOKEN,
        '--pkcs11-key-label',
        label,
        '--new-pkcs11-pin-file',
        pinFile,
      ];
      const fromPkcs11 = ['--pkcs11-module', MODULE, '--pkcs11-pin-file', pinFile];
      const killed = async (step: RekeyStep, args: string[]) => {
        const result = await withFault(step, () => runCli(['rekey', ...storeArgs(store), ...args], { timeoutMs: 60_000 }));
        assert.equal(result.signal, 'SIGKILL', `killed at ${step}: ${result.stderr}`);
      };

      // passphrase → pkcs11, killed once the new key exists: the passphrase still opens; the key is an orphan
      assert.deepEqual(rekeyStepsFor('passphrase', 'pkcs11'), ['opened', 'key-generated', 'sealed', 'swapped']);
      await killed('key-generated', ['--passphrase-file', pass, ...toPkcs11]);
      assert.equal((await unsealerOf(store)).type, 'passphrase');
      assert.equal(keyIdsOnToken(TOKEN, label).length, 1, 'the orphan key is on the token');
      assert.deepEqual(await addressesWith(store, passphrase()), before);
      // the rekey again: a second key of the same label, not tripped over the orphan
      await ok(['rekey', ...storeArgs(store), '--passphrase-file', pass, ...toPkcs11]);
      let current = await pkcs11KeyOf(store);
      assert.equal(keyIdsOnToken(TOKEN, label).length, 2);
      assert.deepEqual(await addressesWith(store, pkcs11()), before);

      // pkcs11 → pkcs11 (rotation), killed at each of its steps
      const steps = rekeyStepsFor('pkcs11', 'pkcs11');
      assert.deepEqual(steps, ['opened', 'key-generated', 'sealed', 'swapped', 'old-key-destroyed']);
      for (const step of steps) {
        const old = current;
        await killed(step, [...fromPkcs11, ...toPkcs11]);
        const now = await pkcs11KeyOf(store);
        const ids = keyIdsOnToken(TOKEN, label);
        if (step === 'swapped' || step === 'old-key-destroyed') {
          assert.notEqual(now.keyId, old.keyId, `${step}: the store switched to the new key`);
          // destroyed only after the switch: at `swapped` the old key is still there (an orphan)
          assert.equal(ids.includes(old.keyId), step === 'swapped', `${step}: old key present`);
        } else {
          assert.equal(now.keyId, old.keyId, `${step}: the store still holds the old envelope`);
          assert.ok(ids.includes(old.keyId), `${step}: the old key is still there`);
        }
        assert.ok(ids.includes(now.keyId));
        // whichever envelope is valid opens, to the same addresses
        assert.deepEqual(await addressesWith(store, pkcs11()), before, `after a kill at ${step}`);
        current = now;
      }
      // a rotation after all this runs through, orphans and all
      await ok(['rekey', ...storeArgs(store), ...fromPkcs11, ...toPkcs11]);
      current = await pkcs11KeyOf(store);
      assert.deepEqual(await addressesWith(store, pkcs11()), before);

      // pkcs11 → passphrase, killed after the switch: the passphrase opens; the HSM key is an orphan
      assert.deepEqual(rekeyStepsFor('pkcs11', 'passphrase'), ['opened', 'sealed', 'swapped', 'old-key-destroyed']);
      const next = newPassphrase('fault next');
      await killed('swapped', [...fromPkcs11, '--new-passphrase-file', next, '--scrypt-log-n', '10']);
      assert.equal((await unsealerOf(store)).type, 'passphrase');
      assert.ok(keyIdsOnToken(TOKEN, label).includes(current.keyId));
      assert.deepEqual(await addressesWith(store, { type: 'passphrase', passphrase: new Uint8Array(readFileSync(next).subarray(0, -1)) }), before);
    },
  );
});
