import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type AdminStatement,
  APPROVE_LABEL,
  type App,
  adminPasskeyChallenge,
  bootstrapQuorumOffline,
  computePayloadHash,
  createApiKey,
  PROPOSE_LABEL,
  signAdminMessage,
} from '@custos/kernel';
import { createTestSigner, TEST_PASSPHRASE, type TestSigner } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { adminEntry, newTestAdmin } from './testing/testAdmins.js';
import { type CreationOptionsJSON, type RequestOptionsJSON, SoftAuthenticator, toBase64url } from './testing/softAuthenticator.js';

// Issue 13 point 4: passkey admins. Enrolled on a single-use link (a candidate, not an admin),
// joined by the bootstrap, approving (and proposing) with assertions whose challenge is SHA-256 of
// the AdminStatement, through the same approveProposal as Ed25519 admins. Every rule attacked with
// its exact code, on the real store of the pass (SQLite, then PostgreSQL), with the software
// authenticator (testing/softAuthenticator.ts, written on noble, sharing no code with SimpleWebAuthn).

const ORIGIN = 'http://localhost:8420';
const PASSKEYS = { rpId: 'localhost', origin: ORIGIN, rpName: 'Custos' };
const T0 = Date.UTC(2026, 11, 1);

const A = newTestAdmin('alice');
const B = newTestAdmin('bob');
/** One authenticator per passkey admin (each holds one credential). */
const P = new SoftAuthenticator(ORIGIN);
const Q = new SoftAuthenticator(ORIGIN);
/** Enrolled on a link, never added to the set. */
const R = new SoftAuthenticator(ORIGIN);
const ids = { P: '', Q: '', R: '' };

const SETTINGS = (n: number) => ({ timelockDelaySeconds: 7200 + n, webhookUrl: null, policyDefaults: {} });
const KIND = 'deployment.settings';

let signer: TestSigner;
let app: App;
let counter = 0;
function newId(): string {
  counter += 1;
  return `${'ad'.repeat(8)}${counter.toString(16).padStart(16, '0')}`;
}

type AuditRow = { action: string; decision: string; reason: string | null; detail: Record<string, unknown> };
async function audit(action: string): Promise<AuditRow[]> {
  const rows = await signer.sql('SELECT action, decision, reason, detail FROM audit_log WHERE action = $1 ORDER BY seq', action);
  return rows.map((r) => ({ ...r, detail: (typeof r.detail === 'string' ? JSON.parse(r.detail) : r.detail) as Record<string, unknown> }) as AuditRow);
}

async function enrol(authenticator: SoftAuthenticator, name: string): Promise<string> {
  const link = await signer.kernel.createAdminEnrollmentLink(app, { name });
  const page = await signer.kernel.openAdminEnrollmentPage(link.token);
  assert.equal(page.state, 'pending');
  const done = await signer.kernel.completeAdminEnrollment(link.token, authenticator.create(page.optionsJSON as unknown as CreationOptionsJSON));
  assert.match(done.adminId, /^pk:[0-9a-f]{64}$/);
  return done.adminId;
}

/** A proposal by Ed25519 admin A; returns its id and statement fields. */
async function proposeByA(payload: unknown, ttlSeconds = 3600): Promise<{ id: string; statement: AdminStatement }> {
  const kind = typeof payload === 'object' && payload !== null && 'threshold' in payload ? 'quorum.set' : KIND;
  const id = newId();
  const expiresAt = signer.clock.now + ttlSeconds * 1000;
  const statement: AdminStatement = {
    signerId: signer.kernel.signerId as string,
    id,
    proposer: A.publicKey,
    expiresAt,
    payloadHash: computePayloadHash(kind, payload),
  };
  await signer.kernel.proposeChange(app, {
    id,
    kind,
    payload,
    proposer: A.publicKey,
    expiresAt,
    signature: signAdminMessage(A.privateKey, PROPOSE_LABEL, statement),
  });
  return { id, statement };
}

/** Key-file admin B approves a proposal of `kind` (its signature over the statement). */
async function approveByB(kind: string, id: string, payload: unknown) {
  const payloadHash = computePayloadHash(kind, payload);
  const p = await signer.kernel.getProposal(app, { id });
  const statement = { signerId: signer.kernel.signerId as string, id, proposer: p.proposer, expiresAt: p.expiresAt, payloadHash };
  return signer.kernel.approveProposal(app, { id, admin: B.publicKey, payloadHash, signature: signAdminMessage(B.privateKey, APPROVE_LABEL, statement) });
}

/** A passkey admin approves a proposal of `kind` on the page. */
async function approveOnPage2(kind: string, id: string, payload: unknown, who: SoftAuthenticator) {
  return signer.kernel.approveOnAdminPage({ id, payloadHash: computePayloadHash(kind, payload), proof: await pageAssertion(who, id) });
}

/** The page's options for approving `id`, answered by `who` (with knobs). */
async function pageAssertion(who: SoftAuthenticator, id: string, knobs: Parameters<SoftAuthenticator['get']>[1] = {}) {
  const { optionsJSON } = await signer.kernel.adminPageProposal(id);
  assert.ok(optionsJSON !== undefined);
  return who.get(optionsJSON as unknown as RequestOptionsJSON, knobs);
}

function approveOnPage(id: string, payload: unknown, proof: unknown) {
  return signer.kernel.approveOnAdminPage({ id, payloadHash: computePayloadHash(KIND, payload), proof });
}

before(async () => {
  signer = await createTestSigner({ scopes: ['admin', 'register', 'sign'], startMs: T0, kernelOptions: { passkeys: PASSKEYS } });
  app = await signer.kernel.authenticateApiKey(signer.apiKey);
});
after(async () => {
  await signer?.close();
});

describe('admin passkeys: enrolment links', () => {
  test('a link registers a candidate (pk:SHA-256 of the credential id); it is single use (enrollment_used) and audited', async () => {
    const link = await signer.kernel.createAdminEnrollmentLink(app, { name: 'Pat' });
    assert.match(link.token, /^[A-Za-z0-9_-]{43}$/);
    // only the capability's hash is stored
    const rows = await signer.sql('SELECT token_hash FROM admin_enrollment_links');
    assert.ok(rows.every((r) => r.token_hash !== link.token));
    const page = await signer.kernel.openAdminEnrollmentPage(link.token);
    assert.equal(page.state, 'pending');
    // opening it (a GET) twice changes nothing: still pending
    assert.equal((await signer.kernel.openAdminEnrollmentPage(link.token)).state, 'pending');
    const options = page.optionsJSON as unknown as CreationOptionsJSON;
    assert.equal(options.authenticatorSelection?.userVerification, 'required');
    const done = await signer.kernel.completeAdminEnrollment(link.token, P.create(options));
    const credentialId = P.credentials[0]?.id as string;
    const expected = `pk:${Buffer.from(await crypto.subtle.digest('SHA-256', Buffer.from(credentialId, 'base64url'))).toString('hex')}`;
    assert.equal(done.adminId, expected);
    ids.P = done.adminId;
    // the link reused: refused, even with another authenticator's fresh passkey
    await expectCode(signer.kernel.completeAdminEnrollment(link.token, Q.create(options)), 'enrollment_used');
    const used = await signer.kernel.openAdminEnrollmentPage(link.token);
    assert.equal(used.state, 'used');
    assert.equal(used.optionsJSON, undefined);
    const enrolls = await audit('quorum.admin-enroll');
    assert.deepEqual(
      enrolls.map((r) => [r.decision, r.reason]),
      [
        ['allowed', null],
        ['denied', 'enrollment_used'],
      ],
    );
    ids.Q = await enrol(Q, 'Quinn');
    ids.R = await enrol(R, 'Robin');
    // the start-up check that the public URL's host did not change counts the admin passkeys too
    assert.deepEqual(await signer.store.listPasskeyRpIds(), ['localhost']);
  });

  test('an expired link registers nothing (enrollment_expired); an unknown or malformed link is enrollment_not_found', async () => {
    const link = await signer.kernel.createAdminEnrollmentLink(app, { name: 'late', ttlSeconds: 300 });
    const page = await signer.kernel.openAdminEnrollmentPage(link.token);
    signer.clock.now += 301_000;
    const late = new SoftAuthenticator(ORIGIN);
    await expectCode(signer.kernel.completeAdminEnrollment(link.token, late.create(page.optionsJSON as unknown as CreationOptionsJSON)), 'enrollment_expired');
    assert.equal((await signer.kernel.openAdminEnrollmentPage(link.token)).state, 'expired');
    assert.equal((await signer.sql('SELECT count(*) AS n FROM admin_passkeys')).map((r) => Number(r.n))[0], 3);
    await expectCode(signer.kernel.openAdminEnrollmentPage('A'.repeat(43)), 'enrollment_not_found');
    await expectCode(signer.kernel.openAdminEnrollmentPage('../etc'), 'enrollment_not_found');
  });

  test('a registration without user verification, or for another origin, is refused; a key without scope admin makes no link', async () => {
    const link = await signer.kernel.createAdminEnrollmentLink(app, {});
    const options = (await signer.kernel.openAdminEnrollmentPage(link.token)).optionsJSON as unknown as CreationOptionsJSON;
    await expectCode(
      signer.kernel.completeAdminEnrollment(link.token, new SoftAuthenticator(ORIGIN).create(options, { userVerified: false })),
      'passkey_user_not_verified',
    );
    await expectCode(
      signer.kernel.completeAdminEnrollment(link.token, new SoftAuthenticator(ORIGIN).create(options, { origin: 'http://localhost:8421' })),
      'passkey_invalid',
    );
    // refusals spend nothing: the link still registers an honest passkey afterwards
    assert.equal((await signer.kernel.openAdminEnrollmentPage(link.token)).state, 'pending');
    const sign = await signer.kernel.authenticateApiKey((await createApiKey(signer.store, { name: 'signing only', scopes: ['sign'] })).token);
    await expectCode(signer.kernel.createAdminEnrollmentLink(sign, {}), 'forbidden_scope');
  });
});

describe('admin passkeys: joining the set, approving through the same rules', () => {
  test('the bootstrap names candidates by pk: id; the set row carries kind, credential id, COSE key and rpID', async () => {
    // before any set: a candidate cannot approve anything (no quorum at all)
    const done = await bootstrapQuorumOffline({
      store: signer.store,
      credential: { type: 'passphrase', passphrase: new TextEncoder().encode(TEST_PASSPHRASE) },
      quorum: {
        threshold: 2,
        admins: [adminEntry(A), adminEntry(B), { publicKey: ids.P, email: 'pat@example.com' }, { publicKey: ids.Q, name: 'Quinn', email: 'quinn@example.com' }],
      },
      now: () => signer.clock.now,
    });
    assert.equal(done.admins, 4);
    const { quorum } = await signer.kernel.listProposals(app, {});
    const p = quorum?.admins.find((a) => a.publicKey === ids.P);
    assert.equal(p?.name, 'Pat');
    assert.equal(p?.passkey?.credentialId, P.credentials[0]?.id);
    assert.equal(p?.passkey?.rpId, 'localhost');
    assert.match(p?.passkey?.publicKey ?? '', /^[A-Za-z0-9_-]+$/);
    assert.equal(quorum?.admins.find((a) => a.publicKey === ids.Q)?.email, 'quinn@example.com');
    assert.equal(quorum?.admins.find((a) => a.publicKey === A.publicKey)?.passkey, undefined);
    const candidates = await signer.kernel.listAdminCandidates(app);
    // (enrolled at the same instant of the test clock: listed by id then, so sorted here by name)
    assert.deepEqual(candidates.map((c) => [c.name, c.inAdminSet]).sort(), [
      ['Pat', true],
      ['Quinn', true],
      ['Robin', false],
    ]);
  });

  test('M−1 passkey approvals change nothing; the M-th (a key-file admin’s) applies it; both stored approvals verify again', async () => {
    const payload = SETTINGS(1);
    const { id } = await proposeByA(payload);
    const once = await approveOnPage(id, payload, await pageAssertion(P, id));
    assert.equal(once.state, 'pending');
    assert.deepEqual(
      once.approvals.map((a) => a.admin),
      [ids.P],
    );
    assert.equal((await signer.kernel.readDeploymentSettings()).timelockDelaySeconds, 48 * 3600);
    const payloadHash = computePayloadHash(KIND, payload);
    const proposal = await signer.kernel.getProposal(app, { id });
    const statement = { signerId: signer.kernel.signerId as string, id, proposer: A.publicKey, expiresAt: proposal.expiresAt, payloadHash };
    const applied = await signer.kernel.approveProposal(app, {
      id,
      admin: B.publicKey,
      payloadHash,
      signature: signAdminMessage(B.privateKey, APPROVE_LABEL, statement),
    });
    assert.equal(applied.state, 'applied');
    assert.equal((await signer.kernel.readDeploymentSettings()).timelockDelaySeconds, 7201);
    assert.deepEqual((await signer.kernel.getProposal(app, { id })).approvals.map((a) => a.admin).sort(), [B.publicKey, ids.P].sort());
    const apply = (await audit('quorum.apply')).at(-1);
    assert.deepEqual((apply?.detail.approvers as string[]).sort(), [B.publicKey, ids.P].sort());
  });

  test('two passkey admins meet M on the page: applied atomically, audited with the approvers', async () => {
    const payload = SETTINGS(2);
    const { id } = await proposeByA(payload);
    await approveOnPage(id, payload, await pageAssertion(P, id));
    const applied = await approveOnPage(id, payload, await pageAssertion(Q, id));
    assert.equal(applied.state, 'applied');
    assert.equal((await signer.kernel.readDeploymentSettings()).timelockDelaySeconds, 7202);
    const apply = (await audit('quorum.apply')).at(-1);
    assert.equal(apply?.detail.proposalId, id);
    assert.deepEqual((apply?.detail.approvers as string[]).sort(), [ids.P, ids.Q].sort());
  });

  test('a passkey approval replayed onto a second proposal is admin_signature_invalid (audited); a stored one moved there by hand never counts', async () => {
    const one = SETTINGS(3);
    const two = SETTINGS(3);
    const first = await proposeByA(one);
    const second = await proposeByA(two);
    const assertion = await pageAssertion(P, first.id);
    await expectCode(approveOnPage(second.id, two, assertion), 'admin_signature_invalid');
    const denied = (await audit('quorum.approve')).at(-1);
    assert.deepEqual(
      [denied?.decision, denied?.reason, denied?.detail.proposalId, denied?.detail.admin],
      ['denied', 'admin_signature_invalid', second.id, ids.P],
    );
    // the same assertion on its own proposal still counts
    await approveOnPage(first.id, one, assertion);
    // a database writer copies P's stored approval row onto the second proposal: it does not count there
    const [row] = await signer.sql('SELECT signature FROM proposal_approvals WHERE proposal_id = $1 AND admin = $2', first.id, ids.P);
    await signer.sql(
      'INSERT INTO proposal_approvals (proposal_id, admin, signature, created_at) VALUES ($1, $2, $3, $4)',
      second.id,
      ids.P,
      row?.signature,
      signer.clock.now,
    );
    assert.deepEqual((await signer.kernel.getProposal(app, { id: second.id })).approvals, []);
    assert.equal((await signer.kernel.getProposal(app, { id: first.id })).approvals.length, 1);
  });

  test('an assertion under the propose label, or for another signer id, is admin_signature_invalid', async () => {
    const payload = SETTINGS(4);
    const { id, statement } = await proposeByA(payload);
    const { optionsJSON } = await signer.kernel.adminPageProposal(id);
    const options = optionsJSON as unknown as RequestOptionsJSON;
    const proposeChallenge = adminPasskeyChallenge(PROPOSE_LABEL, statement);
    await expectCode(approveOnPage(id, payload, P.get(options, { challenge: proposeChallenge })), 'admin_signature_invalid');
    const otherSigner = adminPasskeyChallenge(APPROVE_LABEL, { ...statement, signerId: '00000000-0000-4000-8000-000000000000' });
    await expectCode(approveOnPage(id, payload, P.get(options, { challenge: otherSigner })), 'admin_signature_invalid');
    // the honest challenge is what the page offers: SHA-256 of the approve statement
    assert.equal(options.challenge, toBase64url(adminPasskeyChallenge(APPROVE_LABEL, statement)));
    assert.equal((await signer.kernel.getProposal(app, { id })).approvals.length, 0);
  });

  test('a candidate never added to the set, and a stranger’s credential, are admin_unknown (audited)', async () => {
    const payload = SETTINGS(5);
    const { id } = await proposeByA(payload);
    await expectCode(approveOnPage(id, payload, await pageAssertion(R, id, { credentialId: R.credentials[0]?.id as string })), 'admin_unknown');
    const denied = (await audit('quorum.approve')).at(-1);
    assert.deepEqual([denied?.reason, denied?.detail.admin], ['admin_unknown', ids.R]);
    const stranger = new SoftAuthenticator(ORIGIN);
    stranger.create({
      rp: { id: 'localhost', name: 'x' },
      user: { id: 'AAAA', name: 'x', displayName: 'x' },
      challenge: 'AAAA',
      pubKeyCredParams: [{ alg: -7, type: 'public-key' }],
    });
    await expectCode(approveOnPage(id, payload, await pageAssertion(stranger, id, { credentialId: stranger.credentials[0]?.id as string })), 'admin_unknown');
    // P's credential id, signed with another key: it is P's admin entry, and the signature fails
    await expectCode(
      approveOnPage(id, payload, await pageAssertion(P, id, { signWith: stranger.credentials[0]?.secretKey as Uint8Array })),
      'admin_signature_invalid',
    );
    assert.equal((await signer.kernel.getProposal(app, { id })).approvals.length, 0);
  });

  test('a passkey admin proposes; its own approval is proposal_self_approval; another approving twice is proposal_already_approved', async () => {
    const payload = SETTINGS(6);
    const id = newId();
    const expiresAt = signer.clock.now + 3600_000;
    const statement: AdminStatement = {
      signerId: signer.kernel.signerId as string,
      id,
      proposer: ids.P,
      expiresAt,
      payloadHash: computePayloadHash(KIND, payload),
    };
    const { optionsJSON } = await signer.kernel.adminPageProposal((await proposeByA(SETTINGS(60))).id);
    const proposal = P.get(optionsJSON as unknown as RequestOptionsJSON, { challenge: adminPasskeyChallenge(PROPOSE_LABEL, statement) });
    const made = await signer.kernel.proposeChange(app, { id, kind: KIND, payload, proposer: ids.P, expiresAt, signature: proposal });
    assert.equal(made.proposer, ids.P);
    await expectCode(approveOnPage(id, payload, await pageAssertion(P, id)), 'proposal_self_approval');
    await approveOnPage(id, payload, await pageAssertion(Q, id));
    await expectCode(approveOnPage(id, payload, await pageAssertion(Q, id)), 'proposal_already_approved');
    assert.equal((await signer.kernel.getProposal(app, { id })).approvals.length, 1);
  });

  test('a counter that goes backwards is passkey_counter_invalid; a modified payload is proposal_payload_mismatch; after the expiry proposal_expired', async () => {
    const payload = SETTINGS(7);
    const { id, statement } = await proposeByA(payload, 120);
    const last = P.credentials[0]?.counter as number;
    assert.ok(last > 1);
    await expectCode(approveOnPage(id, payload, await pageAssertion(P, id, { counter: last - 1 })), 'passkey_counter_invalid');
    await expectCode(approveOnPage(id, payload, await pageAssertion(P, id, { counter: 0 })), 'passkey_counter_invalid');
    // an assertion over another payload's hash verifies as P's, and is refused for the payload
    const other = SETTINGS(70);
    const { optionsJSON } = await signer.kernel.adminPageProposal(id);
    const forOther = P.get(optionsJSON as unknown as RequestOptionsJSON, {
      challenge: adminPasskeyChallenge(APPROVE_LABEL, { ...statement, payloadHash: computePayloadHash(KIND, other) }),
      counter: last + 10,
    });
    await expectCode(approveOnPage(id, other, forOther), 'proposal_payload_mismatch');
    signer.clock.now += 121_000;
    await expectCode(approveOnPage(id, payload, P.get(optionsJSON as unknown as RequestOptionsJSON, { counter: last + 20 })), 'proposal_expired');
    const reasons = (await audit('quorum.approve')).filter((r) => r.detail.proposalId === id).map((r) => r.reason);
    assert.deepEqual(reasons, ['passkey_counter_invalid', 'passkey_counter_invalid', 'proposal_payload_mismatch', 'proposal_expired']);
  });

  test('the admin passkey’s counter row deleted or forged: record_unreadable (fail closed)', async () => {
    const payload = SETTINGS(8);
    const { id } = await proposeByA(payload);
    await signer.sql('UPDATE admin_passkeys SET counter = 0 WHERE id = $1', ids.Q);
    await expectCode(approveOnPage(id, payload, await pageAssertion(Q, id)), 'record_unreadable');
    assert.equal((await signer.kernel.getProposal(app, { id })).approvals.length, 0);
  });
});

describe('admin passkeys: joining by a quorum.set proposal', () => {
  test('a quorum.set naming a credential that is no candidate of this signer is refused at application; naming candidate R adds it, and R approves', async () => {
    const { quorum } = await signer.kernel.listProposals(app, {});
    // Q's counter row was forged above: a set that keeps Q is record_unreadable at application (fail closed), so Q is replaced
    const current = (quorum?.admins ?? []).filter((a) => a.publicKey !== ids.Q).map((a) => ({ ...a }));
    const robin = (await signer.kernel.listAdminCandidates(app)).find((c) => c.adminId === ids.R);
    assert.ok(robin !== undefined && !robin.inAdminSet);
    // a forged entry: R's id and credential id with another public key (the approvers would see it; the kernel refuses it anyway)
    const forged = { ...robin.entry, email: 'robin@example.com', passkey: { ...robin.entry.passkey, publicKey: `pQECAyYgASFYI${'A'.repeat(40)}` } };
    const bad = { threshold: 2, admins: [...current, forged] };
    const refused = await proposeByA(bad);
    await approveOnPage2('quorum.set', refused.id, bad, P);
    // (Q can act no more; B, a key-file admin, approves)
    await expectCode(approveByB('quorum.set', refused.id, bad), 'invalid_input');
    assert.equal((await signer.kernel.getProposal(app, { id: refused.id })).state, 'pending');
    const applyDenied = (await audit('quorum.apply')).at(-1);
    assert.deepEqual([applyDenied?.decision, applyDenied?.reason, applyDenied?.detail.proposalId], ['denied', 'invalid_input', refused.id]);
    // the candidate's own entry, as custos admin candidates prints it, with the address every admin needs
    const good = { threshold: 2, admins: [...current, { ...robin.entry, email: 'robin@example.com' }] };
    const added = await proposeByA(good);
    await approveOnPage2('quorum.set', added.id, good, P);
    assert.equal((await approveByB('quorum.set', added.id, good)).state, 'applied');
    assert.equal((await signer.kernel.listAdminCandidates(app)).find((c) => c.adminId === ids.R)?.inAdminSet, true);
    // R, an admin now, approves
    const payload = SETTINGS(9);
    const { id } = await proposeByA(payload);
    assert.deepEqual(
      (await approveOnPage(id, payload, await pageAssertion(R, id))).approvals.map((a) => a.admin),
      [ids.R],
    );
  });
});

describe('admin passkeys: the admin page login', () => {
  test('a passkey admin logs in (session token checked, expires); a candidate, a tampered or expired token do not', async () => {
    const { optionsJSON, issuedAt, nonce } = await signer.kernel.adminLoginOptions();
    const login = await signer.kernel.finishAdminLogin({ issuedAt, nonce, proof: P.get(optionsJSON as unknown as RequestOptionsJSON) });
    assert.equal(login.adminId, ids.P);
    assert.equal((await signer.kernel.checkAdminSession(login.token))?.publicKey, ids.P);
    const tampered = login.token.replace(ids.P, ids.Q.replace(/.$/, ids.Q.endsWith('0') ? '1' : '0'));
    assert.equal(await signer.kernel.checkAdminSession(tampered), undefined);
    const longer = login.token.replace(`.${login.expiresAt}.`, `.${login.expiresAt + 3600_000}.`);
    assert.equal(await signer.kernel.checkAdminSession(longer), undefined);
    // S is a candidate (registered, never added): not in the set, no login
    const S = new SoftAuthenticator(ORIGIN);
    await enrol(S, 'Sam');
    await expectCode(
      signer.kernel.finishAdminLogin({
        issuedAt,
        nonce,
        proof: S.get(optionsJSON as unknown as RequestOptionsJSON, { credentialId: S.credentials[0]?.id as string }),
      }),
      'admin_unknown',
    );
    // an assertion over another nonce's challenge is refused
    await expectCode(
      signer.kernel.finishAdminLogin({ issuedAt, nonce: 'A'.repeat(22), proof: P.get(optionsJSON as unknown as RequestOptionsJSON) }),
      'admin_signature_invalid',
    );
    signer.clock.now += 15 * 60_000 + 1;
    assert.equal(await signer.kernel.checkAdminSession(login.token), undefined);
    // a login page older than 5 minutes
    await expectCode(signer.kernel.finishAdminLogin({ issuedAt, nonce, proof: P.get(optionsJSON as unknown as RequestOptionsJSON) }), 'challenge_required');
    const logins = await audit('quorum.admin-login');
    assert.deepEqual(
      logins.map((r) => r.reason),
      [null, 'admin_unknown', 'admin_signature_invalid', 'challenge_required'],
    );
  });
});
