import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  AUDIT_KEY_INFO,
  type AuditCheckpoint,
  createApiKey,
  decodeRootKeyring,
  initializeSigner,
  openSealedRoot,
  parseAuditCheckpoint,
  parseAuditPublicKey,
  readAuditCheckpointPages,
  readAuditPages,
  verifyAuditCheckpointSignature,
  verifyAuditLog,
} from '@custos/kernel';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { mnemonicToSeedSync } from '@scure/bip39';
import { createLogger } from './createLogger.js';
import { openStore } from './openStore.js';
import { startServer } from './startServer.js';
import {
  createTestSigner,
  freshTestStoreLocation,
  recordTestSecret,
  runSql,
  TEST_MNEMONIC,
  TEST_PASSPHRASE,
  testArtifactsDir,
  type TestSigner,
} from './testing/createTestSigner.js';

// Signed audit checkpoints (issue 9, point 7): when the kernel makes them, that they commit to the
// chain's head under the key `init` printed, where they go, and that the audit key stays inside.

/** Polls `read` until `done` holds, within a wide limit (a loaded machine is slow, never wrong). */
async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string, limitMs = 20_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const getKey = (signer: TestSigner, keyIndex: number) =>
  signer.app.inject({ method: 'GET', url: `/v1/keys?walletName=alice&keyIndex=${keyIndex}`, headers: signer.auth() });

async function headOf(signer: { store: Pick<TestSigner['store'], 'readAudit'> }): Promise<{ seq: number; hash: string }> {
  const records = await signer.store.readAudit(1, 1_000_000);
  const last = records.at(-1);
  return last === undefined ? { seq: 0, hash: '' } : { seq: last.seq, hash: last.hash };
}

/** The audit signing key's secret, computed the documented way from the sealed root (for the secret scan only). */
async function auditSecretOf(store: Pick<TestSigner['store'], 'getMeta'>): Promise<Uint8Array> {
  const meta = await store.getMeta();
  assert.ok(meta !== undefined);
  const root = await openSealedRoot(meta.sealedRoot, meta.signerId, { type: 'passphrase', passphrase: new TextEncoder().encode(TEST_PASSPHRASE) });
  const keyring = decodeRootKeyring(root);
  return hkdf(sha256, keyring.barrierKey, undefined, new TextEncoder().encode(AUDIT_KEY_INFO), 32);
}

function recordAuditSecret(secret: Uint8Array): void {
  recordTestSecret('audit signing key (hex)', Buffer.from(secret).toString('hex'));
  recordTestSecret('audit signing key (base64)', Buffer.from(secret).toString('base64'));
  recordTestSecret('audit signing key (base64url)', Buffer.from(secret).toString('base64url'));
}

function assertCommitsToHead(checkpoint: AuditCheckpoint, head: { seq: number; hash: string }, auditPublicKey: string, signerId: string): void {
  assert.deepEqual(
    { seq: checkpoint.seq, headHash: checkpoint.headHash, signerId: checkpoint.signerId, publicKey: checkpoint.publicKey },
    {
      seq: head.seq,
      headHash: head.hash,
      signerId,
      publicKey: auditPublicKey,
    },
  );
  assert.equal(verifyAuditCheckpointSignature(checkpoint, parseAuditPublicKey(auditPublicKey)), true);
}

describe('audit checkpoints in the kernel', () => {
  it('are made every N committed units, commit to the head, verify under the key init printed, and reach onCheckpoint', async () => {
    const heard: AuditCheckpoint[] = [];
    const signer = await createTestSigner({ auditCheckpoints: { every: 5, onCheckpoint: (c) => heard.push(c) } });
    try {
      recordAuditSecret(await auditSecretOf(signer.store));
      for (let i = 0; i < 4; i += 1) assert.equal((await getKey(signer, i)).statusCode, 200);
      // init's sys.init and store.mac_records (seq 1, 2) and apikey.create (seq 3, before the kernel opened), then the
      // kernel's units: unseal + 4 derivations = 5, so the fifth commit (seq 8) starts the checkpoint
      const stored = await waitFor(
        () => signer.store.readAuditCheckpoints(1, 100),
        (c) => c.length === 1,
        'the first checkpoint',
      );
      const [first] = stored;
      assert.ok(first !== undefined);
      assertCommitsToHead(first, await headOf(signer), signer.auditPublicKey, signer.signerId);
      assert.equal(first.seq, 8);
      await waitFor(
        async () => heard.length,
        (n) => n === 1,
        'onCheckpoint (called right after the commit)',
      );
      assert.deepEqual(heard, stored, 'each stored checkpoint is handed to the export, once');
      for (let i = 0; i < 10; i += 1) assert.equal((await getKey(signer, i)).statusCode, 200);
      const all = await waitFor(
        () => signer.store.readAuditCheckpoints(1, 100),
        (c) => c.length === 3,
        'two more checkpoints',
      );
      assert.deepEqual(
        all.map((c) => c.seq),
        [8, 13, 18],
      );
      // status shows the key while unsealed (a convenience: the anchor is init's print)
      assert.equal((await signer.app.inject({ method: 'GET', url: '/v1/sys/status' })).json().auditPublicKey, signer.auditPublicKey);
      const report = await verifyAuditLog({
        records: readAuditPages(signer.store),
        checkpoints: readAuditCheckpointPages(signer.store),
        signerId: signer.signerId,
        trustedKey: parseAuditPublicKey(signer.auditPublicKey),
      });
      assert.deepEqual({ ok: report.ok, checkpoints: report.checkpoints, unprotected: report.unprotected }, { ok: true, checkpoints: 3, unprotected: 0 });
    } finally {
      await signer.close();
    }
  });

  it('a checkpoint row a database writer inserted beyond the head does not switch checkpointing off: it is reported and the real head signed', async () => {
    const heard: AuditCheckpoint[] = [];
    const errors: Array<{ code: string; details: unknown }> = [];
    const signer = await createTestSigner({
      auditCheckpoints: { every: 5, onCheckpoint: (c) => heard.push(c), onError: (e) => errors.push({ code: e.code, details: e.details }) },
    });
    try {
      const forged = 1_000_000;
      await runSql(signer.store, 'INSERT INTO audit_checkpoints (seq, signer_id, head_hash, ts, public_key, signature) VALUES ($1, $2, $3, $4, $5, $6)', [
        forged,
        signer.signerId,
        'ef'.repeat(32),
        Date.now(),
        'cd'.repeat(32),
        'ab'.repeat(64),
      ]);
      for (let i = 0; i < 6; i += 1) assert.equal((await getKey(signer, i)).statusCode, 200);
      const genuine = await waitFor(
        async () => (await signer.store.readAuditCheckpoints(1, 100)).filter((c) => c.seq !== forged),
        (c) => c.length >= 1,
        'a genuine checkpoint despite the forged row',
      );
      const [first] = genuine;
      assert.ok(first !== undefined);
      assertCommitsToHead(first, (await signer.store.readAudit(first.seq, 1))[0] ?? { seq: 0, hash: '' }, signer.auditPublicKey, signer.signerId);
      await waitFor(
        async () => heard.length,
        (n) => n >= 1,
        'the genuine checkpoint exported',
      );
      assert.deepEqual(heard[0], first);
      // reported with the head it was found beyond (requests may commit before the head is signed)
      const headSeq = (errors[0]?.details as { headSeq?: number } | undefined)?.headSeq ?? Number.NaN;
      assert.ok(headSeq >= 6 && headSeq <= first.seq, String(headSeq));
      assert.deepEqual(errors[0], { code: 'record_unreadable', details: { field: 'audit_checkpoints', seq: forged, headSeq } });
      // the next checkpoints are made too, and the forged row is reported once, not at each
      for (let i = 6; i < 11; i += 1) assert.equal((await getKey(signer, i)).statusCode, 200);
      await waitFor(
        async () => heard.length,
        (n) => n >= 2,
        'the next checkpoint',
      );
      assert.equal(errors.length, 1, JSON.stringify(errors));
      // and `custos audit verify --audit-public-key` reports the forged row
      const report = await verifyAuditLog({
        records: readAuditPages(signer.store),
        checkpoints: readAuditCheckpointPages(signer.store),
        signerId: signer.signerId,
        trustedKey: parseAuditPublicKey(signer.auditPublicKey),
      });
      assert.equal(report.ok, false);
      assert.equal((report.fault as { seq?: number } | undefined)?.seq, forged, JSON.stringify(report.fault));
    } finally {
      await signer.close();
    }
  });

  it('are made at a seal on demand, over the sys.seal record, before the audit key is wiped; none while sealed', async () => {
    const signer = await createTestSigner({ scopes: ['derive', 'admin'] });
    try {
      for (let i = 0; i < 3; i += 1) assert.equal((await getKey(signer, i)).statusCode, 200);
      assert.deepEqual(await signer.store.readAuditCheckpoints(1, 100), [], 'fewer than 1000 units: none yet');
      const sealed = await signer.app.inject({ method: 'POST', url: '/v1/sys/seal', headers: signer.auth() });
      assert.equal(sealed.statusCode, 200, sealed.body);
      assert.equal(sealed.json().auditPublicKey, null, 'no key shown while sealed');
      const head = await headOf(signer);
      assert.equal((await signer.store.readAudit(head.seq, 1))[0]?.action, 'sys.seal');
      const [checkpoint, ...more] = await signer.store.readAuditCheckpoints(1, 100);
      assert.ok(checkpoint !== undefined);
      assert.equal(more.length, 0);
      assertCommitsToHead(checkpoint, head, signer.auditPublicKey, signer.signerId);
      assert.equal(signer.kernel.secretBufferState().lastWiped?.nonZero, 0, 'every key wiped, the audit key included');
      await assert.rejects(signer.kernel.checkpoint(), { code: 'sealed' });
    } finally {
      await signer.close();
    }
  });
});

describe('audit checkpoints in the server (startServer)', () => {
  it('every interval when the log grew, at shutdown; appended to a file (JSON lines) and POSTed to a webhook as they are made', async () => {
    const location = freshTestStoreLocation();
    const passphrase = new TextEncoder().encode(TEST_PASSPHRASE);
    const setup = await openStore(location);
    const { signerId, auditPublicKey } = await initializeSigner({
      store: setup,
      passphrase,
      master: { kind: 'seed', seed: mnemonicToSeedSync(TEST_MNEMONIC) },
      derivation: 'custos-v1',
      scrypt: { N: 2 ** 10, r: 8, p: 1 },
    });
    const { token } = await createApiKey(setup, { name: 'checkpoints', scopes: ['derive'] });
    recordTestSecret('apiKey checkpoints', token);
    recordAuditSecret(await auditSecretOf(setup));
    await setup.close();

    // the webhook: a local HTTP server that keeps what it is sent, failing the first POST (retried)
    const posted: unknown[] = [];
    let refused = 0;
    const hook = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (refused === 0) {
          refused += 1;
          res.writeHead(503).end();
          return;
        }
        posted.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    const file = join(testArtifactsDir(), `checkpoints-${process.pid}-${Date.now()}.jsonl`);
    const logFile = join(testArtifactsDir(), `checkpoints-server-${process.pid}-${Date.now()}.log`);
    const logger = createLogger({ level: 'debug', destination: (await import('pino')).pino.destination({ dest: logFile, sync: true }) });
    const server = await startServer({
      store: location,
      port: 0,
      passphrase,
      logger,
      auditCheckpoints: {
        every: 0,
        intervalSeconds: 0.1,
        file,
        webhookUrl: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/checkpoints`,
        retryDelayMs: 10,
      },
    });
    const fileLines = () => {
      const text = readFileSync(file, 'utf8');
      return text === ''
        ? []
        : text
            .trimEnd()
            .split('\n')
            .map((line) => parseAuditCheckpoint(JSON.parse(line)));
    };
    try {
      const derive = async (i: number) => {
        const response = await fetch(`${server.url}/v1/keys?walletName=bob&keyIndex=${i}`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(response.status, 200);
        const status = (await (await fetch(`${server.url}/v1/sys/status`)).json()) as Record<string, unknown>;
        assert.equal(status.auditPublicKey, auditPublicKey);
      };
      // the timer (count off): each time the log grew, a checkpoint of the head comes, exported
      for (const i of [0, 1, 2]) {
        await derive(i);
        const head = await headOf(server.kernel);
        const lines = await waitFor(
          async () => fileLines(),
          (l) => l.at(-1)?.seq === head.seq,
          `the timer’s checkpoint of seq ${head.seq} in the file`,
        );
        assertCommitsToHead(lines.at(-1) as AuditCheckpoint, head, auditPublicKey, signerId);
      }
      await waitFor(
        async () => posted.length,
        (n) => n === fileLines().length,
        'the webhook’s deliveries (the first after one refusal)',
      );
      assert.equal(refused, 1);
    } finally {
      await server.close();
    }
    // shutdown: with the timer an hour away and the count off, close() signs the head before the seal
    const quiet = await startServer({
      store: location,
      port: 0,
      passphrase,
      logger,
      auditCheckpoints: { every: 0, intervalSeconds: 3600, file, webhookUrl: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/checkpoints` },
    });
    const stored = async () => {
      const store = await openStore(location);
      try {
        return { head: await headOf({ store }), checkpoints: await store.readAuditCheckpoints(1, 100) };
      } finally {
        await store.close();
      }
    };
    try {
      const response = await fetch(`${quiet.url}/v1/keys?walletName=bob&keyIndex=9`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(response.status, 200);
      const before = await stored();
      assert.ok((before.checkpoints.at(-1)?.seq ?? 0) < before.head.seq, 'nothing signed the new records yet');
    } finally {
      await quiet.close();
      await new Promise<void>((resolve) => hook.close(() => resolve()));
    }
    const after = await stored();
    const lines = fileLines();
    assertCommitsToHead(lines.at(-1) as AuditCheckpoint, after.head, auditPublicKey, signerId);
    assert.deepEqual(lines, after.checkpoints, 'the file holds every stored checkpoint, in order, once');
    assert.deepEqual(posted, lines, 'so does the webhook');
    assert.match(readFileSync(logFile, 'utf8'), /audit checkpoint export failed: webhook answered 503/);
  });

  it('refuses to start with an audit checkpoint file it cannot open, or a webhook that is not an http(s) URL', async () => {
    const location = freshTestStoreLocation();
    await assert.rejects(
      startServer({ store: location, port: 0, logger: false, auditCheckpoints: { file: join(testArtifactsDir(), 'no-such-dir', 'x.jsonl') } }),
      { code: 'invalid_input', details: { field: 'audit-checkpoint-file' } },
    );
    await assert.rejects(startServer({ store: location, port: 0, logger: false, auditCheckpoints: { webhookUrl: 'file:///etc/passwd' } }), {
      code: 'invalid_input',
      details: { field: 'audit-checkpoint-webhook' },
    });
  });
});
