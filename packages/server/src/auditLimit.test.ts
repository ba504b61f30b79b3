import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readAuditPages, verifyAuditChain } from '@custos/kernel';
import { DB_FILE } from './openStore.js';
import { createTestSigner, type TestSigner } from './testing/createTestSigner.js';

// The audit log must not be a way to fill the disk (a full disk stops all signing): every record
// keeps its detail whole only up to 4 KB (else its hash and a preview), and each tenant's audit
// bytes are rate-limited; what that limit refuses is counted, one record per API key and minute.
// Real server (HTTP on 127.0.0.1), real store (a SQLite file, or PostgreSQL in that pass).

const T0 = Date.UTC(2026, 11, 6, 12, 0, 5);
/** A 63 KB message: what fits under the 64 KB body limit. */
const BIG_TEXT = 'Pay 1 ETH to the bearer. '.repeat(2_520);
const MB = 1024 * 1024;

interface Answer {
  status: number;
  retryAfter: string | null;
  body: Record<string, unknown> & { error?: { code: string; details: Record<string, unknown> } };
}

async function listen(signer: TestSigner): Promise<(path: string, payload: unknown) => Promise<Answer>> {
  const url = await signer.app.listen({ host: '127.0.0.1', port: 0 });
  return async (path, payload) => {
    const res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { ...signer.auth(), 'content-type': 'application/json' },
      body: JSON.stringify(payload),
    });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Answer['body'] };
  };
}

/** Bytes the store takes on disk: the SQLite file and its WAL after a checkpoint, or PostgreSQL's audit_log relation. */
async function storeBytes(signer: TestSigner): Promise<number> {
  if ('dataDir' in signer.location) {
    await signer.sql('PRAGMA wal_checkpoint(TRUNCATE)');
    const file = join(signer.location.dataDir, DB_FILE);
    let wal = 0;
    try {
      wal = statSync(`${file}-wal`).size;
    } catch {
      // no WAL file
    }
    return statSync(file).size + wal;
  }
  const [row] = await signer.sql("SELECT pg_total_relation_size('audit_log') AS n");
  return Number(row?.n);
}

async function enroll(signer: TestSigner, walletName: string): Promise<void> {
  const res = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName } });
  assert.equal(res.statusCode, 200, res.body);
}

describe('the audit log cannot be used to fill the disk', () => {
  describe('every record keeps its detail whole only up to 4 KB', () => {
    let signer: TestSigner;
    let post: Awaited<ReturnType<typeof listen>>;
    before(async () => {
      signer = await createTestSigner({ startMs: T0 });
      post = await listen(signer);
    });
    after(async () => {
      await signer?.close();
    });

    it('300 denied 63 KB messages grow the store by less than 1 MB (it was 18.7 MB)', async () => {
      await enroll(signer, 'flooded');
      const before = await storeBytes(signer);
      const started = performance.now();
      for (let i = 0; i < 300; i++) {
        // no code for a wallet with a factor: denied code_required, audited with the operation's summary
        const res = await post('/v1/sign/message', { walletName: 'flooded', keyIndex: 0, message: { text: `${i} ${BIG_TEXT}` } });
        assert.equal(res.status, 403);
        assert.equal(res.body.error?.code, 'code_required');
      }
      const grown = (await storeBytes(signer)) - before;
      console.log(
        `audit flood: 300 denied ${Math.round(BIG_TEXT.length / 1024)} KB messages in ${Math.round(performance.now() - started)} ms grew the store by ${(grown / 1024).toFixed(0)} KB`,
      );
      assert.ok(grown < MB, `the store grew by ${grown} bytes`);
      const [denied] = await signer.sql("SELECT count(*) AS n FROM audit_log WHERE wallet_name = 'flooded' AND reason = 'code_required'");
      assert.equal(Number(denied?.n), 300, 'each denial is still audited');
    });

    it('the response carries the full summary; the record its hash, size and a preview, and the consent evidence', async () => {
      const text = `sign me ${BIG_TEXT}`;
      const res = await post('/v1/sign/message', { walletName: 'big-allowed', keyIndex: 2, message: { text } });
      assert.equal(res.status, 200, JSON.stringify(res.body.error));
      const summary = res.body.summary as { text: string };
      assert.equal(summary.text, text, 'the full message is in the response');
      const [row] = await signer.sql('SELECT detail FROM audit_log WHERE seq = $1', res.body.auditSeq);
      const detail = JSON.parse(String(row?.detail)) as Record<string, unknown> & { truncated: { bytes: number; sha256: string; preview: string } };
      const full = { factor: 'none', keyIndex: 2, summary: res.body.summary, summaryText: res.body.summaryText };
      const canonical = canonicalJson(full);
      assert.deepEqual(Object.keys(detail).sort(), ['factor', 'keyIndex', 'truncated']);
      assert.equal(detail.keyIndex, 2);
      assert.equal(detail.factor, 'none');
      assert.equal(detail.truncated.bytes, Buffer.byteLength(canonical));
      assert.equal(detail.truncated.sha256, createHash('sha256').update(canonical).digest('hex'), 'the hash of the full detail');
      assert.equal(detail.truncated.preview, canonical.slice(0, 256));
      assert.ok(String(row?.detail).length < 4096);
    });

    it('a record of at most 4 KB is kept whole', async () => {
      const text = 'x'.repeat(3_000);
      const res = await post('/v1/sign/message', { walletName: 'small', keyIndex: 0, message: { text } });
      assert.equal(res.status, 200);
      const [row] = await signer.sql('SELECT detail FROM audit_log WHERE seq = $1', res.body.auditSeq);
      assert.deepEqual(JSON.parse(String(row?.detail)), { factor: 'none', keyIndex: 0, summary: res.body.summary, summaryText: res.body.summaryText });
      assert.equal((await verifyAuditChain(readAuditPages(signer.store))).ok, true, 'the chain verifies over bounded and whole records');
    });
  });

  describe('a tenant’s audit bytes are rate-limited', () => {
    let signer: TestSigner;
    let post: Awaited<ReturnType<typeof listen>>;
    const budget = { auditBytesPerSecond: 1_024, auditBurstBytes: 64 * 1024 };
    before(async () => {
      signer = await createTestSigner({ startMs: T0, kernelOptions: budget });
      post = await listen(signer);
    });
    after(async () => {
      await signer?.close();
    });

    it('over the budget: 429 audit_rate_limited with Retry-After, not audited one by one; one aggregated record per API key and minute', async () => {
      await enroll(signer, 'limited');
      const before = await storeBytes(signer);
      const statuses = new Map<string, number>();
      let retryAfter: string | null = null;
      for (let i = 0; i < 300; i++) {
        const res = await post('/v1/sign/message', { walletName: 'limited', keyIndex: 0, message: { text: `${i} ${BIG_TEXT}` } });
        const key = `${res.status} ${res.body.error?.code}`;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        if (res.status === 429) {
          retryAfter = res.retryAfter;
          assert.equal(res.body.error?.details.retryAfterSeconds, Number(res.retryAfter));
        }
      }
      const denied = statuses.get('403 code_required') ?? 0;
      const limited = statuses.get('429 audit_rate_limited') ?? 0;
      console.log(`audit budget: ${JSON.stringify(Object.fromEntries(statuses))}, Retry-After ${retryAfter}`);
      assert.equal(denied + limited, 300, JSON.stringify(Object.fromEntries(statuses)));
      assert.ok(denied >= 20 && limited >= 200, JSON.stringify(Object.fromEntries(statuses)));
      assert.ok(retryAfter !== null && Number(retryAfter) >= 1, `Retry-After ${retryAfter}`);
      const records = async (where: string) => Number((await signer.sql(`SELECT count(*) AS n FROM audit_log WHERE ${where}`))[0]?.n);
      assert.equal(await records("wallet_name = 'limited' AND action = 'sign.message'"), denied, 'a refused request writes no record');
      assert.equal(await records("action = 'audit.rate_limited'"), 0, 'the minute is not over');
      assert.ok((await storeBytes(signer)) - before < MB);

      // The minute rolls over: the next request records the tally before it is served (and is
      // served: the budget refilled meanwhile).
      signer.clock.now = T0 + 61_000;
      const next = await post('/v1/sign/message', { walletName: 'limited', keyIndex: 0, message: { text: 'hello' } });
      assert.equal(next.body.error?.code, 'code_required');
      const rows = await signer.sql("SELECT app_id, decision, reason, detail, ts FROM audit_log WHERE action = 'audit.rate_limited'");
      assert.equal(rows.length, 1);
      const [caller] = await signer.sql("SELECT app_id FROM audit_log WHERE wallet_name = 'limited' LIMIT 1");
      const row = rows[0] as Record<string, unknown>;
      assert.deepEqual(
        { appId: row.app_id, decision: row.decision, reason: row.reason, detail: JSON.parse(String(row.detail)) },
        { appId: caller?.app_id, decision: 'denied', reason: 'audit_rate_limited', detail: { count: limited, firstTs: T0, lastTs: T0 } },
      );

      // Refusals of a later minute make a record of their own, written when the app closes at the latest.
      signer.clock.now = T0 + 61_000;
      let refused = 0;
      for (let i = 0; i < 100 && refused < 3; i++) {
        const res = await post('/v1/sign/message', { walletName: 'limited', keyIndex: 0, message: { text: `${i} ${BIG_TEXT}` } });
        if (res.status === 429) refused += 1;
      }
      assert.equal(refused, 3);
      assert.equal(await signer.kernel.flushAuditRateLimited(), 0, 'a tally of the current minute waits for its end');
      assert.equal(await signer.kernel.flushAuditRateLimited({ all: true }), 1);
      const last = await signer.sql("SELECT detail FROM audit_log WHERE action = 'audit.rate_limited' ORDER BY seq DESC LIMIT 1");
      assert.deepEqual(JSON.parse(String(last[0]?.detail)), { count: 3, firstTs: T0 + 61_000, lastTs: T0 + 61_000 });
      assert.equal((await verifyAuditChain(readAuditPages(signer.store))).ok, true);
    });
  });
});

/** The kernel's canonical JSON (sorted keys, no whitespace), for the expected hash. */
function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}
