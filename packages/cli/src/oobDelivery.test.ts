import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { createApiKey, Kernel } from '@custos/kernel';
import { codeOf, startMailServer } from '@custos/server/testing';
import { assertFailure, freshStoreLocation, recordTestSecret, runCli, runSql, secretInputs, serve, storeArgs, withStore } from './testing/cliHarness.js';

// Issue 12, point 2: a SIGKILL between the commit of an approval and the sending of its message
// loses no message. One real `custos serve` is killed the moment it starts talking to the mail server
// (a server that accepts and never answers); the next one sends the message from the outbox once
// the dead sender's lease has run out, to a real SMTP server, and its code approves the approval.

const inputs = secretInputs('custos-cli-oob');
const TX = {
  type: 'eip1559',
  chainId: 1,
  nonce: 0,
  to: '0x3535353535353535353535353535353535353535',
  value: '1',
  data: '0x',
  gas: '21000',
  maxFeePerGas: '2000000000',
  maxPriorityFeePerGas: '1000000',
};

describe('custos serve: the outbox across a SIGKILL', () => {
  it('a message committed with its approval is sent by the next process', { timeout: 120_000 }, async (t) => {
    const store = freshStoreLocation();
    const passphrase = `pp-${randomBytes(18).toString('base64url')}`;
    recordTestSecret('cli oob passphrase', passphrase);
    const passphraseFile = inputs.write('passphrase', `${passphrase}\n`);
    const init = await runCli(['init', ...storeArgs(store), '--passphrase-file', passphraseFile, '--scrypt-log-n', '10']);
    assert.equal(init.code, 0, init.stderr);
    const mail = await startMailServer();
    t.after(() => mail.close());

    // The channel options, refused before anything listens: exit 2, invalid_input naming the option.
    const args = ['serve', ...storeArgs(store), '--port', '0'];
    assertFailure(await runCli([...args, '--smtp-url', mail.url]), 2, 'invalid_input', '--mail-from');
    assertFailure(await runCli([...args, '--smtp-url', 'http://mail.example.com', '--mail-from', 'a@b.c']), 2, 'invalid_input', '--smtp-url');
    assertFailure(await runCli([...args, '--webhook-url', 'https://push.example.com/custos']), 2, 'invalid_input', '--webhook-secret-file');
    assertFailure(await runCli([...args, '--smtp-url', mail.url, '--mail-from', 'a@b.c', '--oob-code-ttl', '900']), 2, 'invalid_input', '--oob-code-ttl');

    // The owner's address, set and confirmed in this process (the kernel's own entry points).
    const apiKey = await withStore(store, async (opened) => {
      const { token } = await createApiKey(opened, { name: 'oob', scopes: ['register', 'sign'], tenant: 'default' });
      const kernel = await Kernel.open({ store: opened, oob: {} });
      try {
        await kernel.unseal(new TextEncoder().encode(passphrase));
        const app = await kernel.authenticateApiKey(token);
        const link = await kernel.createEnrollment(app, { walletName: 'killed', kind: 'oob' });
        recordTestSecret('enrollmentCapability', link.capability);
        await kernel.setEnrollmentAddress(link.capability, { channel: 'email', address: 'killed@example.com' });
        const [message] = await kernel.claimDeliveries();
        assert.ok(message?.code !== undefined);
        recordTestSecret('oobCode', message.code);
        await kernel.settleDelivery(message, { ok: true });
        assert.equal((await kernel.completeEnrollment(link.capability, { proof: message.code })).state, 'completed');
      } finally {
        kernel.seal();
      }
      return token;
    });
    recordTestSecret('apiKey', apiKey);

    // A mail server that accepts and never answers: the sender is caught between claim and send.
    const sockets: Socket[] = [];
    let connected: () => void = () => undefined;
    const firstConnection = new Promise<void>((resolve) => {
      connected = resolve;
    });
    const dead = createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => undefined);
      connected();
    });
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', () => resolve()));
    t.after(() => {
      for (const s of sockets) s.destroy();
      dead.close();
    });
    const deadUrl = `smtp://127.0.0.1:${(dead.address() as { port: number }).port}?ignoreTLS=true&timeout=1`;
    const first = await serve(store, ['--passphrase-file', passphraseFile, '--smtp-url', deadUrl, '--mail-from', 'custos@example.com']);
    t.after(() => first.stop());
    const response = await fetch(`${first.url}/v1/approvals`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ walletName: 'killed', keyIndex: 0, operation: { transaction: TX } }),
    });
    assert.equal(response.status, 201, await response.clone().text());
    const created = (await response.json()) as { id: string; approveUrl: string };
    recordTestSecret('approveUrl', created.approveUrl);
    await firstConnection;
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    assert.equal(first.child.signalCode, 'SIGKILL');
    const [row] = await runSql(store, 'SELECT status, attempts, lease_until FROM outbox WHERE approval_id = $1', [created.id]);
    assert.equal(row?.status, 'queued', 'claimed, not sent, not lost');
    assert.equal(Number(row?.attempts), 0);
    assert.ok(row?.lease_until !== null, 'held by the dead sender’s lease');

    const started = Date.now();
    const second = await serve(store, ['--passphrase-file', passphraseFile, '--smtp-url', mail.url, '--mail-from', 'custos@example.com']);
    t.after(() => second.stop());
    const message = await mail.nextMail(0, 60_000);
    console.log(`the message arrived ${Date.now() - started} ms after the restart (the dead sender's lease ran out)`);
    assert.equal(message.to, 'killed@example.com');
    const approvePath = new URL(created.approveUrl).pathname;
    assert.ok(message.text.includes(approvePath), 'the approval link');
    const code = codeOf(message.text);
    recordTestSecret('oobCode', code);
    const status = await fetch(`${second.url}/v1/approvals/${created.id}`, { headers: { authorization: `Bearer ${apiKey}` } });
    const view = (await status.json()) as { delivery?: { status: string } };
    assert.equal(view.delivery?.status, 'sent');
    assert.ok(!JSON.stringify(view).includes(code));
    await second.stop();

    // The code from the message approves the approval.
    await withStore(store, async (opened) => {
      const kernel = await Kernel.open({ store: opened, oob: {} });
      try {
        await kernel.unseal(new TextEncoder().encode(passphrase));
        const capability = approvePath.split('/').at(-1) as string;
        assert.equal((await kernel.decideApproval(capability, { decision: 'approve', kind: 'oob', proof: code })).state, 'approved');
      } finally {
        kernel.seal();
      }
    });
  });
});
