import assert from 'node:assert/strict';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startServer } from './startServer.js';
import { type AuditStream, startAuditStream } from './streamAuditLog.js';
import { createTestSigner, recordTestSecret, type TestSigner, testArtifactsDir } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';

// Issue 15 point 4, "the log streamed to a SIEM as it is written": a real HTTP receiver on port 0
// gets every record once in seq order, HMAC-signed; while it is down signing goes on and nothing is
// lost (retried with backoff, the cursor kept in a state file), and after a restart of the stream
// it carries on from the cursor. One signer for the file, on the store of the pass.

const HASH = 'ef'.repeat(32);
const secret = randomBytes(32);
let signer: TestSigner;

interface Receiver {
  seqs: number[];
  url: string;
  up(): Promise<void>;
  down(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const seqs: number[] = [];
  let server: Server | undefined;
  let port = 0;
  const up = async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        // the signature: t=<s>,v1=HMAC(secret, "<t>.<body>") as verifyWebhookSignature checks it
        const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(req.headers['x-custos-signature']));
        const expected = m === null ? undefined : createHmac('sha256', secret).update(`${m[1]}.${body}`).digest();
        if (m === null || expected === undefined || !timingSafeEqual(expected, Buffer.from(m[2] ?? '', 'hex'))) {
          res.writeHead(401).end();
          return;
        }
        const parsed = JSON.parse(body) as { format: string; records: Array<{ seq: number }> };
        assert.equal(parsed.format, 'custos.audit-stream');
        assert.equal(req.headers['x-custos-audit-seq'], String(parsed.records.at(-1)?.seq));
        seqs.push(...parsed.records.map((r) => r.seq));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server?.listen(port, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  };
  await up();
  return {
    seqs,
    url: `http://127.0.0.1:${port}/siem`,
    up,
    down: () =>
      new Promise<void>((resolve) => {
        server?.closeAllConnections();
        server?.close(() => resolve());
      }),
  };
}

async function sign(n: number): Promise<void> {
  for (let i = 0; i < n; i += 1) {
    const res = await signer.app.inject({
      method: 'POST',
      url: '/v1/sign/hash',
      headers: signer.auth(),
      payload: { walletName: `w${i % 3}`, keyIndex: 0, hash: HASH },
    });
    assert.equal(res.statusCode, 200, res.body);
  }
}

async function headSeq(): Promise<number> {
  return Number((await signer.sql('SELECT max(seq) AS s FROM audit_log'))[0]?.s);
}

/** Polls until `done` (a loaded machine is slow, never wrong: a wide limit). */
async function until(what: string, done: () => boolean | Promise<boolean>, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

before(async () => {
  recordTestSecret('audit stream HMAC secret (hex)', secret.toString('hex'));
  signer = await createTestSigner({ policyDefaults: { rawHash: 'allow' } });
});
after(async () => {
  await signer?.close();
});

describe('the audit log streamed to a webhook', () => {
  test('every record once, in order, signed; receiver down then up: nothing lost, signing never waits; a restarted stream resumes at its cursor', async () => {
    const receiver = await startReceiver();
    const stateFile = join(testArtifactsDir(), `audit-stream-${process.pid}-${Date.now()}.json`);
    const options = { webhookUrl: receiver.url, secret, stateFile, batch: 4, pollMs: 10, retryDelayMs: 10, maxRetryDelayMs: 50 };
    let stream: AuditStream = await startAuditStream(signer.store, options, false);
    try {
      await sign(3);
      const firstHead = await headSeq();
      await until('the first records', () => stream.cursor === firstHead);
      const all = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
      assert.deepEqual(receiver.seqs, all(firstHead), 'from the first record of the chain (sys.init), each once');

      // the receiver goes down: signing goes on; the stream retries with backoff
      await receiver.down();
      await sign(5);
      await until('failed attempts', () => stream.stats.failedAttempts >= 2);
      assert.equal(stream.cursor, firstHead, 'nothing counted as delivered while down');
      await receiver.up();
      const secondHead = await headSeq();
      await until('the records written while it was down', () => stream.cursor === secondHead);
      assert.deepEqual(receiver.seqs, all(secondHead), 'nothing lost, nothing twice');
      assert.deepEqual(JSON.parse(readFileSync(stateFile, 'utf8')), { seq: secondHead });
      assert.equal(statSync(stateFile).mode & 0o777, 0o600);

      // the stream stops (a restart of serve); records come meanwhile; a new stream resumes from the state file
      await stream.close();
      await sign(2);
      stream = await startAuditStream(signer.store, options, false);
      const thirdHead = await headSeq();
      await until('the records written while it was stopped', () => stream.cursor === thirdHead);
      assert.deepEqual(receiver.seqs, all(thirdHead));
    } finally {
      await stream.close();
      await receiver.down();
    }
  });

  test('startServer runs the stream beside the listener (custos serve --audit-stream-*), and stops it at close', async () => {
    const receiver = await startReceiver();
    const stateFile = join(testArtifactsDir(), `audit-stream-serve-${process.pid}-${Date.now()}.json`);
    const server = await startServer({
      store: signer.location,
      port: 0,
      logger: false,
      auditStream: { webhookUrl: receiver.url, secret, stateFile, pollMs: 10, retryDelayMs: 10 },
    });
    try {
      const head = await headSeq();
      await until('the log through serve', () => receiver.seqs.length >= head);
      assert.deepEqual(
        receiver.seqs.slice(0, head),
        Array.from({ length: head }, (_, i) => i + 1),
      );
    } finally {
      await server.close();
      await receiver.down();
    }
  });

  test('bad settings stop the start: not an http(s) URL, a short secret, a corrupt state file', async () => {
    const stateFile = join(testArtifactsDir(), `audit-stream-bad-${process.pid}-${Date.now()}.json`);
    const base = { webhookUrl: 'http://127.0.0.1:9/x', secret, stateFile };
    assert.equal((await expectCode(startAuditStream(signer.store, { ...base, webhookUrl: 'ftp://x' }, false), 'invalid_input')).field, 'audit-stream-webhook');
    assert.equal(
      (await expectCode(startAuditStream(signer.store, { ...base, secret: randomBytes(8) }, false), 'invalid_input')).field,
      'audit-stream-secret-file',
    );
    const { writeFileSync } = await import('node:fs');
    writeFileSync(stateFile, 'nonsense');
    assert.equal((await expectCode(startAuditStream(signer.store, base, false), 'invalid_input')).field, 'audit-stream-state');
  });
});
