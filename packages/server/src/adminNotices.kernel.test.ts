import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ADMIN_MESSAGE_MAX_CHARS, type AdminNoticeList, type App } from '@custos/kernel';
import { writeLegacyQuorumRow } from '@custos/kernel/testing/legacyQuorumRow';
import { ADMIN_SESSION_COOKIE } from './pages/adminPageRoutes.js';
import { startServer } from './startServer.js';
import { captureLogLines } from './testing/captureLogLines.js';
import { createTestSigner, TEST_PASSPHRASE, type TestSigner } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { type CreationOptionsJSON, type RequestOptionsJSON, SoftAuthenticator } from './testing/softAuthenticator.js';
import type { ReceivedMail } from './testing/startMailServer.js';
import { startTestDelivery, type TestDelivery } from './testing/startTestDelivery.js';
import { adminEntry, adminSet, bootstrapTestQuorum, newTestAdmin, quorumDriver } from './testing/testAdmins.js';

// Issue 13 points 3 and 4, "every admin is told": a new admin set in which one admin has no e-mail
// address is refused (bootstrap, quorum.set at propose time); every notice (freeze, unfreeze,
// proposal, applied proposal) reaches every admin by e-mail, read from a real SMTP server, and is kept
// in full in the audit log — listed newest first by GET /v1/admin/notices and on the admin page
// (with a session only); an e-mail longer than its bound ends with a pointer to the full text; a
// signer with a quorum and no SMTP does not start; a set made by an earlier version without
// addresses keeps working and says who is told nothing. On the store of the pass (SQLite, PostgreSQL).

const ORIGIN = 'http://localhost:8611';
const T0 = Date.UTC(2026, 11, 7, 12, 0, 0);
const credential = () => ({ type: 'passphrase' as const, passphrase: new TextEncoder().encode(TEST_PASSPHRASE) });

const A = newTestAdmin('alice');
const B = newTestAdmin('bob');
const C = newTestAdmin('carol');
const EVERY_ADMIN = [A, B, C].map((a) => a.email).sort();

describe('every admin reachable: a set with an admin without an address is refused', () => {
  let signer: TestSigner;
  let app: App;
  before(async () => {
    signer = await createTestSigner({ startMs: T0, scopes: ['admin', 'register', 'derive', 'sign'] });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await signer.close();
  });

  test('bootstrap: an admin given by its key alone, or as an entry without email, is invalid_input naming admins[i].email; nothing written', async () => {
    for (const third of [C.publicKey, { publicKey: C.publicKey, name: 'carol' }]) {
      const error = await expectCode(bootstrapTestQuorum(signer.store, { threshold: 2, admins: [adminEntry(A), adminEntry(B), third] }), 'invalid_input');
      assert.equal(error.field, 'admins[2].email');
    }
    // a malformed address names the same field
    const bad = await expectCode(
      bootstrapTestQuorum(signer.store, { threshold: 2, admins: [adminEntry(A), { ...adminEntry(B), email: 'bob at example' }, adminEntry(C)] }),
      'invalid_input',
    );
    assert.equal(bad.field, 'admins[1].email');
    assert.equal(Number((await signer.sql('SELECT count(*) AS n FROM kernel_settings'))[0]?.n), 0, 'nothing written');
    assert.equal((await signer.kernel.listProposals(app, {})).quorum, null);
  });

  test('quorum.set: an admin without an address is refused at propose time (invalid_input, payload.admins[i].email), nothing stored', async () => {
    await bootstrapTestQuorum(signer.store, adminSet(1, [A, B, C]));
    const q = quorumDriver({ kernel: () => signer.kernel, app: () => app, now: () => signer.clock.now });
    const D = newTestAdmin('dave');
    for (const [i, admins] of [
      [2, [adminEntry(A), adminEntry(B), D.publicKey]],
      [0, [{ publicKey: A.publicKey, name: 'alice' }, adminEntry(B), adminEntry(D)]],
    ] as const) {
      const error = await expectCode(q.propose(A, 'quorum.set', { threshold: 1, admins }), 'invalid_input');
      assert.equal(error.field, `payload.admins[${i}].email`);
    }
    assert.equal(Number((await signer.sql('SELECT count(*) AS n FROM proposals'))[0]?.n), 0, 'no proposal stored');
    // the same set with every address is proposed and applied
    const applied = await q.pass(A, [B], 'quorum.set', adminSet(1, [A, B, D]));
    assert.equal(applied.state, 'applied');
    assert.deepEqual(
      (await signer.kernel.listProposals(app, {})).quorum?.admins.map((a) => a.email),
      [A.email, B.email, D.email],
    );
  });
});

describe('the notices: every admin told by e-mail, the full text in the log, listed newest first', () => {
  let signer: TestSigner;
  let app: App;
  let delivery: TestDelivery;
  const P = new SoftAuthenticator(ORIGIN);
  let pkId = '';
  const q = quorumDriver({ kernel: () => signer.kernel, app: () => app, now: () => signer.clock.now });

  before(async () => {
    signer = await createTestSigner({
      startMs: T0,
      scopes: ['admin', 'register', 'derive', 'sign'],
      appOptions: { publicUrl: ORIGIN },
      kernelOptions: { passkeys: { rpId: 'localhost', origin: ORIGIN, rpName: 'Custos' } },
    });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    // sent only when the test runs the loop: received() counts what one run sends
    delivery = await startTestDelivery(signer, { publicUrl: ORIGIN, watch: false });
    // a passkey admin (Pat, who reads the admin page) besides three key-file admins: 2 of 4
    const link = await signer.kernel.createAdminEnrollmentLink(app, { name: 'Pat' });
    const page = await signer.kernel.openAdminEnrollmentPage(link.token);
    pkId = (await signer.kernel.completeAdminEnrollment(link.token, P.create(page.optionsJSON as unknown as CreationOptionsJSON))).adminId;
    await bootstrapTestQuorum(
      signer.store,
      { threshold: 2, admins: [...[A, B, C].map(adminEntry), { publicKey: pkId, email: 'pat@admins.example.com' }] },
      undefined,
      () => signer.clock.now,
    );
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await delivery.close();
    await signer.close();
  });

  /** The messages the delivery loop sends now (exactly `n` more). */
  async function received(n: number): Promise<ReceivedMail[]> {
    const count = delivery.mail.received.length;
    await delivery.loop.runOnce();
    while (delivery.mail.received.length < count + n) await delivery.mail.nextMail(delivery.mail.received.length);
    return delivery.mail.received.slice(count);
  }
  const everyone = [...EVERY_ADMIN, 'pat@admins.example.com'].sort();

  async function noticesOverHttp(query = '', key = signer.apiKey): Promise<{ status: number; body: AdminNoticeList & { error?: { code: string } } }> {
    const res = await signer.app.inject({ method: 'GET', url: `/v1/admin/notices${query}`, headers: signer.auth(key) });
    return { status: res.statusCode, body: res.json() };
  }

  test('a freeze and its unfreeze by the quorum: every admin told by e-mail; each notice listed in full, newest first (API and kernel)', async () => {
    await signer.kernel.getPublicKey(app, { walletName: 'frost', keyIndex: 0 });
    await signer.kernel.freezeWalletByAdmin(app, { walletName: 'frost' });
    const frozen = await received(4);
    assert.deepEqual(frozen.map((m) => m.to).sort(), everyone);
    for (const m of frozen) assert.match(m.text, /Wallet "frost" of tenant system was frozen by an operator/);
    const unfrozen = await q.pass(A, [B, C], 'wallet.unfreeze', { walletName: 'frost' });
    assert.equal(unfrozen.state, 'applied');
    await received(4 * 3); // the proposal's announcement, its application, the unfreeze: each to all four

    const { status, body } = await noticesOverHttp();
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.untoldAdmins, []);
    const events = body.notices.map((n) => n.event);
    // (the unfreeze is told in the unit that applies the proposal, before its application is)
    assert.deepEqual(events.slice(0, 4), ['proposal.applied', 'unfreeze', 'proposal', 'freeze'], 'newest first');
    const seqs = body.notices.map((n) => n.seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((x, y) => y - x),
    );
    const freeze = body.notices[3];
    assert.match(freeze?.text ?? '', /Wallet "frost" of tenant system was frozen by an operator/);
    assert.deepEqual([freeze?.told, freeze?.untold, freeze?.complete], [4, 0, true]);
    // each text is the e-mail's (short ones are sent whole)
    assert.ok(frozen[0]?.text.startsWith(freeze?.text ?? '?'), `${frozen[0]?.text} starts with ${freeze?.text}`);
    // limit and paging
    const one = await noticesOverHttp('?limit=1');
    assert.deepEqual(
      one.body.notices.map((n) => n.event),
      ['proposal.applied'],
    );
    const older = await noticesOverHttp(`?limit=2&before=${one.body.notices[0]?.seq}`);
    assert.deepEqual(
      older.body.notices.map((n) => n.event),
      ['unfreeze', 'proposal'],
    );
    // the kernel's call says the same
    assert.deepEqual((await signer.kernel.listAdminNotices(app, { limit: 4 })).notices, body.notices.slice(0, 4));
    await expectCode(signer.kernel.listAdminNotices(app, { limit: 0 }), 'invalid_input');
    await expectCode(signer.kernel.listAdminNotices(app, { limit: 201 }), 'invalid_input');
  });

  test('a key without the admin scope reads no notices (forbidden_scope, audited)', async () => {
    const sign = { ...app, id: 'sign-only', scopes: ['sign'] } as App;
    await expectCode(signer.kernel.listAdminNotices(sign, {}), 'forbidden_scope');
    const denied = await signer.sql("SELECT reason FROM audit_log WHERE action = 'quorum.read' AND decision = 'denied'");
    assert.deepEqual(
      denied.map((r) => r.reason),
      ['forbidden_scope'],
    );
  });

  test('a notice longer than the e-mail bound: the e-mail ends with how much is left out and where to read it; the list has it whole, across audit parts', async () => {
    // 32 admins with long names (3-byte characters): the proposal's description runs to thousands of characters, and well over 4 KB in UTF-8
    const many = Array.from({ length: 28 }, (_, i) => newTestAdmin(`a${i}`));
    const keyFile = [A, B, C, ...many].map((a, i) => ({ ...adminEntry(a), name: `${'€'.repeat(60)}${String(i).padStart(2, '0')}` }));
    // Pat stays: its entry as the set in force holds it (its credential)
    const pat = (await signer.kernel.listProposals(app, {})).quorum?.admins.find((a) => a.publicKey === pkId);
    const bigSet = { threshold: 2, admins: [...keyFile, pat] };
    const proposed = await q.propose(A, 'quorum.set', bigSet);
    const mails = await received(4);
    const notices = (await signer.kernel.listAdminNotices(app, { limit: 1 })).notices;
    const full = notices[0];
    assert.equal(full?.event, 'proposal');
    assert.ok(full?.text.includes(proposed.id) && full.complete);
    assert.ok(full.text.length > ADMIN_MESSAGE_MAX_CHARS, `${full.text.length} characters`);
    assert.ok(Buffer.byteLength(full.text) > 4096, 'more than one audit record holds it');
    // the whole text: every admin's name is in it, the last one's too
    assert.ok(full.text.includes(`${'€'.repeat(60)}30`), 'the last admin’s name is in the full text');
    const parts = await signer.sql("SELECT detail FROM audit_log WHERE action = 'admin.notice.part' ORDER BY seq");
    assert.ok(parts.length >= 1, 'the text is continued in admin.notice.part records');
    for (const m of mails) {
      const pointer = /… \((\d+) more characters: see the admin page or `custos admin notices`\)\n/.exec(m.text);
      assert.ok(pointer?.[1] !== undefined, m.text.slice(-300));
      const shown = m.text.slice(0, pointer.index);
      assert.ok(full.text.startsWith(shown), 'the e-mail shows the start of the notice');
      assert.equal(shown.length + Number(pointer[1]), full.text.length, 'the count is what was left out');
      assert.ok(shown.length + pointer[0].length - 1 <= ADMIN_MESSAGE_MAX_CHARS, 'the e-mail’s notice stays within its bound');
      assert.doesNotMatch(m.text, new RegExp(`${'€'.repeat(60)}30`), 'the cut part is not in the e-mail');
    }
    assert.equal(proposed.state, 'pending');
  });

  test('the admin page: without a session the login and no notice; with a passkey admin’s session the notices in full', async () => {
    const anonymous = await signer.app.inject({ method: 'GET', url: '/admin/' });
    assert.equal(anonymous.statusCode, 200);
    assert.doesNotMatch(anonymous.body, /id="notices"/);
    assert.doesNotMatch(anonymous.body, /frost/);
    // a forged cookie is no session either
    const forged = await signer.app.inject({
      method: 'GET',
      url: '/admin/',
      headers: { cookie: `${ADMIN_SESSION_COOKIE}=${pkId}.${signer.clock.now + 60_000}.${'00'.repeat(32)}` },
    });
    assert.doesNotMatch(forged.body, /id="notices"/);
    assert.doesNotMatch(forged.body, /frost/);

    const { optionsJSON, issuedAt, nonce } = await signer.kernel.adminLoginOptions();
    const login = await signer.kernel.finishAdminLogin({ issuedAt, nonce, proof: P.get(optionsJSON as unknown as RequestOptionsJSON) });
    const page = await signer.app.inject({ method: 'GET', url: '/admin/', headers: { cookie: `${ADMIN_SESSION_COOKIE}=${login.token}` } });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /<ul id="notices">/);
    const items = [...page.body.matchAll(/<li data-seq="(\d+)" data-event="([a-z.]+)"/g)].map((m) => [Number(m[1]), m[2]] as const);
    const listed = (await signer.kernel.listAdminNotices(app, {})).notices;
    assert.deepEqual(
      items,
      listed.map((n) => [n.seq, n.event]),
      'the page lists the notices newest first',
    );
    assert.match(page.body, /Wallet &quot;frost&quot; of tenant system was frozen by an operator|Wallet "frost" of tenant system was frozen by an operator/);
    // the long one in full (its last admin's name), not cut as the e-mail is
    assert.ok(page.body.includes(`${'€'.repeat(60)}30`), 'the page shows the full text');
    assert.doesNotMatch(page.body, /more characters: see the admin page/);
  });
});

describe('mail under a quorum, and a set made before addresses were required', () => {
  let signer: TestSigner;
  let app: App;
  before(async () => {
    signer = await createTestSigner({ startMs: T0, scopes: ['admin', 'register', 'derive', 'sign'] });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await signer.close();
  });

  test('without a quorum a signer starts with no mail transport; under one it is refused (invalid_input naming smtp-url) before it unseals', async () => {
    const plain = await startServer({ store: signer.location, port: 0, logger: false });
    await plain.close();
    await bootstrapTestQuorum(signer.store, adminSet(1, [A, B]));
    const error = await expectCode(startServer({ store: signer.location, port: 0, logger: false }), 'invalid_input');
    assert.equal(error.field, 'smtp-url');
    // a webhook alone does not tell the admins either
    await expectCode(
      startServer({ store: signer.location, port: 0, logger: false, delivery: { webhookSecret: new TextEncoder().encode('a webhook secret of the test') } }),
      'invalid_input',
    );
  });

  test('a legacy set (an admin without an address) keeps working: told nothing, counted untold, listed, warned of at the unseal', async () => {
    await writeLegacyQuorumRow(signer.store, credential(), { threshold: 1, admins: [adminEntry(A), adminEntry(B), C.publicKey] }, signer.clock.now);
    await signer.restart();
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    const mail = await startTestDelivery(signer, { publicUrl: ORIGIN, watch: false });
    try {
      assert.deepEqual(await signer.kernel.untoldAdmins(), [C.publicKey]);
      // the quorum still works: a proposal by the admin without an address, approved
      const q = quorumDriver({ kernel: () => signer.kernel, app: () => app, now: () => signer.clock.now });
      const applied = await q.pass(C, [A], 'deployment.settings', { timelockDelaySeconds: 7200, webhookUrl: null, policyDefaults: {} });
      assert.equal(applied.state, 'applied');
      await signer.kernel.getPublicKey(app, { walletName: 'ice', keyIndex: 0 });
      await signer.kernel.freezeWalletByAdmin(app, { walletName: 'ice' });
      const list = await signer.kernel.listAdminNotices(app, { limit: 1 });
      assert.deepEqual(list.untoldAdmins, [C.publicKey]);
      assert.deepEqual([list.notices[0]?.event, list.notices[0]?.told, list.notices[0]?.untold], ['freeze', 2, 1]);
      // the two with addresses get it by e-mail; the third is told nothing
      const count = mail.mail.received.length;
      await mail.loop.runOnce();
      while (mail.mail.received.length < count + 6) await mail.mail.nextMail(mail.mail.received.length);
      assert.deepEqual([...new Set(mail.mail.received.slice(count).map((m) => m.to))].sort(), [A.email, B.email].sort());
      // the start under it logs the warning (the mail transport given)
      const { logger, lines } = captureLogLines();
      const server = await startServer({
        store: signer.location,
        port: 0,
        logger,
        passphrase: new TextEncoder().encode(TEST_PASSPHRASE),
        delivery: { smtpUrl: mail.mail.url, mailFrom: 'custos@example.com' },
      });
      try {
        const warning = lines.find((l) => l.includes('ADMINS TOLD NOTHING'));
        assert.ok(warning !== undefined, lines.join(''));
        assert.match(warning, new RegExp(`${C.publicKey.slice(0, 16)}…`));
        assert.match(warning, /"level":"warn"/);
      } finally {
        await server.close();
      }
    } finally {
      await mail.close();
    }
  });
});
