import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { App } from '@custos/kernel';
import { createEmailChannel } from './delivery/emailChannel.js';
import { startDeliveryLoop } from './delivery/startDeliveryLoop.js';
import { createWebhookChannel } from './delivery/webhookChannel.js';
import { captureLogLines } from './testing/captureLogLines.js';
import { createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';

// Issue 12, points 2 and 6: the signed webhook against a Node HTTP receiver in this process (the code
// read from the received body, the signature checked from its definition), retried with back-off;
// and a dead mail server that never answers, which delays no signature.

const T0 = Date.UTC(2026, 11, 7, 11, 0, 0);
const SECRET = new TextEncoder().encode('webhook secret for tests 0123456789');
const TX = {
  type: 'eip1559',
  chainId: 1,
  nonce: 0,
  to: '0x3535353535353535353535353535353535353535',
  value: '7',
  data: '0x',
  gas: '21000',
  maxFeePerGas: '2000000000',
  maxPriorityFeePerGas: '1000000',
};

interface Received {
  signature: string;
  body: string;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function validSignature(header: string, body: string): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (m === null) return false;
  const mac = createHmac('sha256', SECRET).update(`${m[1]}.${body}`).digest();
  return timingSafeEqual(mac, Buffer.from(m[2] as string, 'hex'));
}

describe('the signed webhook channel', () => {
  let signer: TestSigner;
  let app: App;
  let receiver: Server;
  let url: string;
  const received: Received[] = [];
  /** The receiver's next answers (503 to make the sender retry); 200 when empty. */
  const answers: number[] = [];
  const log = captureLogLines();

  before(async () => {
    signer = await createTestSigner({ startMs: T0, kernelOptions: { oob: {} } });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    receiver = createServer(async (req, res) => {
      const body = await readBody(req);
      received.push({ signature: String(req.headers['x-custos-signature'] ?? ''), body });
      res.statusCode = answers.shift() ?? 200;
      res.end();
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
    url = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/custos`;
  });
  after(async () => {
    await signer.close();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  });

  it('delivers the enrolment and approval codes signed; a 503 is retried after its back-off', async () => {
    const loop = startDeliveryLoop({
      kernel: signer.kernel,
      channels: { webhook: createWebhookChannel({ url, secret: SECRET, now: () => signer.clock.now }) },
      publicUrl: () => 'https://custos.example.com',
      logger: log.logger,
      intervalMs: 3_600_000,
      now: () => signer.clock.now,
    });
    try {
      const link = await signer.kernel.createEnrollment(app, { walletName: 'hooked', kind: 'oob' });
      recordTestSecret('enrollmentCapability', link.capability);
      await signer.kernel.setEnrollmentAddress(link.capability, { channel: 'webhook', address: 'user-4711' });
      await loop.runOnce();
      const verify = received.at(-1) as Received;
      assert.ok(validSignature(verify.signature, verify.body), 'signed with the deployment secret');
      const verifyBody = JSON.parse(verify.body) as { type: string; recipient: string; code: string };
      assert.equal(verifyBody.type, 'custos.oob.verify');
      assert.equal(verifyBody.recipient, 'user-4711');
      recordTestSecret('oobCode', verifyBody.code);
      assert.equal((await signer.kernel.completeEnrollment(link.capability, { proof: verifyBody.code })).state, 'completed');

      answers.push(503);
      const created = await signer.kernel.createApproval(app, { walletName: 'hooked', keyIndex: 0, operation: { transaction: TX } });
      recordTestSecret('approvalCapability', created.capability);
      const count = received.length;
      await loop.runOnce();
      assert.equal(received.length, count + 1, 'one attempt');
      let view = await signer.kernel.getApproval(app, { id: created.id });
      assert.deepEqual(view.delivery, { status: 'queued', attempts: 1, sentAt: null }, 'retried later');
      await loop.runOnce();
      assert.equal(received.length, count + 1, 'not before its back-off');
      signer.clock.now += 2_000;
      await loop.runOnce();
      assert.equal(received.length, count + 2, 'the retry');
      view = await signer.kernel.getApproval(app, { id: created.id });
      assert.equal(view.delivery?.status, 'sent');
      const message = received.at(-1) as Received;
      assert.ok(validSignature(message.signature, message.body));
      const body = JSON.parse(message.body) as { approvalId: string; approveUrl: string; summaryText: string; code: string };
      recordTestSecret('oobCode', body.code);
      assert.equal(body.approvalId, created.id);
      assert.equal(body.approveUrl, `https://custos.example.com/approve/${created.capability}`);
      assert.equal(body.summaryText, created.summaryText);
      assert.equal((await signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'oob', proof: body.code })).state, 'approved');
    } finally {
      await loop.stop();
    }
  });

  it('a dead mail server (accepts, never answers) delays no signature and no approval', async () => {
    const sockets = new Set<Socket>();
    const dead = createTcpServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', () => resolve()));
    const port = (dead.address() as { port: number }).port;
    const email = createEmailChannel({ smtpUrl: `smtp://127.0.0.1:${port}?ignoreTLS=true`, from: 'custos@example.com', timeoutMs: 120_000 });
    const loop = startDeliveryLoop({
      kernel: signer.kernel,
      channels: { email },
      publicUrl: () => 'https://custos.example.com',
      logger: log.logger,
      intervalMs: 3_600_000,
      now: () => signer.clock.now,
    });
    try {
      const link = await signer.kernel.createEnrollment(app, { walletName: 'mailed', kind: 'oob' });
      recordTestSecret('enrollmentCapability', link.capability);
      await signer.kernel.setEnrollmentAddress(link.capability, { channel: 'email', address: 'mailed@example.com' });
      let settled = false;
      const sending = loop.runOnce().finally(() => {
        settled = true;
      });
      // The sender is stuck in the SMTP greeting; the kernel's other work goes on.
      while (sockets.size === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      const started = Date.now();
      for (let i = 0; i < 20; i++) await signer.kernel.signTransaction(app, { walletName: `plain-${i}`, keyIndex: 0, transaction: TX });
      const created = await signer.kernel.createApproval(app, { walletName: 'hooked', keyIndex: 0, operation: { transaction: { ...TX, nonce: 9 } } });
      recordTestSecret('approvalCapability', created.capability);
      const elapsed = Date.now() - started;
      console.log(`20 signatures and an approval in ${elapsed} ms while the mail server hangs`);
      assert.equal(settled, false, 'the delivery is still waiting on the mail server');
      assert.ok(elapsed < 30_000, `not held up by the mail server (${elapsed} ms)`);
      for (const socket of sockets) socket.destroy();
      await sending;
      const rows = await signer.sql("SELECT status, attempts FROM outbox WHERE wallet_name = 'mailed'");
      assert.deepEqual(
        rows.map((r) => [r.status, Number(r.attempts)]),
        [['queued', 1]],
        'the failed attempt is retried later',
      );
      email.close();
    } finally {
      await loop.stop();
      await new Promise<void>((resolve) => dead.close(() => resolve()));
    }
  });
});

describe('--webhook-trusted false: a webhook wallet’s delivered code counts present', () => {
  let signer: TestSigner;
  let app: App;

  before(async () => {
    signer = await createTestSigner({ startMs: T0, kernelOptions: { oob: { webhookTrusted: false } } });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await signer.close();
  });

  /** A wallet whose address on `channel` was confirmed (the code taken from the kernel's own claim of the message). */
  async function wallet(walletName: string, channel: 'email' | 'webhook') {
    const link = await signer.kernel.createEnrollment(app, { walletName, kind: 'oob' });
    recordTestSecret('enrollmentCapability', link.capability);
    await signer.kernel.setEnrollmentAddress(link.capability, { channel, address: channel === 'email' ? `${walletName}@example.com` : walletName });
    const [message] = await signer.kernel.claimDeliveries();
    assert.ok(message?.code !== undefined);
    recordTestSecret('oobCode', message.code);
    await signer.kernel.settleDelivery(message, { ok: true });
    await signer.kernel.completeEnrollment(link.capability, { proof: message.code });
  }

  it('requires present for a webhook wallet, bound for an e-mail wallet; the approval records the strength given', async () => {
    await wallet('push-only', 'webhook');
    await wallet('mail-only', 'email');
    const pushed = await signer.kernel.createApproval(app, { walletName: 'push-only', keyIndex: 0, operation: { transaction: TX } });
    recordTestSecret('approvalCapability', pushed.capability);
    assert.equal(pushed.requiredStrength, 'present');
    const page = await signer.kernel.openApprovalPage(pushed.capability);
    assert.deepEqual(
      page.factors.map((f) => [f.kind, f.strength]),
      [['oob', 'present']],
    );
    const [message] = await signer.kernel.claimDeliveries();
    assert.ok(message?.code !== undefined);
    recordTestSecret('oobCode', message.code);
    const decided = await signer.kernel.decideApproval(pushed.capability, { decision: 'approve', kind: 'oob', proof: message.code });
    assert.equal(decided.state, 'approved');
    const [record] = await signer.sql("SELECT detail FROM audit_log WHERE action = 'approval.approve' AND wallet_name = 'push-only'");
    assert.match(String(record?.detail), /"strength":"present"/);
    const mailed = await signer.kernel.createApproval(app, { walletName: 'mail-only', keyIndex: 0, operation: { transaction: TX } });
    recordTestSecret('approvalCapability', mailed.capability);
    assert.equal(mailed.requiredStrength, 'bound');
  });
});
