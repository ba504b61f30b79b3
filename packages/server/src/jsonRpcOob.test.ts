import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { parseTransaction, recoverTransactionAddress } from 'viem';
import { createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { startTestDelivery, type TestDelivery } from './testing/startTestDelivery.js';

// Issue 12, points 2 and 4 together: a JSON-RPC signing call for a wallet whose factor is a delivery
// address makes the kernel send the approval message (one-line summary, link, code) to that address
// (a real SMTP server in this process); the code typed on the approval page approves it, and the
// identical request then returns the signed transaction. eth_signTransaction with every field given
// needs no upstream node, so the test stays in process (buildApp + inject).

type Hex = `0x${string}`;
const PUBLIC_URL = 'http://localhost:8433';
const T0 = Date.UTC(2026, 11, 7, 16, 0, 0);
const TO = '0x3535353535353535353535353535353535353535';

function cookieOf(res: LightMyRequestResponse): string {
  const m = /^custos_form=([A-Za-z0-9_-]{43}); Path=\/(?:approve|enroll)\/; HttpOnly; SameSite=Strict$/.exec(String(res.headers['set-cookie'] ?? ''));
  assert.ok(m?.[1], 'the form cookie');
  return m[1];
}

function csrfOf(body: string): string {
  const m = /name="csrf" value="([0-9a-f]{64})"/.exec(body);
  assert.ok(m?.[1], 'the page has a form token');
  return m[1];
}

describe('the JSON-RPC signer delivers the approval through the wallet’s channel', () => {
  let signer: TestSigner;
  let delivery: TestDelivery;

  before(async () => {
    // --rpc-wait 0: the call answers approval_pending at once (the wait itself is tested in jsonRpcSigner.test.ts)
    signer = await createTestSigner({ startMs: T0, appOptions: { publicUrl: PUBLIC_URL, rpcWaitSeconds: 0 }, kernelOptions: { oob: { channels: ['email'] } } });
    delivery = await startTestDelivery(signer, { publicUrl: PUBLIC_URL });
  });
  after(async () => {
    await delivery.close();
    await signer.close();
  });

  const form = (url: string, cookie: string, fields: Record<string, string>) =>
    signer.app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `custos_form=${cookie}`, origin: PUBLIC_URL },
      payload: new URLSearchParams(fields).toString(),
    });

  const rpc = async (method: string, params: unknown[]) => {
    const res = await signer.app.inject({
      method: 'POST',
      url: '/v1/rpc',
      headers: { ...signer.auth(), 'content-type': 'application/json' },
      payload: JSON.stringify({ jsonrpc: '2.0', id: 3, method, params }),
    });
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as { result?: unknown; error?: { code: number; message: string; data?: Record<string, unknown> } };
  };

  it('eth_signTransaction: the message (summary, link, code) goes to the address; the code on the page approves; the identical request signs', async () => {
    // The owner sets the address on the enrolment page and types back the code sent there.
    const created = await signer.app.inject({
      method: 'POST',
      url: '/v1/enrollments',
      headers: signer.auth(),
      payload: { walletName: 'rpc-oob', kind: 'oob' },
    });
    assert.equal(created.statusCode, 201, created.body);
    const enrollPath = new URL(created.json().enrollUrl as string).pathname;
    recordTestSecret('enrollmentCapability', enrollPath.split('/').at(-1) as string);
    const page = await signer.app.inject({ method: 'GET', url: enrollPath });
    const cookie = cookieOf(page);
    const csrf = csrfOf(page.body);
    assert.equal((await form(enrollPath, cookie, { csrf, channel: 'email', address: 'owner@example.com' })).statusCode, 200);
    const confirm = await delivery.deliver();
    assert.match((await form(enrollPath, cookie, { csrf, code: confirm.code })).body, /Signing codes active/);

    const registered = await signer.app.inject({
      method: 'POST',
      url: '/v1/rpc/accounts',
      headers: signer.auth(),
      payload: { walletName: 'rpc-oob', keyIndex: 0 },
    });
    assert.equal(registered.statusCode, 200, registered.body);
    const from = (registered.json() as { address: Hex }).address;
    const tx = {
      from,
      to: TO,
      value: '0xde0b6b3a7640000',
      chainId: '0x2105',
      nonce: '0x4',
      gas: '0x5208',
      maxFeePerGas: '0x77359400',
      maxPriorityFeePerGas: '0xf4240',
    };

    const first = await rpc('eth_signTransaction', [tx]);
    assert.equal(first.error?.code, 4100, JSON.stringify(first));
    assert.equal(first.error?.data?.code, 'approval_pending');
    const approvalId = first.error?.data?.approvalId as string;
    const approveUrl = first.error?.data?.approveUrl as string;
    assert.ok(approveUrl.startsWith(`${PUBLIC_URL}/approve/`));
    const approvePath = new URL(approveUrl).pathname;
    recordTestSecret('approvalCapability', approvePath.split('/').at(-1) as string);

    // The kernel sent the approval message to the wallet's address: its summary, its link and a code.
    const message = await delivery.deliver();
    assert.equal(message.to, 'owner@example.com');
    assert.ok(message.text.includes(approveUrl), 'the message links to the approval page');
    const view = await signer.app.inject({ method: 'GET', url: `/v1/approvals/${approvalId}`, headers: signer.auth() });
    assert.equal(view.statusCode, 200, view.body);
    const summaryLine = (view.json() as { summaryText: string }).summaryText.split('\n')[0] as string;
    assert.match(summaryLine, /1 ETH/, 'the summary names the amount');
    assert.ok(message.text.includes(summaryLine), `the one-line summary is in the message: ${summaryLine}`);
    assert.equal(view.json().delivery.status, 'sent');
    assert.ok(!view.body.includes(message.code) && !JSON.stringify(first).includes(message.code), 'the backend never sees the code');

    // Still pending: the identical request answers approval_pending again (no second approval, no second message).
    const again = await rpc('eth_signTransaction', [tx]);
    assert.equal(again.error?.data?.code, 'approval_pending');
    assert.equal(again.error?.data?.approvalId, approvalId);

    // The owner types the code on the approval page.
    const shown = await signer.app.inject({ method: 'GET', url: approvePath });
    assert.equal(shown.statusCode, 200);
    const approved = await form(approvePath, cookieOf(shown), { csrf: csrfOf(shown.body), decision: 'approve', kind: 'oob', code: message.code });
    assert.equal(approved.statusCode, 200, approved.body);

    // The identical request now returns the signed transaction, from the wallet's address.
    const signed = await rpc('eth_signTransaction', [tx]);
    assert.equal(signed.error, undefined, JSON.stringify(signed));
    const raw = signed.result as Hex;
    const parsed = parseTransaction(raw);
    assert.equal(parsed.to, TO);
    assert.equal(parsed.value, 10n ** 18n);
    assert.equal(parsed.chainId, 8453);
    assert.equal(parsed.nonce, 4);
    assert.equal((await recoverTransactionAddress({ serializedTransaction: raw as never })).toLowerCase(), from.toLowerCase());
    assert.equal(delivery.mail.received.length, 2, 'one enrolment message, one approval message');
  });
});
