import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  assertFailure,
  holdsSigner,
  recordTestSecret,
  runCli,
  runCliInProcess,
  runSql,
  secretInputs,
  serve,
  storeArgs,
  freshStoreLocation,
} from './testing/cliHarness.js';

// Issue 13 point 4 through the `custos` binary: admin keys (keygen), the admin set fixed at init
// (M ≤ N−1 checked), direct writes refused under the quorum, and a proposal made and approved with
// the admins' key files against a real `custos serve`, on the store of the pass.

const inputs = secretInputs('custos-cli-quorum');

async function keygen(): Promise<{ file: string; publicKey: string }> {
  const file = `${inputs.dir}/admin-${randomBytes(6).toString('hex')}.json`;
  const result = await runCliInProcess(['admin', 'keygen', '--out', file]);
  assert.equal(result.code, 0, result.stderr);
  const publicKey = result.stdout.trim().split('\n').at(-1) ?? '';
  assert.match(publicKey, /^[0-9a-f]{64}$/);
  recordTestSecret('admin private key', (JSON.parse(readFileSync(file, 'utf8')) as { privateKey: string }).privateKey);
  return { file, publicKey };
}

/** approve shows the proposal in full first (stdout), then the server's refusal is its one stderr line and exit 1. */
function assertRefused(result: { code: number | null; stdout: string; stderr: string }, code: string): void {
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stdout, /^proposal [0-9a-f]{32}\n/);
  assert.ok(result.stderr.startsWith(`custos: ${code}: `), result.stderr);
  assert.equal(result.stderr.split('\n').length, 2);
}

describe('custos admin', () => {
  it('keygen writes a 0600 key file, prints its public key, never overwrites', async () => {
    const { file, publicKey } = await keygen();
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal((JSON.parse(readFileSync(file, 'utf8')) as { publicKey: string }).publicKey, publicKey);
    assertFailure(await runCliInProcess(['admin', 'keygen', '--out', file]), 2, 'invalid_input', 'exists');
  });

  it(
    'init --admin --quorum: M ≥ N refused (nothing created); under the quorum apikey create, a second bootstrap and a rekey are refused quorum_required; propose and approve through serve',
    { timeout: 120_000 },
    async () => {
      const [a, b, c] = [await keygen(), await keygen(), await keygen()];
      const store = freshStoreLocation();
      const passphrase = `pp-${randomBytes(18).toString('base64url')}`;
      recordTestSecret('cli quorum passphrase', passphrase);
      const passphraseFile = inputs.write('passphrase', `${passphrase}\n`);
      const keyOut = `${inputs.dir}/operator-${randomBytes(4).toString('hex')}.key`;
      const init = [
        'init',
        ...storeArgs(store),
        '--passphrase-file',
        passphraseFile,
        '--scrypt-log-n',
        '10',
        '--mnemonic-file',
        inputs.write('mnemonic', `${'abandon '.repeat(11)}about\n`),
      ];
      const A = `${a.publicKey},alice@admins.example.com`;
      const B = `${b.publicKey},bob@admins.example.com`;
      const C = `${c.publicKey},carol@admins.example.com`;
      // every admin needs an address (docs/quorum.md "Every admin is told"): an --admin without one is refused, naming which
      assertFailure(await runCli([...init, '--admin', A, '--admin', b.publicKey, '--quorum', '1', '--api-key-out', keyOut]), 2, 'invalid_input', '--admin #2');
      assert.equal(await holdsSigner(store), false, 'a refused init creates nothing');
      assertFailure(await runCli([...init, '--admin', A, '--admin', B, '--quorum', '2', '--api-key-out', keyOut]), 1, 'quorum_threshold_invalid');
      assert.equal(await holdsSigner(store), false, 'a refused init creates nothing');
      assertFailure(await runCli([...init, '--admin', A, '--admin', B, '--quorum', '1']), 2, 'invalid_input', '--api-key-out');
      assertFailure(await runCli([...init, '--compat-raw-hash', 'allow']), 2, 'invalid_input', '--compat-raw-hash applies with --admin');
      assertFailure(
        await runCli([...init, '--admin', `${a.publicKey},not-an-address`, '--admin', B, '--admin', C, '--quorum', '2', '--api-key-out', keyOut]),
        2,
        'invalid_input',
        'address',
      );
      const ok = await runCli([...init, '--admin', A, '--admin', B, '--admin', C, '--quorum', '2', '--api-key-out', keyOut, '--compat-raw-hash', 'allow']);
      assert.equal(ok.code, 0, ok.stderr);
      // the quorum's first deployment settings are written with it (here: the compatibility API's raw hashes allowed)
      const [settings] = await runSql(store, "SELECT value FROM kernel_settings WHERE name = 'deployment'");
      assert.equal((JSON.parse(String(settings?.value)) as { compatRawHash: string }).compatRawHash, 'allow');
      assert.match(ok.stdout, /Admin quorum: 2 of 3 admins/);
      assert.equal(statSync(keyOut).mode & 0o777, 0o600);
      recordTestSecret('operator key', readFileSync(keyOut, 'utf8').trim());
      const [meta] = await runSql(store, 'SELECT sealed_root FROM meta WHERE id = 1');
      assert.equal((JSON.parse(String(meta?.sealed_root)) as { quorum?: boolean }).quorum, true, 'init with an admin set marks the sealed root');

      // direct writes of quorum-protected state
      assertFailure(await runCli(['apikey', 'create', ...storeArgs(store), '--name', 'x', '--scopes', 'sign']), 1, 'quorum_required', 'custos admin propose');
      assertFailure(
        await runCli(['admin', 'bootstrap', ...storeArgs(store), '--passphrase-file', passphraseFile, '--admin', A, '--admin', B, '--quorum', '1']),
        1,
        'quorum_required',
      );
      const newPassphraseFile = inputs.write('new-passphrase', `${passphrase}-new\n`);
      assertFailure(
        await runCli(['rekey', ...storeArgs(store), '--passphrase-file', passphraseFile, '--new-passphrase-file', newPassphraseFile, '--scrypt-log-n', '10']),
        1,
        'quorum_required',
      );

      // the server's flags for quorum-protected settings (issue 13, quorum wiring): the start stops
      assertFailure(await runCliInProcess(['serve', ...storeArgs(store), '--timelock-delay', '7200', '--port', '0']), 1, 'quorum_required', '--timelock-delay');
      // the policy defaults and the compatibility API's raw hashes are the deployment settings' too: a
      // --policy-file, or --compat-raw-hash allow (looser than the settings' default, policy), stops the start
      const looseFile = inputs.write('loose-policy', '{"rawHash":"allow"}');
      assertFailure(await runCliInProcess(['serve', ...storeArgs(store), '--policy-file', looseFile, '--port', '0']), 1, 'quorum_required', '--policy-file');
      assertFailure(
        await runCliInProcess(['serve', ...storeArgs(store), '--compat-raw-hash', 'allow', '--port', '0']),
        1,
        'quorum_required',
        '--compat-raw-hash allow',
      );
      // the looser modes one operator could switch on: refused under the quorum (deny / off are in force there)
      assertFailure(
        await runCliInProcess(['serve', ...storeArgs(store), '--unknown-wallets', 'allow', '--port', '0']),
        1,
        'quorum_required',
        '--unknown-wallets allow',
      );
      assertFailure(
        await runCliInProcess(['serve', ...storeArgs(store), '--backend-enrollment', 'on', '--port', '0']),
        1,
        'quorum_required',
        '--backend-enrollment on',
      );

      // the admins are told by e-mail: no mail transport, no start
      assertFailure(await runCliInProcess(['serve', ...storeArgs(store), '--port', '0']), 2, 'invalid_input', '--smtp-url and --mail-from are required');

      // a proposal made and approved with the admins' key files, against a real server
      // --compat-raw-hash policy (stricter than any setting) is accepted
      // (no SMTP server listens on this port of the helper's range: the admins' notices wait in the outbox)
      const served = await serve(store, [
        '--passphrase-file',
        passphraseFile,
        '--compat-raw-hash',
        'policy',
        '--smtp-url',
        'smtp://127.0.0.1:8619',
        '--mail-from',
        'custos@example.com',
      ]);
      try {
        const api = ['--url', served.url, '--api-key-file', keyOut];
        const tokenOut = `${inputs.dir}/backend-${randomBytes(4).toString('hex')}.key`;
        const proposed = await runCli([
          'admin',
          'propose',
          ...api,
          '--key',
          a.file,
          '--kind',
          'apikey.create',
          '--name',
          'backend',
          '--scopes',
          'sign',
          '--token-out',
          tokenOut,
        ]);
        assert.equal(proposed.code, 0, proposed.stderr);
        const id = /Proposed ([0-9a-f]{32})/.exec(proposed.stdout)?.[1] ?? assert.fail(proposed.stdout);
        const token = readFileSync(tokenOut, 'utf8').trim();
        recordTestSecret('proposed backend key', token);
        const wallets = async () => (await fetch(`${served.url}/v1/wallets?walletName=w`, { headers: { authorization: `Bearer ${token}` } })).status;
        assert.equal(await wallets(), 401, 'the key does not work before the quorum');
        // the proposer's own approval is refused; B's counts; B again is refused; C's applies
        // without --yes, approve asks for a typed "yes": at the end of input (no terminal) nothing is signed
        const unconfirmed = await runCli(['admin', 'approve', ...api, '--key', b.file, '--id', id]);
        assert.equal(unconfirmed.code, 2, unconfirmed.stderr);
        assert.match(unconfirmed.stdout, /^proposal [0-9a-f]{32}\n/);
        assert.match(unconfirmed.stdout, /Type "yes" to sign/);
        assert.match(unconfirmed.stderr, /not confirmed: nothing was signed/);
        assertRefused(await runCli(['admin', 'approve', ...api, '--key', a.file, '--id', id, '--yes']), 'proposal_self_approval');
        const first = await runCli(['admin', 'approve', ...api, '--key', b.file, '--id', id, '--yes']);
        assert.equal(first.code, 0, first.stderr);
        assert.match(first.stdout, /1 of 2 approvals/);
        assert.match(first.stdout, /create API key [0-9a-f]{16} "backend" for tenant default with scopes sign/);
        assertRefused(await runCli(['admin', 'approve', ...api, '--key', b.file, '--id', id, '--yes']), 'proposal_already_approved');
        assert.equal(await wallets(), 401, 'M−1 approvals apply nothing');
        const second = await runCli(['admin', 'approve', ...api, '--key', c.file, '--id', id, '--yes']);
        assert.equal(second.code, 0, second.stderr);
        assert.match(second.stdout, /Approved and applied/);
        // what every admin was told, newest first, in full: the proposal, then its application
        const notices = await runCli(['admin', 'notices', ...api, '--limit', '2']);
        assert.equal(notices.code, 0, notices.stderr);
        const heads = [...notices.stdout.matchAll(/^#(\d+) {2}\S+ {2}(\S+) {2}\((\d+) told\)$/gm)].map((m) => [m[2], Number(m[3])]);
        assert.deepEqual(heads, [
          ['proposal.applied', 3],
          ['proposal', 3],
        ]);
        assert.match(notices.stdout, new RegExp(`Proposal ${id} \\(apikey.create\\) was approved by 2 admins and applied`));
        const json = await runCli(['admin', 'notices', ...api, '--json']);
        assert.equal(json.code, 0, json.stderr);
        const parsed = JSON.parse(json.stdout) as { notices: Array<{ event: string; text: string }>; untoldAdmins: string[] };
        assert.deepEqual(parsed.untoldAdmins, []);
        assert.equal(parsed.notices[1]?.event, 'proposal');
        assert.ok(parsed.notices[1]?.text.includes(`custos admin show --id ${id}`));
        assertFailure(await runCli(['admin', 'notices', ...api, '--limit', '0']), 2, 'invalid_input', '--limit');
        assert.equal(await wallets(), 403, 'the key works (it lacks the derive scope: forbidden_scope, not unauthorized)');
        // started without the flags under the quorum: --unknown-wallets deny is in force (a wallet with no row never signs)
        const unknown = await fetch(`${served.url}/v1/sign/hash`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ walletName: 'nobody', keyIndex: 0, hash: `0x${'42'.repeat(32)}` }),
        });
        const refusal = (await unknown.json()) as { error?: { code?: string } };
        assert.equal(refusal.error?.code, 'wallet_not_found', JSON.stringify(refusal));
        const list = await runCli(['admin', 'list', ...api]);
        assert.match(list.stdout, /Admin quorum: 2 of 3/);
        assert.match(list.stdout, new RegExp(`${a.publicKey}  <alice@admins.example.com>`));
        assert.match(list.stdout, new RegExp(`${id}  applied  2/2  apikey.create`));
        const show = await runCli(['admin', 'show', ...api, '--id', id]);
        assert.match(show.stdout, /state\s+applied/);
        // a key row inserted by hand is refused by the running server
        await runSql(
          store,
          "INSERT INTO api_keys (id, name, tenant, scopes, secret_hash, created_at, revoked_at) SELECT 'ffffffffffffffff', 'copy', tenant, scopes, secret_hash, created_at, NULL FROM api_keys WHERE name = 'backend'",
        );
        const copied = `ck1.ffffffffffffffff.${token.split('.')[2]}`;
        assert.equal((await fetch(`${served.url}/v1/wallets?walletName=w`, { headers: { authorization: `Bearer ${copied}` } })).status, 401);
        // actions that only take power away stay single-admin: revoking the key needs no proposal
        const revoked = await runCli(['apikey', 'revoke', ...storeArgs(store), '--id', token.split('.')[1] ?? '']);
        assert.equal(revoked.code, 0, revoked.stderr);
        assert.equal(await wallets(), 401, 'the revoked key is refused');
      } finally {
        await served.stop();
      }
    },
  );

  it(
    'admin bootstrap on an existing signer: needs its credentials, MACs the keys present (which keep working), then apikey create is refused',
    { timeout: 60_000 },
    async () => {
      const [a, b] = [await keygen(), await keygen()];
      const store = freshStoreLocation();
      const passphrase = `pp-${randomBytes(18).toString('base64url')}`;
      recordTestSecret('cli bootstrap passphrase', passphrase);
      const passphraseFile = inputs.write('passphrase', `${passphrase}\n`);
      const init = await runCli([
        'init',
        ...storeArgs(store),
        '--passphrase-file',
        passphraseFile,
        '--scrypt-log-n',
        '10',
        '--mnemonic-file',
        inputs.write('mnemonic', `${'abandon '.repeat(11)}about\n`),
      ]);
      assert.equal(init.code, 0, init.stderr);
      const created = await runCli(['apikey', 'create', ...storeArgs(store), '--name', 'ops', '--scopes', 'admin', '--tenant', 'system']);
      assert.equal(created.code, 0, created.stderr);
      recordTestSecret('cli bootstrap ops key', created.stdout.trim().split('\n').at(-1) ?? '');
      const args = [
        'admin',
        'bootstrap',
        ...storeArgs(store),
        '--admin',
        `${a.publicKey},alice@admins.example.com`,
        '--admin',
        `${b.publicKey},bob@admins.example.com`,
        '--quorum',
        '1',
      ];
      // an admin without an address is refused before anything is opened
      assertFailure(
        await runCli([
          'admin',
          'bootstrap',
          ...storeArgs(store),
          '--passphrase-file',
          passphraseFile,
          '--admin',
          `${a.publicKey},alice@admins.example.com`,
          '--admin',
          b.publicKey,
          '--quorum',
          '1',
        ]),
        2,
        'invalid_input',
        'every admin needs an e-mail address',
      );
      assertFailure(await runCli(args), 2, 'invalid_input', '--passphrase-file');
      assertFailure(await runCli([...args, '--passphrase-file', inputs.write('wrong', 'wrong\n')]), 1, 'unseal_failed');
      // the defaults the signer served with become the quorum's first settings (else the bootstrap would drop their limits)
      const policyFile = inputs.write('served-policy', '{"native":{"1":{"perTx":"1000"}}}');
      assertFailure(await runCli([...args, '--passphrase-file', passphraseFile, '--compat-raw-hash', 'maybe']), 2, 'invalid_input', '--compat-raw-hash');
      const done = await runCli([...args, '--passphrase-file', passphraseFile, '--policy-file', policyFile]);
      assert.equal(done.code, 0, done.stderr);
      assert.equal(done.stdout, "Bootstrapped the admin quorum: 1 of 2 admins; MAC'd 1 API keys.\n");
      const [settings] = await runSql(store, "SELECT value, version FROM kernel_settings WHERE name = 'deployment'");
      assert.deepEqual(JSON.parse(String(settings?.value)), {
        compatRawHash: 'policy',
        policyDefaults: { native: { '1': { perTx: '1000' } } },
        timelockDelaySeconds: 48 * 3600,
        webhookUrl: null,
      });
      const [row] = await runSql(store, "SELECT mac FROM api_keys WHERE name = 'ops'");
      assert.match(String(row?.mac), /^[0-9a-f]{64}$/);
      assertFailure(await runCli(['apikey', 'create', ...storeArgs(store), '--name', 'x', '--scopes', 'derive']), 1, 'quorum_required', 'custos admin propose');
      assertFailure(await runCli([...args, '--passphrase-file', passphraseFile]), 1, 'quorum_required');
    },
  );

  it(
    'passkey admins: passkey-link prints a single-use link on the public URL (only its hash stored), candidates lists none yet, bootstrap refuses an unknown pk: id',
    { timeout: 60_000 },
    async () => {
      const store = freshStoreLocation();
      const passphrase = `pp-${randomBytes(18).toString('base64url')}`;
      recordTestSecret('cli passkey passphrase', passphrase);
      const passphraseFile = inputs.write('passphrase', `${passphrase}\n`);
      const init = await runCli([
        'init',
        ...storeArgs(store),
        '--passphrase-file',
        passphraseFile,
        '--scrypt-log-n',
        '10',
        '--mnemonic-file',
        inputs.write('mnemonic', `${'abandon '.repeat(11)}about\n`),
      ]);
      assert.equal(init.code, 0, init.stderr);
      const ops = await runCli(['apikey', 'create', ...storeArgs(store), '--name', 'ops', '--scopes', 'admin', '--tenant', 'system']);
      assert.equal(ops.code, 0, ops.stderr);
      const opsToken = ops.stdout.trim().split('\n').at(-1) ?? '';
      recordTestSecret('cli passkey ops key', opsToken);
      const signing = await runCli(['apikey', 'create', ...storeArgs(store), '--name', 'backend', '--scopes', 'sign']);
      const signingToken = signing.stdout.trim().split('\n').at(-1) ?? '';
      recordTestSecret('cli passkey backend key', signingToken);
      // (the public URL names the host passkeys are for; this port in the helper's range is never listened on)
      const served = await serve(store, ['--passphrase-file', passphraseFile, '--public-url', 'http://localhost:9150']);
      try {
        const api = ['--url', served.url, '--api-key-file', inputs.write('ops.key', `${opsToken}\n`)];
        const none = await runCli(['admin', 'candidates', ...api]);
        assert.equal(none.code, 0, none.stderr);
        assert.equal(none.stdout, 'No admin passkey is registered.\n');
        const made = await runCli(['admin', 'passkey-link', ...api, '--name', 'Pat', '--ttl-seconds', '600']);
        assert.equal(made.code, 0, made.stderr);
        const capability = /^http:\/\/localhost:9150\/admin\/enroll\/([A-Za-z0-9_-]{43})$/m.exec(made.stdout)?.[1];
        assert.ok(capability, made.stdout);
        recordTestSecret('cli admin enrolment capability', capability);
        assert.match(made.stdout, /a candidate: it becomes an admin once bootstrap or a quorum\.set proposal names it/);
        const rows = await runSql(store, 'SELECT token_hash, name, expires_at - created_at AS ttl FROM admin_enrollment_links');
        assert.equal(rows.length, 1);
        assert.notEqual(rows[0]?.token_hash, capability);
        assert.equal(rows[0]?.name, 'Pat');
        assert.equal(Number(rows[0]?.ttl), 600_000);
        // a key without the admin scope makes no link
        assertFailure(
          await runCli(['admin', 'passkey-link', '--url', served.url, '--api-key-file', inputs.write('backend.key', `${signingToken}\n`)]),
          1,
          'forbidden_scope',
        );
      } finally {
        await served.stop();
      }
      // a pk: id that names no registered passkey: refused, nothing written
      const unknown = `pk:${'ab'.repeat(32)}`;
      const a = await keygen();
      const b = await keygen();
      assertFailure(
        await runCli([
          'admin',
          'bootstrap',
          ...storeArgs(store),
          '--passphrase-file',
          passphraseFile,
          '--admin',
          `${a.publicKey},alice@admins.example.com`,
          '--admin',
          `${b.publicKey},bob@admins.example.com`,
          '--admin',
          `${unknown},pat@example.com`,
          '--quorum',
          '1',
        ]),
        2,
        'invalid_input',
        'admins[2]',
      );
      assert.deepEqual(await runSql(store, "SELECT name FROM kernel_settings WHERE name = 'quorum'"), []);
    },
  );
});
