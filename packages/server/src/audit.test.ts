import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { computeAuditHash, readAuditPages, verifyAuditChain } from '@custos/kernel';
import { RAW_HASHES_ALLOWED, createTestSigner, forceAuditFailure, type TestSigner } from './testing/createTestSigner.js';
import { totpFromUri } from './testing/totpFromUri.js';

const T0 = Date.UTC(2026, 10, 22, 12, 0, 15);
const HASH = `0x${'ee'.repeat(32)}`;

describe('audit: every decision, hash-chained, in the transaction that consumes the consent', () => {
  let signer: TestSigner;
  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0 });
  });
  after(async () => {
    await signer.close();
  });

  const sign = (body: Record<string, unknown>) =>
    signer.app.inject({ method: 'POST', url: '/v1/sign/hash', headers: signer.auth(), payload: { keyIndex: 0, hash: HASH, ...body } });

  it('allowed and denied decisions are recorded with app, wallet, opHash and reason; no secret in a record', async () => {
    const before = (await signer.store.readAudit(1, 10_000)).length;
    const enrolled = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName: 'audited' } });
    const uri = enrolled.json().otpauthUri as string;
    const code = totpFromUri(uri, T0);
    const denied = await sign({ walletName: 'audited', code: code === '123456' ? '654321' : '123456' });
    assert.equal(denied.statusCode, 403);
    const ok = await sign({ walletName: 'audited', code });
    assert.equal(ok.statusCode, 200);
    const records = (await signer.store.readAudit(1, 10_000)).slice(before);
    assert.deepEqual(
      records.map((r) => [r.action, r.decision, r.reason]),
      [
        ['totp.enroll', 'allowed', null],
        ['sign.hash', 'denied', 'code_invalid'],
        ['sign.hash', 'allowed', null],
      ],
    );
    const [, deniedRecord, allowedRecord] = records;
    assert.ok(deniedRecord && allowedRecord);
    const appId = signer.apiKey.split('.')[1];
    for (const r of records) {
      assert.equal(r.appId, appId);
      assert.equal(r.walletName, 'audited');
    }
    assert.equal(allowedRecord.seq, ok.json().auditSeq);
    assert.equal(allowedRecord.opHash, ok.json().opHash);
    assert.equal(deniedRecord.opHash, ok.json().opHash, 'the denial names the same operation');
    assert.equal(allowedRecord.detail.factor, 'totp');
    assert.equal(typeof allowedRecord.detail.totpStep, 'number');
    const raw = JSON.stringify(records);
    assert.ok(!raw.includes(code), 'no code in the audit log');
    assert.ok(!raw.includes(new URL(uri).searchParams.get('secret') ?? '-'), 'no secret in the audit log');
  });

  it('if the audit append fails, no signature leaves and the consent is not consumed', async () => {
    signer.clock.now = T0;
    const enrolled = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName: 'blinded' } });
    const code = totpFromUri(enrolled.json().otpauthUri, T0);
    // Force the failure inside the database itself: every audit insert aborts.
    const restore = await forceAuditFailure(signer.store);
    try {
      for (const body of [{ walletName: 'blinded', code }, { walletName: 'not-enrolled-blinded' }]) {
        const res = await sign(body);
        assert.equal(res.statusCode, 503, res.body);
        assert.equal(res.json().error.code, 'audit_unavailable');
        assert.equal(res.json().r, undefined);
        assert.ok(!/"signature"|"s":/.test(res.body));
      }
      const [row] = await signer.sql("SELECT last_accepted_step, failures FROM totp_factors WHERE wallet_name = 'blinded'");
      assert.equal(row?.last_accepted_step, null, 'the step was rolled back with the audit record');
    } finally {
      await restore();
    }
    const later = await sign({ walletName: 'blinded', code });
    assert.equal(later.statusCode, 200, 'the unconsumed code still works once the audit log is back');
  });

  it('one failing unit in a group-committed batch does not take the others down, and the chain has no gap', async () => {
    signer.clock.now = T0;
    const statsBefore = { ...signer.store.stats };
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => sign({ walletName: `batch-${i}`, hash: `0x${(i + 16).toString(16).repeat(64).slice(0, 64)}` })),
    );
    assert.ok(results.every((r) => r.statusCode === 200));
    const seqs = results.map((r) => r.json().auditSeq as number).sort((a, b) => a - b);
    assert.equal(new Set(seqs).size, 40);
    const batches = signer.store.stats.batches - statsBefore.batches;
    assert.ok(batches < 40, `40 concurrent requests shared transactions (batches: ${batches})`);
    const verdict = await verifyAuditChain(readAuditPages(signer.store));
    assert.equal(verdict.ok, true);
  });

  it('tampering with any record is found, naming the first broken one', async () => {
    const total = (await signer.store.readAudit(1, 100_000)).length;
    assert.ok(total > 5);
    const [original] = await signer.sql('SELECT reason FROM audit_log WHERE seq = 3');
    await signer.sql("UPDATE audit_log SET reason = 'edited' WHERE seq = 3");
    let verdict = await verifyAuditChain(readAuditPages(signer.store, 2));
    assert.deepEqual(verdict.ok ? null : [verdict.firstBrokenSeq, verdict.reason], [3, 'hash_mismatch']);
    await signer.sql('UPDATE audit_log SET reason = $1 WHERE seq = 3', original?.reason);
    assert.equal((await verifyAuditChain(readAuditPages(signer.store))).ok, true);

    const [row] = await signer.sql('SELECT * FROM audit_log WHERE seq = 4');
    assert.ok(row);
    await signer.sql('DELETE FROM audit_log WHERE seq = 4');
    verdict = await verifyAuditChain(readAuditPages(signer.store));
    assert.deepEqual(verdict.ok ? null : [verdict.firstBrokenSeq, verdict.reason], [4, 'gap']);
    const columns = ['seq', 'ts', 'app_id', 'wallet_name', 'action', 'op_hash', 'decision', 'reason', 'detail', 'prev_hash', 'hash'];
    await signer.sql(`INSERT INTO audit_log (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`, ...columns.map((c) => row[c]));

    // Recomputing a record's own hash after editing it still breaks the link to the next one.
    const [fifth] = await signer.store.readAudit(5, 1);
    assert.ok(fifth);
    const forged = { ...fifth, detail: { ...fifth.detail, keyIndex: 99 } };
    await signer.sql('UPDATE audit_log SET detail = $1, hash = $2 WHERE seq = 5', JSON.stringify(forged.detail), computeAuditHash(forged, 5, fifth.prevHash));
    verdict = await verifyAuditChain(readAuditPages(signer.store));
    assert.deepEqual(verdict.ok ? null : [verdict.firstBrokenSeq, verdict.reason], [6, 'prev_hash_mismatch']);
  });
});
