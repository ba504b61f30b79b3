import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GroupCommit } from './stores/groupCommit.js';
import { captureLogLines } from './testing/captureLogLines.js';
import { RAW_HASHES_ALLOWED, createTestSigner, TEST_PASSPHRASE, type TestSigner } from './testing/createTestSigner.js';
import { totpFromUri } from './testing/totpFromUri.js';

const T0 = Date.UTC(2026, 10, 22, 12, 0, 15);
const HASH = `0x${'12'.repeat(32)}`;

describe('operations: probes, metrics, overload', () => {
  let signer: TestSigner;
  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0 });
  });
  after(async () => {
    await signer.close();
  });

  it('/healthz is up sealed or not; /readyz is ready only unsealed with a reachable store', async () => {
    assert.deepEqual((await signer.app.inject('/healthz')).json(), { status: 'ok' });
    const ready = await signer.app.inject('/readyz');
    assert.equal(ready.statusCode, 200);
    assert.deepEqual(ready.json(), { ready: true, sealed: false, store: 'ok', audit: 'ok', inFlight: 0, maxInFlight: 1024, guard: 'ok' });
    signer.kernel.seal();
    try {
      assert.equal((await signer.app.inject('/healthz')).statusCode, 200);
      const sealed = await signer.app.inject('/readyz');
      assert.equal(sealed.statusCode, 503);
      assert.deepEqual(sealed.json(), { ready: false, sealed: true, store: 'ok', audit: 'ok', inFlight: 0, maxInFlight: 1024, guard: 'ok' });
      const metrics = await signer.app.inject('/metrics');
      assert.equal(metrics.statusCode, 200);
      assert.match(metrics.body, /^custos_sealed 1$/m);
    } finally {
      await signer.kernel.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
    }
    assert.match((await signer.app.inject('/metrics')).body, /^custos_sealed 0$/m);
  });

  it('/metrics counts requests by route and outcome, denials by reason, commit latency and batch sizes — and no secret', async () => {
    const enrolled = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName: 'metrics' } });
    const code = totpFromUri(enrolled.json().otpauthUri, T0);
    const wrong = code === '000000' ? '000001' : '000000';
    const sign = (c: string) =>
      signer.app.inject({ method: 'POST', url: '/v1/sign/hash', headers: signer.auth(), payload: { walletName: 'metrics', keyIndex: 0, hash: HASH, code: c } });
    assert.equal((await sign(wrong)).statusCode, 403);
    assert.equal((await sign(code)).statusCode, 200);
    const text = (await signer.app.inject('/metrics')).body;
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);
    assert.ok(value(/^custos_http_requests_total\{route="\/v1\/sign\/hash",method="POST",status="200",outcome="ok"\} (\d+)$/m) >= 1, 'sign ok counted');
    assert.ok(
      value(/^custos_http_requests_total\{route="\/v1\/sign\/hash",method="POST",status="403",outcome="code_invalid"\} (\d+)$/m) >= 1,
      'sign denial counted',
    );
    assert.ok(value(/^custos_denials_total\{reason="code_invalid"\} (\d+)$/m) >= 1);
    assert.ok(value(/^custos_audit_commit_duration_seconds_count (\d+)$/m) >= 3, 'commits observed');
    assert.ok(value(/^custos_commit_batch_size_count (\d+)$/m) >= 3, 'batch sizes observed');
    assert.ok(value(/^custos_http_request_duration_seconds_count\{route="\/v1\/sign\/hash",outcome="ok"\} (\d+)$/m) >= 1, 'latency observed');
    for (const secret of [code, signer.apiKey, new URL(enrolled.json().otpauthUri).searchParams.get('secret') ?? '-', 'metrics"']) {
      assert.ok(!text.includes(secret), 'no secret or wallet name in the metrics');
    }
  });

  it('under overload the app answers 503 overloaded with Retry-After instead of queueing without limit', async () => {
    // the global limit: one client may take both slots
    const small = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, maxInFlight: 2, appOptions: { maxInFlightPerClient: 2 } });
    try {
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          small.app.inject({ method: 'POST', url: '/v1/sign/hash', headers: small.auth(), payload: { walletName: `load-${i}`, keyIndex: 0, hash: HASH } }),
        ),
      );
      const overloaded = results.filter((r) => r.statusCode === 503);
      const ok = results.filter((r) => r.statusCode === 200);
      assert.ok(overloaded.length > 0, 'some requests were refused');
      assert.ok(ok.length >= 2, 'the ones within the limit were served');
      assert.equal(overloaded.length + ok.length, 30);
      for (const r of overloaded) {
        assert.equal(r.json().error.code, 'overloaded');
        assert.equal(r.headers['retry-after'], '1');
      }
      // Refused requests took no decision: only the served ones are in the audit log.
      const signed = (await small.store.readAudit(1, 1000)).filter((r) => r.action === 'sign.hash');
      assert.equal(signed.length, ok.length);
      // The probes are never refused as overloaded.
      assert.equal((await small.app.inject('/readyz')).statusCode, 200);
    } finally {
      await small.close();
    }
  });

  it('the group-commit queue is bounded: beyond maxPending, work is refused as overloaded', async () => {
    const calls: string[] = [];
    const driver = {
      begin: async () => {
        calls.push('begin');
        return {} as never;
      },
      savepoint: async () => undefined,
      releaseSavepoint: async () => undefined,
      rollbackToSavepoint: async () => undefined,
      commit: async () => {
        calls.push('commit');
      },
      rollback: async () => undefined,
      markUnit: () => undefined,
    };
    const commits = new GroupCommit(driver, { maxBatch: 100, maxPending: 5 });
    const settled = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => commits.submit(async () => i)));
    assert.deepEqual(
      settled.map((s) => s.status),
      [...Array(5).fill('fulfilled'), ...Array(7).fill('rejected')],
    );
    for (const s of settled.slice(5)) assert.equal((s as PromiseRejectedResult).reason.code, 'overloaded');
    assert.deepEqual(calls, ['begin', 'commit'], 'the five accepted units shared one transaction');
  });

  it('/readyz reports an unreachable store', async () => {
    const lonely = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0 });
    await lonely.store.close();
    try {
      const res = await lonely.app.inject('/readyz');
      assert.equal(res.statusCode, 503);
      assert.deepEqual(res.json(), { ready: false, sealed: false, store: 'unreachable', audit: 'failing', inFlight: 0, maxInFlight: 1024, guard: 'ok' });
    } finally {
      await lonely.close();
    }
  });
});

describe('logging: secrets are redacted', () => {
  it('the logger censors every secret-bearing path, wherever it appears', () => {
    const { logger, lines } = captureLogLines();
    const secrets = {
      passphrase: 'pass-phrase-value-1',
      code: '314159',
      secret: 'JBSWY3DPEHPK3PXPJBSWY3DP',
      token: 'tok-value-2',
      apiKey: 'ck1.0123456789abcdef.api-key-secret-value',
      access_token: 'access-token-value-3',
      mnemonic: 'abandon ability able about above absent absorb abstract absurd abuse access accident',
      seed: '5eb00bbddcf069084889a8ab9155568165f5c453',
      share: '{"format":"custos.unseal-share","share":"c2hhcmUtYnl0ZXMtdmFsdWU="}',
      pin: 'hsm-pin-value-4',
    };
    logger.info(secrets, 'top level');
    logger.info({ request: secrets }, 'nested');
    logger.info({ req: { headers: { authorization: 'Bearer super-secret-bearer' }, method: 'POST' } }, 'request');
    logger.info({ body: { walletName: 'w', code: '271828', anything: 'body-value' } }, 'body');
    const out = lines.join('');
    for (const value of [...Object.values(secrets), 'super-secret-bearer', '271828', 'body-value']) {
      assert.ok(!out.includes(value), `a secret leaked into the log: ${Object.entries(secrets).find(([, v]) => v === value)?.[0] ?? value.slice(0, 4)}`);
    }
    assert.ok((out.match(/\[redacted\]/g) ?? []).length >= 22);
    assert.match(out, /"method":"POST"/, 'what is not secret is still logged');
  });
});
