import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { type AuditCheckpoint, createAuditCheckpoint } from './auditCheckpoint.js';
import { computeAuditHash } from './computeAuditHash.js';
import { AUDIT_GENESIS_HASH, type AuditEntry, type AuditRecord } from './types.js';
import { verifyAuditLog } from './verifyAuditLog.js';

const SIGNER = 'signer-1';
const keyOf = (n: number) => {
  const secret = new Uint8Array(32).fill(n);
  return { auditPublicKey: ed25519.getPublicKey(secret), signCheckpoint: (m: Uint8Array) => ed25519.sign(m, secret) };
};
const auditKey = keyOf(1);
const forgerKey = keyOf(2);

function entry(i: number, decision: 'allowed' | 'denied' = 'allowed'): AuditEntry {
  return {
    ts: 1000 + i,
    appId: 'app',
    walletName: 'alice',
    action: 'sign.hash',
    opHash: null,
    decision,
    reason: decision === 'denied' ? 'code_invalid' : null,
    detail: { i },
  };
}

/** A chain over entries, hashes recomputed (what a database writer does after an edit). */
function chain(entries: AuditEntry[]): AuditRecord[] {
  let prevHash = AUDIT_GENESIS_HASH;
  return entries.map((e, index) => {
    const seq = index + 1;
    const hash = computeAuditHash(e, seq, prevHash);
    const record = { ...e, seq, prevHash, hash };
    prevHash = hash;
    return record;
  });
}

function checkpointsAt(records: AuditRecord[], seqs: number[], key = auditKey): AuditCheckpoint[] {
  return seqs.map((seq) => createAuditCheckpoint({ signerId: SIGNER, seq, headHash: (records[seq - 1] as AuditRecord).hash, ts: 5000 + seq }, key));
}

async function* pages<T>(items: T[], size = 3): AsyncIterable<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

const entries = Array.from({ length: 10 }, (_, i) => entry(i + 1));
const original = chain(entries);
const stored = checkpointsAt(original, [4, 8]);

const verify = (records: AuditRecord[], checkpoints: AuditCheckpoint[], options: { trusted?: boolean; external?: AuditCheckpoint[] } = {}) =>
  verifyAuditLog({
    records: pages(records),
    checkpoints: pages(checkpoints, 1),
    signerId: SIGNER,
    ...(options.trusted === false ? {} : { trustedKey: auditKey.auditPublicKey }),
    ...(options.external === undefined ? {} : { external: options.external }),
  });

describe('verifyAuditLog', () => {
  it('accepts the log: counts the checkpoints and the unprotected tail (records after the last one)', async () => {
    const report = await verify(original, stored);
    assert.equal(report.ok, true);
    assert.deepEqual(
      { records: report.records, checkpoints: report.checkpoints, last: report.lastCheckpointSeq, unprotected: report.unprotected, key: report.key?.trusted },
      { records: 10, checkpoints: 2, last: 8, unprotected: 2, key: true },
    );
    const untrusted = await verify(original, stored, { trusted: false });
    assert.equal(untrusted.ok, true);
    assert.equal(untrusted.key?.trusted, false, 'checked only against the log’s own key');
  });

  it('catches an allowed record turned denied with every later hash recomputed (the chain alone says OK)', async () => {
    const forged = chain(entries.map((e, i) => (i === 2 ? { ...e, decision: 'denied' as const, reason: 'code_invalid' } : e)));
    const report = await verify(forged, stored);
    assert.equal(report.ok, false);
    assert.deepEqual(report.fault, { kind: 'checkpoint_mismatch', seq: 4, source: 'store', checkpointHash: original[3]?.hash, logHash: forged[3]?.hash });
  });

  it('catches records deleted in the middle with the rest renumbered and rehashed', async () => {
    const forged = chain(entries.filter((_, i) => i !== 1));
    const report = await verify(forged, stored);
    assert.equal(report.fault?.kind, 'checkpoint_mismatch');
    assert.equal(report.fault?.kind === 'checkpoint_mismatch' && report.fault.seq, 4);
  });

  it('catches a cut tail: by a stored checkpoint left behind, or — all of them deleted — by one kept outside', async () => {
    const cut = original.slice(0, 6);
    assert.deepEqual((await verify(cut, stored)).fault, { kind: 'checkpoint_beyond_head', seq: 8, source: 'store', headSeq: 6 });
    const withoutLater = stored.filter((c) => c.seq <= 6);
    assert.equal((await verify(cut, withoutLater)).ok, true, 'the stored checkpoints alone cannot see it');
    const external = checkpointsAt(original, [8]);
    assert.deepEqual((await verify(cut, withoutLater, { external })).fault, { kind: 'checkpoint_beyond_head', seq: 8, source: 'external', headSeq: 6 });
    assert.equal((await verify(original, stored, { external })).ok, true, 'the whole log extends it');
  });

  it('catches a log rewritten whole with checkpoints re-signed by another key, given the audit public key', async () => {
    const forged = chain(entries.map((e, i) => (i === 0 ? { ...e, decision: 'denied' as const, reason: 'code_invalid' } : e)));
    const forgedCheckpoints = checkpointsAt(forged, [4, 8], forgerKey);
    const forgerHex = Buffer.from(forgerKey.auditPublicKey).toString('hex');
    assert.deepEqual((await verify(forged, forgedCheckpoints)).fault, {
      kind: 'checkpoint_key_mismatch',
      seq: 4,
      source: 'store',
      publicKey: forgerHex,
      expected: Buffer.from(auditKey.auditPublicKey).toString('hex'),
    });
    // without the key it passes: what the report's "checked only against the log's own key" warns of
    const untrusted = await verify(forged, forgedCheckpoints, { trusted: false });
    assert.equal(untrusted.ok, true);
    assert.deepEqual(untrusted.key, { publicKey: forgerHex, trusted: false });
    // a checkpoint naming the right key with a signature by another
    const lying = forgedCheckpoints.map((c) => ({ ...c, publicKey: Buffer.from(auditKey.auditPublicKey).toString('hex') }));
    assert.deepEqual((await verify(forged, lying)).fault, { kind: 'checkpoint_signature_invalid', seq: 4, source: 'store' });
    // one forged checkpoint among genuine ones, even without the key: two keys in one log
    const mixed = [...stored.slice(0, 1), ...checkpointsAt(original, [8], forgerKey)];
    assert.equal((await verify(original, mixed, { trusted: false })).fault?.kind, 'checkpoint_key_mismatch');
  });

  it('refuses, given the key, a log with no checkpoint at all (all of them deleted), and a checkpoint of another signer', async () => {
    assert.deepEqual((await verify(original, [])).fault, { kind: 'no_checkpoint' });
    const untrusted = await verify(original, [], { trusted: false });
    assert.equal(untrusted.ok, true);
    assert.equal(untrusted.unprotected, 10);
    assert.equal(untrusted.key, null);
    const foreign = [createAuditCheckpoint({ signerId: 'other', seq: 4, headHash: (original[3] as AuditRecord).hash, ts: 1 }, auditKey)];
    assert.deepEqual((await verify(original, foreign)).fault, { kind: 'checkpoint_foreign', seq: 4, source: 'store', signerId: 'other' });
  });

  it('still names a broken chain first (a record edited without recomputing)', async () => {
    const edited = original.map((r) => (r.seq === 3 ? { ...r, reason: 'x' } : r));
    assert.deepEqual((await verify(edited, stored)).fault, { kind: 'chain', seq: 3, reason: 'hash_mismatch' });
  });
});
