import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RAW_HASHES_ALLOWED, createTestSigner, type TestSigner } from './testing/createTestSigner.js';
import { totpFromUri } from './testing/totpFromUri.js';
import { verifySignature } from './testing/verifySignature.js';

// A fixed instant in the middle of a 30 s step, so that ±1 step arithmetic is exact.
const T0 = Date.UTC(2026, 10, 22, 12, 0, 15);
const HASH_A = `0x${'aa'.repeat(32)}`;
const HASH_B = `0x${'bb'.repeat(32)}`;

async function enroll(signer: TestSigner, walletName: string): Promise<string> {
  const res = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName } });
  assert.equal(res.statusCode, 200, res.body);
  return res.json().otpauthUri as string;
}

function sign(signer: TestSigner, body: Record<string, unknown>) {
  return signer.app.inject({ method: 'POST', url: '/v1/sign/hash', headers: signer.auth(), payload: { keyIndex: 0, hash: HASH_A, ...body } });
}

async function factorRow(
  signer: TestSigner,
  walletName: string,
): Promise<{ failures: number; locked_until_ms: number | null; last_accepted_step: number | null; secret_envelope: string }> {
  const [row] = await signer.sql('SELECT * FROM totp_factors WHERE wallet_name = $1', walletName);
  assert.ok(row, `factor row of ${walletName}`);
  return {
    failures: Number(row.failures),
    locked_until_ms: row.locked_until_ms === null ? null : Number(row.locked_until_ms),
    last_accepted_step: row.last_accepted_step === null ? null : Number(row.last_accepted_step),
    secret_envelope: String(row.secret_envelope),
  };
}

async function deniedReasons(signer: TestSigner, walletName: string): Promise<string[]> {
  return (await signer.sql("SELECT reason FROM audit_log WHERE wallet_name = $1 AND decision = 'denied' ORDER BY seq", walletName)).map((r) =>
    String(r.reason),
  );
}

describe('TOTP consent: every rule attacked', () => {
  let signer: TestSigner;
  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0 });
  });
  after(async () => {
    await signer.close();
  });

  it('a wallet never enrolled signs without a code (TOTP ETH Signer semantics)', async () => {
    const res = await sign(signer, { walletName: 'never-enrolled' });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.ok(verifySignature({ r: body.r, s: body.s, hash: HASH_A, publicKey: body.publicKey, recoveryId: body.recoveryId }));
  });

  it('replay: a code signs once; the same code again is code_reused', async () => {
    signer.clock.now = T0;
    const uri = await enroll(signer, 'replay');
    const code = totpFromUri(uri, signer.clock.now);
    const first = await sign(signer, { walletName: 'replay', code });
    assert.equal(first.statusCode, 200, first.body);
    const again = await sign(signer, { walletName: 'replay', code });
    assert.equal(again.statusCode, 403);
    assert.equal(again.json().error.code, 'code_reused');
    assert.equal(again.json().r, undefined);
  });

  it('retry of a request that succeeded: 20 × code_reused, none charged, the factor stays open', async () => {
    signer.clock.now = T0;
    const uri = await enroll(signer, 'retry');
    const code = totpFromUri(uri, T0);
    assert.equal((await sign(signer, { walletName: 'retry', code })).statusCode, 200);
    for (let i = 0; i < 20; i++) {
      // the retry of the same request, and the same code for another hash (step −1 … +1 of the window)
      signer.clock.now = T0 + (i % 2 === 0 ? 0 : 30_000);
      const res = await sign(signer, { walletName: 'retry', code, ...(i % 3 === 0 ? { hash: HASH_B } : {}) });
      assert.equal(res.statusCode, 403, res.body);
      assert.equal(res.json().error.code, 'code_reused', `retry ${i + 1}`);
    }
    const row = await factorRow(signer, 'retry');
    assert.deepEqual({ failures: row.failures, locked: row.locked_until_ms }, { failures: 0, locked: null });
    assert.deepEqual(await deniedReasons(signer, 'retry'), Array(20).fill('code_reused'), 'each refusal is audited');
    // the owner signs at once with the next code
    signer.clock.now = T0 + 30_000;
    assert.equal((await sign(signer, { walletName: 'retry', code: totpFromUri(uri, signer.clock.now) })).statusCode, 200);
  });

  it('not an oracle: after an accepted step, any code other than a consumed step’s own code is charged, once per attempt', async () => {
    signer.clock.now = T0;
    const uri = await enroll(signer, 'charged');
    assert.equal((await sign(signer, { walletName: 'charged', code: totpFromUri(uri, T0, 1) })).statusCode, 200);
    // Steps −1 and 0 are at or below the last accepted step (+1), inside the window: only their
    // exact codes are code_reused. Codes of no step, and the code of an older step outside the
    // window (−2), are wrong codes like any other: code_invalid, charged.
    const windowCodes = new Set([-1, 0, 1, 2].map((d) => totpFromUri(uri, T0, d)));
    const wrong: string[] = [];
    for (let n = 0; wrong.length < 3; n++) if (!windowCodes.has(String(n).padStart(6, '0'))) wrong.push(String(n).padStart(6, '0'));
    const minus2 = totpFromUri(uri, T0, -2);
    const attempts = windowCodes.has(minus2) ? [...wrong, wrong[0] as string] : [...wrong, minus2];
    for (const [i, code] of attempts.entries()) {
      const res = await sign(signer, { walletName: 'charged', code });
      assert.equal(res.json().error.code, 'code_invalid', `attempt ${i + 1}`);
      assert.equal((await factorRow(signer, 'charged')).failures, i + 1, `attempt ${i + 1} charged exactly once`);
    }
    // the consumed steps' own codes are not charged, in between
    for (const d of [-1, 0, 1]) assert.equal((await sign(signer, { walletName: 'charged', code: totpFromUri(uri, T0, d) })).json().error.code, 'code_reused');
    assert.equal((await factorRow(signer, 'charged')).failures, 4);
    // the fifth wrong code locks the factor; then even a consumed step's code is refused unheard
    assert.equal((await sign(signer, { walletName: 'charged', code: wrong[1] as string })).json().error.code, 'code_invalid');
    const row = await factorRow(signer, 'charged');
    assert.equal(row.failures, 5);
    assert.equal(row.locked_until_ms, T0 + 30_000);
    assert.equal((await sign(signer, { walletName: 'charged', code: totpFromUri(uri, T0, 0) })).json().error.code, 'factor_throttled');
    assert.equal((await sign(signer, { walletName: 'charged', code: totpFromUri(uri, T0, 2) })).json().error.code, 'factor_throttled');
  });

  it('swap: the code the user typed for tx A cannot sign tx B afterwards, nor another wallet', async () => {
    signer.clock.now = T0;
    const uri = await enroll(signer, 'swap-a');
    await enroll(signer, 'swap-b');
    const code = totpFromUri(uri, signer.clock.now);
    assert.equal((await sign(signer, { walletName: 'swap-a', code, hash: HASH_A })).statusCode, 200);
    const swapped = await sign(signer, { walletName: 'swap-a', code, hash: HASH_B });
    assert.equal(swapped.json().error.code, 'code_reused');
    const otherWallet = await sign(signer, { walletName: 'swap-b', code, hash: HASH_B });
    assert.equal(otherWallet.statusCode, 403);
    assert.equal(otherWallet.json().error.code, 'code_invalid');
  });

  it('race: 20 concurrent uses of one code give exactly one signature', async () => {
    signer.clock.now = T0;
    const uri = await enroll(signer, 'race');
    const code = totpFromUri(uri, signer.clock.now);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => sign(signer, { walletName: 'race', code, hash: `0x${i.toString(16).padStart(2, '0').repeat(32)}` })),
    );
    const ok = results.filter((r) => r.statusCode === 200);
    assert.equal(ok.length, 1, results.map((r) => r.statusCode).join(','));
    // Every other use is refused code_reused, uncharged: the owner is not locked out by the race.
    const refused = results.filter((x) => x.statusCode !== 200).map((r) => r.json().error.code as string);
    assert.deepEqual(refused, Array(19).fill('code_reused'));
    assert.equal((await factorRow(signer, 'race')).failures, 0);
    const [allowed] = await signer.sql("SELECT count(*) AS n FROM audit_log WHERE wallet_name = 'race' AND action = 'sign.hash' AND decision = 'allowed'");
    assert.equal(Number(allowed?.n), 1);
  });

  it('window: codes of steps −1 and +1 are accepted, −2 and +2 are code_invalid', async () => {
    signer.clock.now = T0;
    const uri = await enroll(signer, 'window');
    for (const offset of [-2, 2]) {
      const res = await sign(signer, { walletName: 'window', code: totpFromUri(uri, T0, offset) });
      assert.equal(res.json().error.code, 'code_invalid', `offset ${offset}`);
    }
    // Reset the failures from the two probes with a success at −1, then +1 (a later step) works too.
    assert.equal((await sign(signer, { walletName: 'window', code: totpFromUri(uri, T0, -1) })).statusCode, 200);
    assert.equal((await sign(signer, { walletName: 'window', code: totpFromUri(uri, T0, 1) })).statusCode, 200);
    // After step +1 was accepted, the current step's code (older) is spent too.
    assert.equal((await sign(signer, { walletName: 'window', code: totpFromUri(uri, T0, 0) })).json().error.code, 'code_reused');
  });

  it("server time only: a code from the client's future or past is judged by the server clock", async () => {
    signer.clock.now = T0;
    const uri = await enroll(signer, 'clock');
    const code = totpFromUri(uri, T0 + 10 * 60_000);
    assert.equal((await sign(signer, { walletName: 'clock', code })).json().error.code, 'code_invalid');
    signer.clock.now = T0 + 10 * 60_000;
    assert.equal((await sign(signer, { walletName: 'clock', code })).statusCode, 200);
  });

  it('brute force: each attempt is charged; after 5 failures even the right code is refused (429, Retry-After 30), doubling after', async () => {
    signer.clock.now = T0;
    const uri = await enroll(signer, 'brute');
    const right = totpFromUri(uri, T0);
    const wrong = right === '000000' ? '000001' : '000000';
    for (let i = 1; i <= 5; i++) {
      const res = await sign(signer, { walletName: 'brute', code: wrong });
      assert.equal(res.json().error.code, 'code_invalid');
      assert.equal((await factorRow(signer, 'brute')).failures, i, 'charged before the answer leaves');
    }
    const locked = await sign(signer, { walletName: 'brute', code: right });
    assert.equal(locked.statusCode, 429);
    assert.equal(locked.json().error.code, 'factor_throttled');
    assert.equal(locked.headers['retry-after'], '30');
    assert.equal((await factorRow(signer, 'brute')).failures, 5, 'a refused attempt is not checked and not counted');
    // After the back-off a wrong code locks for twice as long.
    signer.clock.now = T0 + 30_000;
    assert.equal((await sign(signer, { walletName: 'brute', code: wrong })).json().error.code, 'code_invalid');
    const relocked = await sign(signer, { walletName: 'brute', code: right });
    assert.equal(relocked.json().error.code, 'factor_throttled');
    assert.equal(relocked.headers['retry-after'], '60');
    // Only a success resets the counter.
    signer.clock.now = T0 + 30_000 + 60_000;
    const ok = await sign(signer, { walletName: 'brute', code: totpFromUri(uri, signer.clock.now) });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal((await factorRow(signer, 'brute')).failures, 0);
    assert.deepEqual(await deniedReasons(signer, 'brute'), [
      'code_invalid',
      'code_invalid',
      'code_invalid',
      'code_invalid',
      'code_invalid',
      'factor_throttled',
      'code_invalid',
      'factor_throttled',
    ]);
  });

  it('code_required is refused without charging an attempt', async () => {
    signer.clock.now = T0;
    await enroll(signer, 'nocode');
    const res = await sign(signer, { walletName: 'nocode' });
    assert.equal(res.statusCode, 403);
    assert.equal(res.json().error.code, 'code_required');
    assert.equal((await factorRow(signer, 'nocode')).failures, 0);
  });

  it('fail closed: an enrolled wallet whose TOTP record cannot be decrypted is refused, never signed', async () => {
    signer.clock.now = T0;
    const uri = await enroll(signer, 'corrupt');
    const row = await factorRow(signer, 'corrupt');
    const tampered = `${row.secret_envelope.slice(0, -2)}${row.secret_envelope.endsWith('A') ? 'B' : 'A'}A`;
    await signer.sql('UPDATE totp_factors SET secret_envelope = $1 WHERE wallet_name = $2', tampered, 'corrupt');
    const res = await sign(signer, { walletName: 'corrupt', code: totpFromUri(uri, T0) });
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().error.code, 'record_unreadable');
    assert.equal(res.json().r, undefined);
    assert.deepEqual(await deniedReasons(signer, 'corrupt'), ['record_unreadable']);
    // Without a code it is still refused (never treated as "not enrolled"): the factor row's MAC,
    // which covers the envelope, fails before a code is asked for.
    assert.equal((await sign(signer, { walletName: 'corrupt' })).json().error.code, 'record_unreadable');
  });

  it("fail closed: another wallet's encrypted secret copied into this row does not open (record key is AAD)", async () => {
    signer.clock.now = T0;
    const attackerUri = await enroll(signer, 'attacker');
    await enroll(signer, 'victim');
    const attackerRow = await factorRow(signer, 'attacker');
    await signer.sql('UPDATE totp_factors SET secret_envelope = $1 WHERE wallet_name = $2', attackerRow.secret_envelope, 'victim');
    const res = await sign(signer, { walletName: 'victim', code: totpFromUri(attackerUri, T0) });
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().error.code, 'record_unreadable');
  });

  it('the throttle counter and the last accepted step survive a restart', async () => {
    signer.clock.now = T0;
    const uri = await enroll(signer, 'restart');
    const code = totpFromUri(uri, T0);
    assert.equal((await sign(signer, { walletName: 'restart', code })).statusCode, 200);
    for (let i = 0; i < 5; i++) await sign(signer, { walletName: 'restart', code: code === '111111' ? '222222' : '111111' });
    await signer.restart();
    signer.clock.now = T0;
    const throttled = await sign(signer, { walletName: 'restart', code: totpFromUri(uri, T0, 1) });
    assert.equal(throttled.json().error.code, 'factor_throttled');
    signer.clock.now = T0 + 30_000;
    assert.equal((await sign(signer, { walletName: 'restart', code })).json().error.code, 'code_reused', 'the step consumed before the restart stays consumed');
  });
});
