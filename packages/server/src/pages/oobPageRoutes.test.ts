import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { createTestSigner, recordTestSecret, type TestSigner } from '../testing/createTestSigner.js';
import { codeOf } from '../testing/startMailServer.js';
import { startTestDelivery, type TestDelivery } from '../testing/startTestDelivery.js';

// Issue 12, point 2 through the kernel's pages: the owner sets the delivery address on the enrolment
// page and types back the code sent there; an approval's code is typed on the approval page, with
// a resend button that never resets a count. A real SMTP server in this process carries every code.

const PUBLIC_URL = 'http://localhost:8431';
const T0 = Date.UTC(2026, 11, 7, 14, 0, 0);
const TX = {
  type: 'eip1559',
  chainId: 10,
  nonce: 4,
  to: '0x3535353535353535353535353535353535353535',
  value: '5',
  data: '0x',
  gas: '21000',
  maxFeePerGas: '2000000000',
  maxPriorityFeePerGas: '1000000',
};

function cookieOf(res: LightMyRequestResponse, path: '/approve/' | '/enroll/'): string {
  const m = new RegExp(`^custos_form=([A-Za-z0-9_-]{43}); Path=${path}; HttpOnly; SameSite=Strict$`).exec(String(res.headers['set-cookie'] ?? ''));
  assert.ok(m?.[1], 'the form cookie');
  return m[1];
}

function csrfOf(body: string): string {
  const m = /name="csrf" value="([0-9a-f]{64})"/.exec(body);
  assert.ok(m?.[1], 'the page has a form token');
  return m[1];
}

function alertCode(body: string): string | undefined {
  return /role="alert"[^>]*data-code="([a-z_]+)"|data-code="([a-z_]+)"[^>]*role="alert"/
    .exec(body)
    ?.slice(1)
    .find((x) => x !== undefined);
}

describe('delivered codes on the kernel’s pages', () => {
  let signer: TestSigner;
  let delivery: TestDelivery;

  before(async () => {
    signer = await createTestSigner({ startMs: T0, appOptions: { publicUrl: PUBLIC_URL }, kernelOptions: { oob: { channels: ['email'] } } });
    delivery = await startTestDelivery(signer, { publicUrl: PUBLIC_URL });
  });
  after(async () => {
    await delivery.close();
    await signer.close();
  });

  function post(url: string, cookie: string, fields: Record<string, string>) {
    return signer.app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `custos_form=${cookie}`, origin: PUBLIC_URL },
      payload: new URLSearchParams(fields).toString(),
    });
  }

  it('enrolment page: address, code sent there, code typed back; then an approval is approved on its page, resend included', async () => {
    const created = await signer.app.inject({ method: 'POST', url: '/v1/enrollments', headers: signer.auth(), payload: { walletName: 'paged', kind: 'oob' } });
    assert.equal(created.statusCode, 201, created.body);
    const enrollPath = new URL(created.json().enrollUrl as string).pathname;
    recordTestSecret('enrollmentCapability', enrollPath.split('/').at(-1) as string);
    const page = await signer.app.inject({ method: 'GET', url: enrollPath });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /id="oob-address"/);
    assert.doesNotMatch(page.body, /id="oob-confirm"/, 'no code form before an address');
    assert.doesNotMatch(page.body, /<select/, 'one channel on this signer: no choice');
    const cookie = cookieOf(page, '/enroll/');
    const csrf = csrfOf(page.body);
    const refused = await post(enrollPath, cookie, { csrf, channel: 'webhook', address: 'user-1' });
    assert.equal(refused.statusCode, 400, 'a channel this signer does not deliver on');
    const sent = await post(enrollPath, cookie, { csrf, channel: 'email', address: 'paged@example.com' });
    assert.equal(sent.statusCode, 200, sent.body);
    assert.match(sent.body, /id="oob-confirm"/);
    assert.doesNotMatch(sent.body, /paged@example\.com/, 'the address is not shown back');
    const { code } = await delivery.deliver();
    const wrong = await post(enrollPath, cookie, { csrf, code: code === '00000000' ? '00000001' : '00000000' });
    assert.equal(wrong.statusCode, 403);
    assert.equal(alertCode(wrong.body), 'code_invalid');
    const done = await post(enrollPath, cookie, { csrf, code });
    assert.equal(done.statusCode, 200);
    assert.match(done.body, /Signing codes active/);

    const approval = await signer.app.inject({
      method: 'POST',
      url: '/v1/approvals',
      headers: signer.auth(),
      payload: { walletName: 'paged', keyIndex: 0, operation: { transaction: TX } },
    });
    assert.equal(approval.statusCode, 201, approval.body);
    const { id, approveUrl } = approval.json() as { id: string; approveUrl: string };
    const approvePath = new URL(approveUrl).pathname;
    recordTestSecret('approvalCapability', approvePath.split('/').at(-1) as string);
    const first = await delivery.deliver();
    assert.ok(first.text.includes(approveUrl), 'the message links to the approval page');
    const status = await signer.app.inject({ method: 'GET', url: `/v1/approvals/${id}`, headers: signer.auth() });
    assert.equal(status.json().delivery.status, 'sent');
    assert.ok(!status.body.includes(first.code), 'the backend never sees the code');

    const shown = await signer.app.inject({ method: 'GET', url: approvePath });
    assert.match(shown.body, /id="oob-form"/);
    assert.match(shown.body, /id="oob-resend"/);
    const aCookie = cookieOf(shown, '/approve/');
    const aCsrf = csrfOf(shown.body);
    const resent = await post(approvePath, aCookie, { csrf: aCsrf, decision: 'resend' });
    assert.equal(resent.statusCode, 200);
    const second = await delivery.deliver();
    const old = await post(approvePath, aCookie, { csrf: aCsrf, decision: 'approve', kind: 'oob', code: first.code });
    assert.equal(old.statusCode, 403, 'the earlier code died with the resend');
    assert.equal(alertCode(old.body), 'code_invalid');
    const approved = await post(approvePath, aCookie, { csrf: aCsrf, decision: 'approve', kind: 'oob', code: second.code });
    assert.equal(approved.statusCode, 200, approved.body);
    const after = await signer.app.inject({ method: 'GET', url: `/v1/approvals/${id}`, headers: signer.auth() });
    assert.equal(after.json().state, 'approved');
    assert.equal(after.json().factor, 'oob');
    const late = await signer.app.inject({ method: 'POST', url: `/v1/approvals/${id}/resend`, headers: signer.auth() });
    assert.equal(late.statusCode, 409);
    assert.equal(late.json().error.code, 'approval_decided');
  });

  it('changing the address on the page: a code to the current address (its own button) and the new address’s code; without the first, nothing changes', async () => {
    const open = async () => {
      const created = await signer.app.inject({
        method: 'POST',
        url: '/v1/enrollments',
        headers: signer.auth(),
        payload: { walletName: 'moving', kind: 'oob' },
      });
      assert.equal(created.statusCode, 201, created.body);
      const path = new URL(created.json().enrollUrl as string).pathname;
      recordTestSecret('enrollmentCapability', path.split('/').at(-1) as string);
      const page = await signer.app.inject({ method: 'GET', url: path });
      return { path, page, cookie: cookieOf(page, '/enroll/'), csrf: csrfOf(page.body) };
    };
    const first = await open();
    assert.doesNotMatch(first.page.body, /id="oob-current"/, 'a first address needs no consent');
    await post(first.path, first.cookie, { csrf: first.csrf, channel: 'email', address: 'before@example.com' });
    assert.match((await post(first.path, first.cookie, { csrf: first.csrf, code: (await delivery.deliver()).code })).body, /Signing codes active/);

    const change = await open();
    assert.match(change.page.body, /<h1>Change the address for signing codes<\/h1>/);
    assert.match(change.page.body, /id="oob-current"/);
    const sent = await post(change.path, change.cookie, { csrf: change.csrf, channel: 'email', address: 'after@example.com' });
    assert.match(sent.body, /name="currentCode"/, 'the confirm form asks for the current address’s code too');
    const confirm = await delivery.deliver();
    const without = await post(change.path, change.cookie, { csrf: change.csrf, code: confirm.code });
    assert.equal(without.statusCode, 403);
    assert.equal(alertCode(without.body), 'code_required');
    assert.match(without.body, /needs the code sent to your current address/);
    const count = delivery.mail.received.length;
    const asked = await post(change.path, change.cookie, { csrf: change.csrf, decision: 'change-code' });
    assert.equal(asked.statusCode, 200, asked.body);
    await delivery.loop.runOnce();
    const toCurrent = await delivery.mail.nextMail(count);
    assert.equal(toCurrent.to, 'before@example.com');
    const currentCode = codeOf(toCurrent.text);
    recordTestSecret('oobCode', currentCode);
    const after = delivery.mail.received.length;
    const done = await post(change.path, change.cookie, { csrf: change.csrf, code: confirm.code, currentCode });
    assert.equal(done.statusCode, 200, done.body);
    // Issue 13: the new address waits out the timelock's delay; the old address is told at once, with the cancel link.
    assert.match(done.body, /Change requested/);
    await delivery.loop.runOnce();
    const told = await delivery.mail.nextMail(after);
    assert.equal(told.to, 'before@example.com', 'the old address is told');
    assert.match(told.text, /\/changes\/[A-Za-z0-9_-]{43}/);
  });

  // last: it moves the shared clock an hour on
  it('attack: new enrolment links do not multiply the address checks a wallet gets per hour (delivery_limited at the wallet’s cap)', async () => {
    let queued = 0;
    let refusal: string | undefined;
    // 5 links × 3 address posts would be 15 messages; the wallet's cap is 10 an hour
    for (let l = 0; l < 5; l++) {
      const created = await signer.app.inject({
        method: 'POST',
        url: '/v1/enrollments',
        headers: signer.auth(),
        payload: { walletName: 'bombed', kind: 'oob' },
      });
      assert.equal(created.statusCode, 201, created.body);
      const path = new URL(created.json().enrollUrl as string).pathname;
      recordTestSecret('enrollmentCapability', path.split('/').at(-1) as string);
      const page = await signer.app.inject({ method: 'GET', url: path });
      const cookie = cookieOf(page, '/enroll/');
      for (let i = 0; i < 3; i++) {
        // an address per link: the per-address cap (3 an hour) is not what stops this
        const answer = await post(path, cookie, { csrf: csrfOf(page.body), channel: 'email', address: `victim${l}@example.com` });
        if (answer.statusCode === 200) queued++;
        else refusal = alertCode(answer.body);
      }
    }
    assert.equal(queued, 10);
    assert.equal(refusal, 'delivery_limited');
    const [rows] = await signer.sql("SELECT count(*) AS n FROM outbox WHERE wallet_name = 'bombed'");
    assert.equal(Number(rows?.n), 10);
    // an hour later the wallet may get checks again
    signer.clock.now += 3_600_001;
    const created = await signer.app.inject({ method: 'POST', url: '/v1/enrollments', headers: signer.auth(), payload: { walletName: 'bombed', kind: 'oob' } });
    const path = new URL(created.json().enrollUrl as string).pathname;
    recordTestSecret('enrollmentCapability', path.split('/').at(-1) as string);
    const page = await signer.app.inject({ method: 'GET', url: path });
    const answer = await post(path, cookieOf(page, '/enroll/'), { csrf: csrfOf(page.body), channel: 'email', address: 'victim0@example.com' });
    assert.equal(answer.statusCode, 200);
  });

  it('attack: fresh wallet names do not make the kernel mail one address without bound (3 address checks an hour per address, across wallets)', async () => {
    const answers: Array<{ status: number; code: string | undefined }> = [];
    for (const walletName of ['relay-1', 'relay-2', 'relay-3', 'relay-4']) {
      const created = await signer.app.inject({ method: 'POST', url: '/v1/enrollments', headers: signer.auth(), payload: { walletName, kind: 'oob' } });
      assert.equal(created.statusCode, 201, created.body);
      const path = new URL(created.json().enrollUrl as string).pathname;
      recordTestSecret('enrollmentCapability', path.split('/').at(-1) as string);
      const page = await signer.app.inject({ method: 'GET', url: path });
      // the same address in another spelling is the same recipient
      const address = walletName === 'relay-4' ? 'Relay-Victim@Example.com' : 'relay-victim@example.com';
      const answer = await post(path, cookieOf(page, '/enroll/'), { csrf: csrfOf(page.body), channel: 'email', address });
      answers.push({ status: answer.statusCode, code: answer.statusCode === 200 ? undefined : alertCode(answer.body) });
    }
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200, 429],
    );
    assert.equal(answers[3]?.code, 'delivery_limited');
    // nothing about the address is in the outbox but its keyed tag
    const rows = await signer.sql("SELECT * FROM outbox WHERE wallet_name LIKE 'relay-%'");
    assert.equal(rows.length, 3);
    assert.doesNotMatch(JSON.stringify(rows), /relay-victim/i);
  });
});
