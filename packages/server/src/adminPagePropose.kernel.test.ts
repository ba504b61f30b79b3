import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type AdminStatement,
  APPROVE_LABEL,
  type App,
  adminPasskeyChallenge,
  bootstrapQuorumOffline,
  computePayloadHash,
  ERROR_CODES,
  generateAdminKey,
  PROPOSE_LABEL,
  parseAdminKeyFile,
} from '@custos/kernel';
import type { LightMyRequestResponse } from 'fastify';
import { createTestSigner, recordTestSecret, TEST_PASSPHRASE, type TestSigner } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { type CreationOptionsJSON, type RequestOptionsJSON, SoftAuthenticator, toBase64url } from './testing/softAuthenticator.js';

// Issue 13 point 4: a passkey admin PROPOSES — on the admin page (a draft the kernel makes and shows
// in full, then the passkey's assertion over the propose statement) and over the API (the assertion
// object in `signature`) — so that a quorum of passkey admins only has a proposer. And the admin
// page's sign-in names no credential (it would tell anyone who is in the quorum). Every refusal with
// its exact code, on the real store of the pass (SQLite, then PostgreSQL), with the software
// authenticator (testing/softAuthenticator.ts).

const PORT = 8601;
const ORIGIN = `http://localhost:${PORT}`;
const PASSKEYS = { rpId: 'localhost', origin: ORIGIN, rpName: 'Custos' };
const T0 = Date.UTC(2026, 11, 7, 9);

const A = parseAdminKeyFile(JSON.stringify(generateAdminKey()));
/** Passkey admins of the set. */
const P = new SoftAuthenticator(ORIGIN);
const Q = new SoftAuthenticator(ORIGIN);
/** A candidate never added to the set. */
const R = new SoftAuthenticator(ORIGIN);
const ids = { P: '', Q: '', R: '' };
const KIND = 'deployment.settings';
const SETTINGS = (n: number) => ({ timelockDelaySeconds: 7200 + n, webhookUrl: null, policyDefaults: {} });

let signer: TestSigner;
let app: App;

type AuditRow = { action: string; decision: string; reason: string | null; app_id: string | null; detail: Record<string, unknown> };
async function audit(action: string): Promise<AuditRow[]> {
  const rows = await signer.sql('SELECT action, decision, reason, app_id, detail FROM audit_log WHERE action = $1 ORDER BY seq', action);
  return rows.map((r) => ({ ...r, detail: (typeof r.detail === 'string' ? JSON.parse(r.detail) : r.detail) as Record<string, unknown> }) as AuditRow);
}

async function proposalCount(): Promise<number> {
  return Number((await signer.sql('SELECT count(*) AS n FROM proposals'))[0]?.n);
}

async function enrol(who: SoftAuthenticator, name: string): Promise<string> {
  const link = await signer.kernel.createAdminEnrollmentLink(app, { name });
  const page = await signer.kernel.openAdminEnrollmentPage(link.token);
  const options = page.optionsJSON as unknown as CreationOptionsJSON;
  // new admin passkeys are discoverable: the sign-in can then name no credential
  assert.equal(options.authenticatorSelection?.residentKey, 'required');
  assert.equal(options.authenticatorSelection?.userVerification, 'required');
  return (await signer.kernel.completeAdminEnrollment(link.token, who.create(options))).adminId;
}

/** A session of `who` (the page's sign-in, a discoverable passkey answering). */
async function login(who: SoftAuthenticator): Promise<string> {
  const { optionsJSON, issuedAt, nonce } = await signer.kernel.adminLoginOptions();
  const done = await signer.kernel.finishAdminLogin({ issuedAt, nonce, proof: who.get(optionsJSON as unknown as RequestOptionsJSON) });
  recordTestSecret('admin session', done.token);
  return done.token;
}

/** The page's draft of `payload` for the session's admin. */
async function draft(session: string, payload: unknown, kind = KIND, ttlSeconds?: number) {
  const made = await signer.kernel.draftOnAdminPage({
    session,
    kind,
    payload: JSON.stringify(payload, null, 2),
    ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
  });
  return { ...made, options: made.optionsJSON as unknown as RequestOptionsJSON };
}

/** What the page posts back for a draft (with the assertion). */
function posted(session: string, d: Awaited<ReturnType<typeof draft>>['draft'], proof: unknown) {
  return { session, id: d.id, kind: d.kind, payload: d.payloadText, payloadHash: d.payloadHash, expiresAt: d.expiresAt, proof };
}

function statementOf(d: { id: string; proposer: string; expiresAt: number; payloadHash: string }): AdminStatement {
  return { signerId: signer.kernel.signerId as string, id: d.id, proposer: d.proposer, expiresAt: d.expiresAt, payloadHash: d.payloadHash };
}

before(async () => {
  signer = await createTestSigner({
    scopes: ['admin'],
    startMs: T0,
    appOptions: { publicUrl: ORIGIN },
    kernelOptions: { passkeys: PASSKEYS },
  });
  app = await signer.kernel.authenticateApiKey(signer.apiKey);
  ids.P = await enrol(P, 'Pat');
  ids.Q = await enrol(Q, 'Quinn');
  ids.R = await enrol(R, 'Robin');
  // A quorum in which key-file admin A takes no part in these tests: the passkey admins propose and approve (M = 1 of N = 3).
  await bootstrapQuorumOffline({
    store: signer.store,
    credential: { type: 'passphrase', passphrase: new TextEncoder().encode(TEST_PASSPHRASE) },
    quorum: { threshold: 1, admins: [A.publicKey, ids.P, ids.Q].map((publicKey, i) => ({ publicKey, email: `admin-${i}@example.com` })) },
    now: () => signer.clock.now,
  });
});
after(async () => {
  await signer?.close();
});

describe('the admin page’s sign-in names no credential', () => {
  test('the login options list no credential; with a typed admin id, that admin’s only; a discoverable passkey signs in', async () => {
    const anonymous = (await signer.kernel.adminLoginOptions()).optionsJSON;
    assert.deepEqual(anonymous.allowCredentials ?? [], []);
    assert.equal(anonymous.userVerification, 'required');
    const named = (await signer.kernel.adminLoginOptions({ adminId: ids.P })).optionsJSON;
    assert.deepEqual(
      named.allowCredentials?.map((c) => c.id),
      [P.credentials[0]?.id],
    );
    // a candidate not in the set, or an id nobody has: nothing named (the same page as with no id)
    assert.deepEqual((await signer.kernel.adminLoginOptions({ adminId: ids.R })).optionsJSON.allowCredentials ?? [], []);
    assert.deepEqual((await signer.kernel.adminLoginOptions({ adminId: `pk:${'0'.repeat(64)}` })).optionsJSON.allowCredentials ?? [], []);
    await expectCode(signer.kernel.adminLoginOptions({ adminId: 'Pat' }), 'invalid_input');
    assert.equal(await signer.kernel.checkAdminSession(await login(Q)).then((a) => a?.publicKey), ids.Q);
  });

  test('GET /admin/ without a session carries no credential id of any admin; ?admin=pk:… carries that admin’s only', async () => {
    const credentialIds = [P, Q, R].map((a) => a.credentials[0]?.id as string);
    const anonymous = await signer.app.inject({ method: 'GET', url: '/admin/' });
    assert.equal(anonymous.statusCode, 200);
    assert.match(anonymous.body, /<h1>Admin sign-in<\/h1>/);
    for (const id of credentialIds) assert.ok(!anonymous.body.includes(id), 'no credential id on the open sign-in page');
    for (const id of [ids.P, ids.Q]) assert.ok(!anonymous.body.includes(id), 'no admin id either');
    const proposalPage = await signer.app.inject({ method: 'GET', url: `/admin/proposals/${'ab'.repeat(16)}` });
    assert.equal(proposalPage.statusCode, 401);
    for (const id of credentialIds) assert.ok(!proposalPage.body.includes(id));
    const named = await signer.app.inject({ method: 'GET', url: `/admin/?admin=${ids.P}` });
    assert.ok(named.body.includes(credentialIds[0] as string));
    assert.ok(!named.body.includes(credentialIds[1] as string));
    // a malformed id is ignored: the anonymous page
    const malformed = await signer.app.inject({ method: 'GET', url: '/admin/?admin=%3Cscript%3E' });
    for (const id of credentialIds) assert.ok(!malformed.body.includes(id));
  });
});

describe('a passkey admin proposes on the page (kernel)', () => {
  test('the draft: the kernel chooses id and expiry, shows hash and description, asks the session admin’s passkey for the propose statement; it writes nothing', async () => {
    const session = await login(P);
    const before = { proposals: await proposalCount(), audit: (await signer.sql('SELECT count(*) AS n FROM audit_log'))[0]?.n };
    const { draft: d, options } = await draft(session, SETTINGS(1));
    assert.match(d.id, /^[0-9a-f]{32}$/);
    assert.equal(d.expiresAt, signer.clock.now + 72 * 3600_000);
    assert.equal(d.proposer, ids.P);
    assert.equal(d.kind, KIND);
    assert.deepEqual(d.payload, SETTINGS(1));
    assert.equal(d.payloadHash, computePayloadHash(KIND, SETTINGS(1)));
    assert.equal(JSON.parse(d.payloadText).timelockDelaySeconds, 7201);
    assert.match(d.description, /7201/);
    assert.equal(options.challenge, toBase64url(adminPasskeyChallenge(PROPOSE_LABEL, statementOf(d))));
    assert.deepEqual(
      options.allowCredentials?.map((c) => c.id),
      [P.credentials[0]?.id],
    );
    assert.equal(options.userVerification, 'required');
    // another draft of the same payload: another id
    assert.notEqual((await draft(session, SETTINGS(1))).draft.id, d.id);
    assert.equal((await draft(session, SETTINGS(1), KIND, 3600)).draft.expiresAt, signer.clock.now + 3600_000);
    assert.deepEqual(
      { proposals: await proposalCount(), audit: (await signer.sql('SELECT count(*) AS n FROM audit_log'))[0]?.n },
      before,
      'a draft writes nothing',
    );
  });

  test('a draft without a session is unauthorized; a bad kind, payload or time to live is invalid_input naming the field', async () => {
    const session = await login(P);
    await expectCode(signer.kernel.draftOnAdminPage({ session: undefined, kind: KIND, payload: '{}' }), 'unauthorized');
    await expectCode(
      signer.kernel.draftOnAdminPage({ session: session.replace(/.$/, (c) => (c === '0' ? '1' : '0')), kind: KIND, payload: '{}' }),
      'unauthorized',
    );
    const field = async (request: { kind: unknown; payload: unknown; ttlSeconds?: unknown }) =>
      (await expectCode(signer.kernel.draftOnAdminPage({ session, ...request }), 'invalid_input')).field;
    assert.equal(await field({ kind: 'no.such.kind', payload: '{}' }), 'kind');
    assert.equal(await field({ kind: KIND, payload: '{not json' }), 'payload');
    assert.equal(await field({ kind: KIND, payload: '' }), 'payload');
    assert.equal(await field({ kind: KIND, payload: '{"__proto__": {"x": 1}}' }), 'payload');
    assert.equal(await field({ kind: KIND, payload: JSON.stringify(SETTINGS(1)), ttlSeconds: 10 }), 'ttlSeconds');
    // a payload its kind does not take (a delay under 1 h)
    await expectCode(
      signer.kernel.draftOnAdminPage({ session, kind: KIND, payload: JSON.stringify({ ...SETTINGS(1), timelockDelaySeconds: 60 }) }),
      'invalid_input',
    );
  });

  test('P proposes with its passkey (audited, app admin-page); Q approves on the page: M = 1 is met and the change applies', async () => {
    const session = await login(P);
    const { draft: d, options } = await draft(session, SETTINGS(2));
    const view = await signer.kernel.proposeOnAdminPage(posted(session, d, P.get(options)));
    assert.deepEqual([view.id, view.proposer, view.state, view.payloadHash, view.expiresAt], [d.id, ids.P, 'pending', d.payloadHash, d.expiresAt]);
    const proposed = (await audit('quorum.propose')).at(-1);
    assert.deepEqual([proposed?.decision, proposed?.app_id, proposed?.detail.proposalId, proposed?.detail.proposer], ['allowed', 'admin-page', d.id, ids.P]);
    // P's own approval does not count
    const approveOptions = (await signer.kernel.adminPageProposal(d.id)).optionsJSON as unknown as RequestOptionsJSON;
    await expectCode(signer.kernel.approveOnAdminPage({ id: d.id, payloadHash: d.payloadHash, proof: P.get(approveOptions) }), 'proposal_self_approval');
    const applied = await signer.kernel.approveOnAdminPage({ id: d.id, payloadHash: d.payloadHash, proof: Q.get(approveOptions) });
    assert.equal(applied.state, 'applied');
    assert.equal((await signer.kernel.readDeploymentSettings()).timelockDelaySeconds, 7202);
  });

  test('refused, each with its code and nothing proposed: an edited payload, a swapped kind, another admin’s assertion, another admin’s session, the approve label, another expiry, no session', async () => {
    const session = await login(P);
    const qSession = await login(Q);
    const count = await proposalCount();
    // the payload edited between show and sign (the hash shown kept)
    {
      const { draft: d, options } = await draft(session, SETTINGS(3));
      const edited = JSON.stringify({ ...SETTINGS(3), timelockDelaySeconds: 3600 });
      const details = await expectCode(
        signer.kernel.proposeOnAdminPage({ ...posted(session, d, P.get(options)), payload: edited }),
        'proposal_payload_mismatch',
      );
      assert.equal(details.field, 'payload');
      const denied = (await audit('quorum.propose')).at(-1);
      assert.deepEqual(
        [denied?.decision, denied?.reason, denied?.app_id, denied?.detail.proposer],
        ['denied', 'proposal_payload_mismatch', 'admin-page', ids.P],
      );
    }
    // a swapped kind: wallet.unfreeze drafted, wallet.factor-reset posted (the same payload parses under both)
    {
      const { draft: d, options } = await draft(session, { walletName: 'w1' }, 'wallet.unfreeze');
      await expectCode(signer.kernel.proposeOnAdminPage({ ...posted(session, d, P.get(options)), kind: 'wallet.factor-reset' }), 'proposal_payload_mismatch');
      // …with the hash recomputed for the swapped kind: the passkey signed the other hash
      await expectCode(
        signer.kernel.proposeOnAdminPage({
          ...posted(session, d, P.get(options)),
          kind: 'wallet.factor-reset',
          payloadHash: computePayloadHash('wallet.factor-reset', { walletName: 'w1' }),
        }),
        'admin_signature_invalid',
      );
    }
    // another admin's assertion (Q's passkey answering P's draft)
    {
      const { draft: d, options } = await draft(session, SETTINGS(4));
      await expectCode(
        signer.kernel.proposeOnAdminPage(posted(session, d, Q.get(options, { credentialId: Q.credentials[0]?.id as string }))),
        'admin_signature_invalid',
      );
      // a candidate's (not in the set) likewise: it is not P's credential
      await expectCode(
        signer.kernel.proposeOnAdminPage(posted(session, d, R.get(options, { credentialId: R.credentials[0]?.id as string }))),
        'admin_signature_invalid',
      );
      // P's draft and P's assertion posted with Q's session: Q would be the proposer, and P's passkey is not Q's
      await expectCode(signer.kernel.proposeOnAdminPage(posted(qSession, d, P.get(options))), 'admin_signature_invalid');
      // an assertion over the approve statement of the same fields
      await expectCode(
        signer.kernel.proposeOnAdminPage(posted(session, d, P.get(options, { challenge: adminPasskeyChallenge(APPROVE_LABEL, statementOf(d)) }))),
        'admin_signature_invalid',
      );
      // another expiry than the one drafted (and signed)
      await expectCode(
        signer.kernel.proposeOnAdminPage({ ...posted(session, d, P.get(options)), expiresAt: d.expiresAt + 3600_000 }),
        'admin_signature_invalid',
      );
      // no session, or an expired one
      await expectCode(signer.kernel.proposeOnAdminPage(posted('', d, P.get(options))), 'unauthorized');
      const unauthorized = (await audit('quorum.propose')).at(-1);
      assert.deepEqual([unauthorized?.decision, unauthorized?.reason], ['denied', 'unauthorized']);
    }
    assert.equal(await proposalCount(), count, 'nothing was proposed');
    const reasons = (await audit('quorum.propose')).slice(-9).map((r) => r.reason);
    assert.deepEqual(reasons, ['proposal_payload_mismatch', 'proposal_payload_mismatch', ...Array(6).fill('admin_signature_invalid'), 'unauthorized']);
  });

  test('a replayed assertion: the same post again is passkey_counter_invalid; on a new draft admin_signature_invalid; a session past its 15 minutes is unauthorized', async () => {
    const session = await login(P);
    const { draft: d, options } = await draft(session, SETTINGS(5));
    const proof = P.get(options);
    await signer.kernel.proposeOnAdminPage(posted(session, d, proof));
    await expectCode(signer.kernel.proposeOnAdminPage(posted(session, d, proof)), 'passkey_counter_invalid');
    const next = await draft(session, SETTINGS(5));
    await expectCode(signer.kernel.proposeOnAdminPage(posted(session, next.draft, proof)), 'admin_signature_invalid');
    // (the proposal made by the first post stands, once)
    assert.equal((await signer.kernel.getProposal(app, { id: d.id })).proposer, ids.P);
    assert.equal((await signer.sql('SELECT count(*) AS n FROM proposals WHERE id = $1', d.id)).map((r) => Number(r.n))[0], 1);
    signer.clock.now += 15 * 60_000 + 1;
    await expectCode(signer.kernel.proposeOnAdminPage(posted(session, next.draft, P.get(next.options))), 'unauthorized');
  });
});

// ---- over HTTP: the page's forms, and the API ----

function cookieValue(res: LightMyRequestResponse, name: string): string | undefined {
  const headers = res.headers['set-cookie'];
  for (const header of Array.isArray(headers) ? headers : headers === undefined ? [] : [String(headers)]) {
    const m = new RegExp(`^${name}=([^;]+);`).exec(header);
    if (m?.[1] !== undefined) return m[1];
  }
  return undefined;
}

function unescapeAttribute(value: string): string {
  return value.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
}

/** The hidden fields of the page's form, and the passkey step's options. */
function formOf(body: string): { fields: Record<string, string>; options: RequestOptionsJSON | undefined } {
  const fields: Record<string, string> = {};
  for (const m of body.matchAll(/<input type="hidden" name="([A-Za-z]+)" value="([^"]*)">/g)) fields[m[1] as string] = unescapeAttribute(m[2] as string);
  const options = /data-options="([^"]*)"/.exec(body)?.[1];
  return { fields, options: options === undefined ? undefined : (JSON.parse(unescapeAttribute(options)) as RequestOptionsJSON) };
}

describe('proposing on the page over HTTP (the forms’ protections)', () => {
  let session = '';
  let qSession = '';
  let formCookie = '';

  function headers({ who = session, origin = ORIGIN }: { who?: string; origin?: string | null } = {}): Record<string, string> {
    return {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: `custos_form=${formCookie}; custos_admin=${who}`,
      ...(origin === null ? {} : { origin }),
    };
  }

  function post(url: string, fields: Record<string, string>, options: { who?: string; origin?: string | null } = {}) {
    return signer.app.inject({ method: 'POST', url, headers: headers(options), payload: new URLSearchParams(fields).toString() });
  }

  /** The form, then its review: the draft page's fields and options. */
  async function review(payload: unknown, kind = KIND) {
    const page = await signer.app.inject({
      method: 'GET',
      url: '/admin/propose',
      headers: { cookie: `custos_admin=${session}${formCookie === '' ? '' : `; custos_form=${formCookie}`}` },
    });
    assert.equal(page.statusCode, 200, page.body);
    formCookie = cookieValue(page, 'custos_form') ?? formCookie;
    assert.match(page.body, new RegExp(`<option value="${KIND.replace('.', '\\.')}"`));
    assert.match(page.body, /<option value="wallet\.unfreeze">/);
    const csrf = formOf(page.body).fields.csrf as string;
    const shown = await post('/admin/propose/review', { csrf, kind, payload: JSON.stringify(payload), ttlHours: '72' });
    assert.equal(shown.statusCode, 200, shown.body);
    return { body: shown.body, draftCsrf: csrf, ...formOf(shown.body) };
  }

  before(async () => {
    session = await login(P);
    qSession = await login(Q);
  });

  test('without a session the propose pages are the sign-in (401); the review shows the payload in full, its hash and description before the passkey step', async () => {
    const anonymous = await signer.app.inject({ method: 'GET', url: '/admin/propose' });
    assert.equal(anonymous.statusCode, 401);
    assert.match(anonymous.body, /<h1>Admin sign-in<\/h1>/);
    const { body, fields, options, draftCsrf } = await review(SETTINGS(10));
    assert.match(body, /<h1>Review the proposal<\/h1>/);
    const hash = computePayloadHash(KIND, SETTINGS(10));
    assert.equal(fields.payloadHash, hash);
    assert.ok(body.indexOf(hash) < body.indexOf('id="passkey-step"'), 'the hash is shown before the passkey step');
    assert.deepEqual(JSON.parse(unescapeAttribute(/<pre class="message mono" id="draft-payload">([\s\S]*?)<\/pre>/.exec(body)?.[1] ?? '')), SETTINGS(10));
    assert.match(body, /7210/);
    assert.equal(fields.id, /data-id="([0-9a-f]{32})"/.exec(body)?.[1]);
    assert.equal(
      options?.challenge,
      toBase64url(
        adminPasskeyChallenge(PROPOSE_LABEL, statementOf({ id: fields.id as string, proposer: ids.P, expiresAt: Number(fields.expiresAt), payloadHash: hash })),
      ),
    );
    // a review posted from another site, or without the form token: refused, nothing shown
    assert.equal((await post('/admin/propose/review', { csrf: draftCsrf, kind: KIND, payload: '{}' }, { origin: 'http://evil.example' })).statusCode, 403);
    assert.equal((await post('/admin/propose/review', { kind: KIND, payload: '{}' })).statusCode, 403);
    // a payload that is no JSON: the form again with the refusal, the text kept
    const bad = await post('/admin/propose/review', { csrf: draftCsrf, kind: KIND, payload: '{"timelockDelaySeconds": <b>' });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /data-code="invalid_input"/);
    assert.match(bad.body, /<textarea[^>]*>\{&quot;timelockDelaySeconds&quot;: &lt;b&gt;<\/textarea>/);
  });

  test('the form token binds the session’s admin and the draft: another session, a swapped kind or id, a foreign origin are refused (403); an edited payload is proposal_payload_mismatch; the honest post proposes', async () => {
    const { fields, options } = await review(SETTINGS(11));
    const count = await proposalCount();
    const proof = JSON.stringify(P.get(options as RequestOptionsJSON));
    const honest = { ...fields, proof };
    assert.equal((await post('/admin/propose', honest, { who: qSession })).statusCode, 403, 'Q’s session with P’s form');
    assert.equal((await post('/admin/propose', { ...honest, kind: 'wallet.unfreeze' })).statusCode, 403, 'a swapped kind');
    assert.equal((await post('/admin/propose', { ...honest, id: 'cd'.repeat(16) })).statusCode, 403, 'another id');
    assert.equal((await post('/admin/propose', { ...honest, expiresAt: String(Number(fields.expiresAt) + 1) })).statusCode, 403, 'another expiry');
    assert.equal((await post('/admin/propose', honest, { origin: 'http://evil.example' })).statusCode, 403, 'a foreign origin');
    const noSession = await post('/admin/propose', honest, { who: '' });
    assert.equal(noSession.statusCode, 401);
    const edited = await post('/admin/propose', { ...honest, payload: JSON.stringify({ ...SETTINGS(11), timelockDelaySeconds: 3600 }) });
    assert.match(edited.body, /data-code="proposal_payload_mismatch"/, JSON.stringify({ ...honest, proof: '' }));
    assert.equal(edited.statusCode, ERROR_CODES.proposal_payload_mismatch.status);
    assert.equal(await proposalCount(), count, 'nothing proposed');
    const done = await post('/admin/propose', honest);
    assert.equal(done.statusCode, 200, done.body);
    assert.match(done.body, new RegExp(`id="proposal" data-id="${fields.id}" data-state="pending"`));
    assert.match(done.body, /Proposed\./);
    assert.equal((await signer.kernel.getProposal(app, { id: fields.id })).proposer, ids.P);
    // the same post again (the assertion replayed)
    const replay = await post('/admin/propose', honest);
    assert.match(replay.body, /data-code="passkey_counter_invalid"/);
  });
});

describe('a passkey admin over the API: the assertion in `signature`', () => {
  test('POST /v1/admin/proposals with proposer pk:… and the assertion; an approval likewise applies it; malformed or another admin’s assertion refused', async () => {
    const id = 'ee'.repeat(16);
    const expiresAt = signer.clock.now + 3600_000;
    const payload = SETTINGS(20);
    const statement: AdminStatement = {
      signerId: signer.kernel.signerId as string,
      id,
      proposer: ids.P,
      expiresAt,
      payloadHash: computePayloadHash(KIND, payload),
    };
    // what a client does: challenge = SHA-256 of the statement bytes, any rpID-scoped (discoverable) request
    const ask = (label: typeof PROPOSE_LABEL | typeof APPROVE_LABEL) =>
      ({
        challenge: toBase64url(adminPasskeyChallenge(label, statement)),
        rpId: 'localhost',
        allowCredentials: [],
        userVerification: 'required',
      }) as RequestOptionsJSON;
    const propose = (body: Record<string, unknown>) =>
      signer.app.inject({ method: 'POST', url: '/v1/admin/proposals', headers: signer.auth(), payload: { id, kind: KIND, payload, expiresAt, ...body } });
    const malformed = await propose({ proposer: ids.P, signature: { id: 'x' } });
    assert.equal(malformed.statusCode, 400, malformed.body);
    assert.equal(malformed.json().error.code, 'invalid_input');
    const badProposer = await propose({ proposer: 'pk:xyz', signature: P.get(ask(PROPOSE_LABEL)) });
    assert.equal(badProposer.statusCode, 400);
    const foreign = await propose({ proposer: ids.P, signature: Q.get(ask(PROPOSE_LABEL)) });
    assert.equal(foreign.json().error.code, 'admin_signature_invalid', foreign.body);
    const wrongLabel = await propose({ proposer: ids.P, signature: P.get(ask(APPROVE_LABEL)) });
    assert.equal(wrongLabel.json().error.code, 'admin_signature_invalid');
    // a key-file admin's id with an assertion: not its Ed25519 signature
    const keyFile = await propose({ proposer: A.publicKey, signature: P.get(ask(PROPOSE_LABEL)) });
    assert.equal(keyFile.json().error.code, 'admin_signature_invalid');
    const made = await propose({ proposer: ids.P, signature: P.get(ask(PROPOSE_LABEL)) });
    assert.equal(made.statusCode, 200, made.body);
    assert.deepEqual([made.json().proposer, made.json().state], [ids.P, 'pending']);
    const approve = (body: Record<string, unknown>) =>
      signer.app.inject({
        method: 'POST',
        url: `/v1/admin/proposals/${id}/approvals`,
        headers: signer.auth(),
        payload: { payloadHash: statement.payloadHash, ...body },
      });
    const self = await approve({ admin: ids.P, signature: P.get(ask(APPROVE_LABEL)) });
    assert.equal(self.json().error.code, 'proposal_self_approval');
    const proposeLabel = await approve({ admin: ids.Q, signature: Q.get(ask(PROPOSE_LABEL)) });
    assert.equal(proposeLabel.json().error.code, 'admin_signature_invalid');
    const applied = await approve({ admin: ids.Q, signature: Q.get(ask(APPROVE_LABEL)) });
    assert.equal(applied.statusCode, 200, applied.body);
    assert.equal(applied.json().state, 'applied');
    assert.deepEqual(
      applied.json().approvals.map((a: { admin: string }) => a.admin),
      [ids.Q],
    );
    assert.equal((await signer.kernel.readDeploymentSettings()).timelockDelaySeconds, 7220);
  });
});
