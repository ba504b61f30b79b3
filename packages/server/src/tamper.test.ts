import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { compareFactorRows, createApiKey, readAuditPages } from '@custos/kernel';
import { RAW_HASHES_ALLOWED, createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Issue 9, point 6: someone with write access to the database (SQLite file or PostgreSQL) edits the
// rows the kernel decides on. Every edit must fail closed: record_unreadable, never "not enrolled",
// never a replay. (The runner runs this file on both stores.)

const T0 = Date.UTC(2026, 10, 22, 12, 0, 15);
const HASH = `0x${'aa'.repeat(32)}`;

function enroll(signer: TestSigner, walletName: string, key = signer.apiKey) {
  return signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(key), payload: { walletName } });
}

async function enrolled(signer: TestSigner, walletName: string): Promise<string> {
  const res = await enroll(signer, walletName);
  assert.equal(res.statusCode, 200, res.body);
  return res.json().otpauthUri as string;
}

function sign(signer: TestSigner, body: Record<string, unknown>, key = signer.apiKey) {
  return signer.app.inject({ method: 'POST', url: '/v1/sign/hash', headers: signer.auth(key), payload: { keyIndex: 0, hash: HASH, ...body } });
}

function readWallet(signer: TestSigner, walletName: string, key = signer.apiKey) {
  return signer.app.inject({ method: 'GET', url: `/v1/wallets?walletName=${encodeURIComponent(walletName)}`, headers: signer.auth(key) });
}

function assertRefused(res: Awaited<ReturnType<typeof sign>>, status: number, code: string): void {
  assert.equal(res.statusCode, status, res.body);
  assert.equal(res.json().error.code, code);
  assert.equal(res.json().r, undefined, 'no signature');
}

const unreadable = (res: Awaited<ReturnType<typeof sign>>) => assertRefused(res, 503, 'record_unreadable');

describe('database tampering fails closed (wallet and factor rows carry MACs under a barrier key)', () => {
  let signer: TestSigner;
  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0 });
  });
  after(async () => {
    await signer.close();
  });

  it('deleting the factor row: record_unreadable with or without a code (not a code-less signature)', async () => {
    signer.clock.now = T0;
    const uri = await enrolled(signer, 'del-factor');
    await signer.sql('DELETE FROM totp_factors WHERE wallet_name = $1', 'del-factor');
    unreadable(await sign(signer, { walletName: 'del-factor' }));
    unreadable(await sign(signer, { walletName: 'del-factor', code: totpFromUri(uri, T0) }));
    unreadable(await readWallet(signer, 'del-factor'));
    // nor can the backend re-enrol its own factor on it
    unreadable(await enroll(signer, 'del-factor'));
  });

  it('resetting last_accepted_step (or the whole state) after a signature: record_unreadable, the used code is not accepted again', async () => {
    signer.clock.now = T0;
    const uri = await enrolled(signer, 'reset-step');
    const code = totpFromUri(uri, T0);
    assert.equal((await sign(signer, { walletName: 'reset-step', code })).statusCode, 200);
    assert.equal((await sign(signer, { walletName: 'reset-step', code })).json().error.code, 'code_reused');
    await signer.sql('UPDATE totp_factors SET last_accepted_step = NULL WHERE wallet_name = $1', 'reset-step');
    unreadable(await sign(signer, { walletName: 'reset-step', code }));
    await signer.sql('UPDATE totp_factors SET last_accepted_step = last_accepted_step WHERE wallet_name = $1', 'reset-step');
    // putting a lower step, or clearing a lock-out, is the same: the MAC covers the whole state
    await signer.sql('UPDATE totp_factors SET last_accepted_step = 1 WHERE wallet_name = $1', 'reset-step');
    unreadable(await sign(signer, { walletName: 'reset-step', code }));
  });

  it('clearing the failure counter of a locked factor: record_unreadable (no fresh guesses)', async () => {
    signer.clock.now = T0;
    const uri = await enrolled(signer, 'reset-failures');
    const wrong = String((Number(totpFromUri(uri, T0)) + 1) % 1_000_000).padStart(6, '0');
    for (let i = 0; i < 5; i += 1) assert.equal((await sign(signer, { walletName: 'reset-failures', code: wrong })).json().error.code, 'code_invalid');
    assert.equal((await sign(signer, { walletName: 'reset-failures', code: wrong })).json().error.code, 'factor_throttled');
    await signer.sql('UPDATE totp_factors SET failures = 0, locked_until_ms = NULL WHERE wallet_name = $1', 'reset-failures');
    unreadable(await sign(signer, { walletName: 'reset-failures', code: wrong }));
  });

  it('an extra factor row on a wallet without one (copied from another wallet, MAC and all): record_unreadable', async () => {
    signer.clock.now = T0;
    const attackerUri = await enrolled(signer, 'extra-source');
    assert.equal((await sign(signer, { walletName: 'extra-plain' })).statusCode, 200); // a wallet with no factor
    await signer.sql(
      'INSERT INTO totp_factors (wallet_name, secret_envelope, last_accepted_step, failures, locked_until_ms, created_at, mac) SELECT $1, secret_envelope, last_accepted_step, failures, locked_until_ms, created_at, mac FROM totp_factors WHERE wallet_name = $2',
      'extra-plain',
      'extra-source',
    );
    unreadable(await sign(signer, { walletName: 'extra-plain' }));
    unreadable(await sign(signer, { walletName: 'extra-plain', code: totpFromUri(attackerUri, T0) }));
    unreadable(await readWallet(signer, 'extra-plain'));
  });

  it('changing a wallet’s tenant: its owner gets wallet_not_found, the new tenant record_unreadable; nobody signs', async () => {
    signer.clock.now = T0;
    const { token: keyB } = await createApiKey(signer.store, { name: 'backend b', tenant: 'tenant-b', scopes: ['register', 'derive', 'sign'] });
    recordTestSecret('apiKey', keyB);
    await enrolled(signer, 'moved');
    assert.equal((await sign(signer, { walletName: 'moved-plain' })).statusCode, 200);
    for (const walletName of ['moved', 'moved-plain']) {
      await signer.sql("UPDATE wallets SET tenant = 'tenant-b' WHERE name = $1", walletName);
      unreadable(await sign(signer, { walletName }, keyB));
      unreadable(await readWallet(signer, walletName, keyB));
      assertRefused(await sign(signer, { walletName }), 404, 'wallet_not_found');
    }
  });

  it('a wallet row without its MAC (or with another wallet’s MAC): record_unreadable', async () => {
    signer.clock.now = T0;
    assert.equal((await sign(signer, { walletName: 'mac-null' })).statusCode, 200);
    assert.equal((await sign(signer, { walletName: 'mac-other' })).statusCode, 200);
    await signer.sql('UPDATE wallets SET mac = NULL WHERE name = $1', 'mac-null');
    unreadable(await sign(signer, { walletName: 'mac-null' }));
    await signer.sql('UPDATE wallets SET mac = (SELECT mac FROM wallets WHERE name = $1) WHERE name = $2', 'del-factor', 'mac-other');
    unreadable(await sign(signer, { walletName: 'mac-other' }));
  });

  it('deleting the wallet row with its factor row, unknown-wallets allow (default): the name signs without a code (documented); audit verify --factors reports it', async () => {
    signer.clock.now = T0;
    await enrolled(signer, 'gone-allow');
    await signer.sql('DELETE FROM totp_factors WHERE wallet_name = $1', 'gone-allow');
    await signer.sql('DELETE FROM wallets WHERE name = $1', 'gone-allow');
    // what the MACs cannot see online: no row at all is a wallet never named
    assert.equal((await sign(signer, { walletName: 'gone-allow' })).statusCode, 200);
    const { discrepancies } = await compareFactorRows(readAuditPages(signer.store), (name) => signer.store.readWalletRows(name));
    const found = discrepancies.find((d) => d.walletName === 'gone-allow');
    // the signature re-created the wallet row (no factor): the log's enrolment has no factor row
    assert.deepEqual(found, { walletName: 'gone-allow', problem: 'no_factor_row' });
  });
});

describe('the upgrade MAC pass cannot be re-armed by a database writer', () => {
  it('a signer made with MACs logs store.mac_records at init (after sys.init); setting records_mac_pending after tampering is refused (denied record), the rows stay record_unreadable', async () => {
    const signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0 });
    try {
      const [init, first] = await signer.sql('SELECT action, decision, detail FROM audit_log ORDER BY seq LIMIT 2');
      assert.equal(init?.action, 'sys.init');
      assert.deepEqual(
        [first?.action, first?.decision, JSON.parse(String(first?.detail))],
        ['store.mac_records', 'allowed', { wallets: 0, factors: 0, atInit: true }],
      );
      const uri = await enrolled(signer, 'rearm');
      const code = totpFromUri(uri, T0);
      assert.equal((await sign(signer, { walletName: 'rearm' })).json().error.code, 'code_required');
      assert.equal((await sign(signer, { walletName: 'rearm', code })).statusCode, 200);
      // the writer resets the factor's state, nulls every MAC, and marks the store for the MAC pass
      await signer.sql('UPDATE totp_factors SET last_accepted_step = NULL, failures = 0, locked_until_ms = NULL, mac = NULL WHERE wallet_name = $1', 'rearm');
      await signer.sql('UPDATE wallets SET mac = NULL WHERE name = $1', 'rearm');
      await signer.sql('UPDATE meta SET records_mac_pending = 1');
      const seq = Number((await signer.sql('SELECT max(seq) AS s FROM audit_log'))[0]?.s);
      await signer.restart(); // the next unseal
      const records = await signer.sql('SELECT action, decision, reason FROM audit_log WHERE seq > $1 ORDER BY seq', seq);
      assert.deepEqual(
        records.map((r) => [r.action, r.decision, r.reason]),
        [
          ['store.mac_records', 'denied', 'record_unreadable'],
          ['sys.unseal', 'allowed', null],
        ],
      );
      assert.equal(Number((await signer.sql('SELECT records_mac_pending FROM meta'))[0]?.records_mac_pending), 0);
      assert.deepEqual(await signer.sql('SELECT mac FROM wallets WHERE name = $1', 'rearm'), [{ mac: null }]);
      unreadable(await sign(signer, { walletName: 'rearm', code }));
      unreadable(await sign(signer, { walletName: 'rearm' }));
    } finally {
      await signer.close();
    }
  });
});

describe('unknown-wallets deny', () => {
  let signer: TestSigner;
  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, unknownWallets: 'deny' });
  });
  after(async () => {
    await signer.close();
  });

  it('a wallet whose rows were deleted is refused wallet_not_found, and no row is created; audit verify --factors reports it', async () => {
    signer.clock.now = T0;
    const uri = await enrolled(signer, 'gone-deny');
    await signer.sql('DELETE FROM totp_factors WHERE wallet_name = $1', 'gone-deny');
    await signer.sql('DELETE FROM wallets WHERE name = $1', 'gone-deny');
    assertRefused(await sign(signer, { walletName: 'gone-deny' }), 404, 'wallet_not_found');
    assertRefused(await sign(signer, { walletName: 'gone-deny', code: totpFromUri(uri, T0) }), 404, 'wallet_not_found');
    assert.deepEqual(await signer.sql('SELECT name FROM wallets WHERE name = $1', 'gone-deny'), []);
    const { discrepancies } = await compareFactorRows(readAuditPages(signer.store), (name) => signer.store.readWalletRows(name));
    assert.deepEqual(
      discrepancies.filter((d) => d.walletName === 'gone-deny'),
      [{ walletName: 'gone-deny', problem: 'no_wallet_row' }],
    );
  });

  it('what creates a wallet row under deny: enrolment and derivation do; a signature for a name never seen is refused', async () => {
    signer.clock.now = T0;
    assertRefused(await sign(signer, { walletName: 'never-seen' }), 404, 'wallet_not_found');
    const derived = await signer.app.inject({ method: 'GET', url: '/v1/keys?walletName=derived-first&keyIndex=0', headers: signer.auth() });
    assert.equal(derived.statusCode, 200, derived.body);
    // the row exists, but without an enrolled factor it never signs under deny
    assertRefused(await sign(signer, { walletName: 'derived-first' }), 403, 'factor_required');
    const uri = await enrolled(signer, 'enrolled-first');
    assert.equal((await sign(signer, { walletName: 'enrolled-first', code: totpFromUri(uri, T0) })).statusCode, 200);
    const denied = await signer.sql("SELECT reason FROM audit_log WHERE wallet_name = 'never-seen' AND decision = 'denied'");
    assert.deepEqual(
      denied.map((r) => r.reason),
      ['wallet_not_found'],
    );
  });

  it('rows deleted, then GET /v1/keys re-creates the wallet row (no factor): the code-less signature is refused factor_required; --factors reports it', async () => {
    signer.clock.now = T0;
    await enrolled(signer, 'gone-rederived');
    await signer.sql('DELETE FROM totp_factors WHERE wallet_name = $1', 'gone-rederived');
    await signer.sql('DELETE FROM wallets WHERE name = $1', 'gone-rederived');
    const derived = await signer.app.inject({ method: 'GET', url: '/v1/keys?walletName=gone-rederived&keyIndex=0', headers: signer.auth() });
    assert.equal(derived.statusCode, 200, derived.body);
    assertRefused(await sign(signer, { walletName: 'gone-rederived' }), 403, 'factor_required');
    const denied = await signer.sql("SELECT reason FROM audit_log WHERE wallet_name = 'gone-rederived' AND decision = 'denied'");
    assert.deepEqual(
      denied.map((r) => r.reason),
      ['factor_required'],
    );
    const { discrepancies } = await compareFactorRows(readAuditPages(signer.store), (name) => signer.store.readWalletRows(name));
    assert.deepEqual(
      discrepancies.filter((d) => d.walletName === 'gone-rederived'),
      [{ walletName: 'gone-rederived', problem: 'no_factor_row' }],
    );
  });
});

describe('audit verify --factors (compareFactorRows)', () => {
  it('reports a factor row put back as it was before a signature (a rollback the MAC cannot see: the used code signs again online, step_replayed offline), and a wallet enrolled twice', async () => {
    const signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0 });
    try {
      const uri = await enrolled(signer, 'rolled-back');
      const [before] = await signer.sql('SELECT last_accepted_step, failures, locked_until_ms, mac FROM totp_factors WHERE wallet_name = $1', 'rolled-back');
      assert.ok(before);
      const code = totpFromUri(uri, T0);
      assert.equal((await sign(signer, { walletName: 'rolled-back', code })).statusCode, 200);
      const compare = () => compareFactorRows(readAuditPages(signer.store), (name) => signer.store.readWalletRows(name));
      assert.deepEqual((await compare()).discrepancies, []);
      // the whole row as it was, its valid MAC included: online, the used code signs again…
      await signer.sql(
        'UPDATE totp_factors SET last_accepted_step = $1, failures = $2, locked_until_ms = $3, mac = $4 WHERE wallet_name = $5',
        before.last_accepted_step,
        before.failures,
        before.locked_until_ms,
        before.mac,
        'rolled-back',
      );
      const replayed = await sign(signer, { walletName: 'rolled-back', code });
      assert.equal(replayed.statusCode, 200, 'a rollback of a whole row is not visible online (documented)');
      // …but offline the log shows the step accepted twice (the row's final step matches the log's)
      const step = Math.floor(T0 / 30_000);
      const [replay] = await signer.sql(
        "SELECT max(seq) AS seq FROM audit_log WHERE wallet_name = $1 AND action = 'sign.hash' AND decision = 'allowed'",
        'rolled-back',
      );
      const replayedAt = { walletName: 'rolled-back', problem: 'step_replayed', seq: Number(replay?.seq), step };
      assert.deepEqual((await compare()).discrepancies, [replayedAt]);
      // and the row now holds the step once more: compare a second rollback
      await signer.sql(
        'UPDATE totp_factors SET last_accepted_step = $1, failures = $2, locked_until_ms = $3, mac = $4 WHERE wallet_name = $5',
        before.last_accepted_step,
        before.failures,
        before.locked_until_ms,
        before.mac,
        'rolled-back',
      );
      assert.deepEqual((await compare()).discrepancies, [
        replayedAt,
        { walletName: 'rolled-back', problem: 'state_differs', expectedStep: step, rowStep: null },
      ]);
      // rows deleted, then the backend enrols its own factor on the name: the log shows two enrolments
      await enrolled(signer, 'twice');
      await signer.sql('DELETE FROM totp_factors WHERE wallet_name = $1', 'twice');
      await signer.sql('DELETE FROM wallets WHERE name = $1', 'twice');
      await enrolled(signer, 'twice');
      assert.deepEqual(
        (await compare()).discrepancies.filter((d) => d.walletName === 'twice'),
        [{ walletName: 'twice', problem: 'enrolled_twice' }],
      );
    } finally {
      await signer.close();
    }
  });
});
