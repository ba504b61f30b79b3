import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { HWKEY_CHALLENGE_LIMIT } from '@custos/kernel';
import { boundTestFactor } from './testing/boundTestFactor.js';
import { RAW_HASHES_ALLOWED, createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { highS, type StandInCard, standInCard } from './testing/standInCard.js';

// Issue 12, points 1 and 5 (hardware keys), through the API with buildApp + inject: enrolment by
// the backend (POST /v1/factors), the challenge (POST /v1/approvals/{id}/hwkey-challenge) and the
// relayed answer (POST /v1/approvals/{id}/hwkey); every rule attacked with its exact code. The
// card is a stand-in on @noble/curves + @scure/bip32 (testing/standInCard.ts), independent of the
// kernel's verifier. The page flows (bound) are in pages/hwkeyPageRoutes.test.ts.

const T0 = Date.UTC(2026, 11, 7, 9, 0, 0);
const HASH = `0x${'cd'.repeat(32)}`;
const SUBPATH = '0/5';

type Json = Record<string, unknown>;

describe('hardware keys through the API (relayed: present)', () => {
  let signer: TestSigner;
  let card: StandInCard;
  let otherCard: StandInCard;

  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, appOptions: { publicUrl: 'http://localhost:8421' } });
    card = standInCard(randomBytes(32));
    otherCard = standInCard(randomBytes(32));
  });
  after(async () => {
    await signer.close();
  });

  const post = (url: string, payload?: Json) =>
    signer.app.inject({ method: 'POST', url, headers: signer.auth(), ...(payload === undefined ? {} : { payload }) });

  function expectError(res: { statusCode: number; body: string }, status: number, code: string, field?: string): Json {
    assert.equal(res.statusCode, status, res.body);
    const error = (JSON.parse(res.body) as { error: Json }).error;
    assert.equal(error.code, code, res.body);
    if (field !== undefined) assert.equal((error.details as Json | undefined)?.field, field, res.body);
    return error;
  }

  async function enrol(walletName: string, body: Json = { xpub: card.xpub, subpath: SUBPATH }) {
    const res = await post('/v1/factors', { walletName, kind: 'hwkey', ...body });
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as Json;
  }

  async function approval(walletName: string, ttlSeconds = 600): Promise<{ id: string; opHash: string; expiresAt: number; approveUrl: string }> {
    const res = await post('/v1/approvals', { walletName, keyIndex: 0, operation: { hash: HASH }, ttlSeconds });
    assert.equal(res.statusCode, 201, res.body);
    const created = res.json() as { id: string; opHash: string; expiresAt: number; approveUrl: string };
    recordTestSecret('approveUrl', created.approveUrl);
    return created;
  }

  async function challenge(id: string): Promise<{ digest: string; subpath: string; expiresAt: number }> {
    const res = await post(`/v1/approvals/${id}/hwkey-challenge`);
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as { digest: string; subpath: string; expiresAt: number };
  }

  const answer = (id: string, signature: string) => post(`/v1/approvals/${id}/hwkey`, { signature });

  it('enrolment by the backend: the key derived from the xpub along the canonical subpath, enrolled via api; audited', async () => {
    const enrolled = await enrol('hw-enrol', { xpub: card.xpub, subpath: 'm/0/5' });
    assert.deepEqual(enrolled, { walletName: 'hw-enrol', kind: 'hwkey', publicKey: card.publicKey(SUBPATH), subpath: '0/5', enrolledVia: 'api' });
    const [row] = await signer.sql('SELECT id, xpub, subpath, enrolled_via, issued FROM hwkey_factors WHERE wallet_name = $1', 'hw-enrol');
    assert.deepEqual({ ...row, issued: Number(row?.issued) }, { id: card.publicKey(SUBPATH), xpub: card.xpub, subpath: '0/5', enrolled_via: 'api', issued: 0 });
    const [audit] = await signer.sql("SELECT decision, detail FROM audit_log WHERE action = 'hwkey.enroll' AND wallet_name = $1", 'hw-enrol');
    assert.equal(audit?.decision, 'allowed');
    assert.equal((JSON.parse(String(audit?.detail)) as { publicKey?: string }).publicKey, card.publicKey(SUBPATH), 'the record names the key');
    // a bare public key, and an xpub without a subpath (the account key itself)
    assert.equal((await enrol('hw-bare', { publicKey: otherCard.publicKey('1') })).publicKey, otherCard.publicKey('1'));
    assert.deepEqual(await enrol('hw-account', { xpub: card.xpub }), {
      walletName: 'hw-account',
      kind: 'hwkey',
      publicKey: card.publicKey(''),
      subpath: '',
      enrolledVia: 'api',
    });
    // a mainnet xpub is accepted as well
    const mainnet = standInCard(randomBytes(32), { testnet: false });
    assert.match(mainnet.xpub, /^xpub/);
    assert.equal((await enrol('hw-mainnet', { xpub: mainnet.xpub, subpath: '7' })).publicKey, mainnet.publicKey('7'));
  });

  it('API enrolment only for a wallet with no factor: a second card, or a wallet with TOTP, is already_enrolled; nothing is written', async () => {
    await enrol('hw-twice');
    expectError(
      await post('/v1/factors', { walletName: 'hw-twice', kind: 'hwkey', xpub: otherCard.xpub, subpath: '0' }),
      409,
      'already_enrolled',
      'walletName',
    );
    const [row] = await signer.sql('SELECT id FROM hwkey_factors WHERE wallet_name = $1', 'hw-twice');
    assert.equal(row?.id, card.publicKey(SUBPATH), 'the first card stays');
    assert.equal((await post('/v1/totp/enroll', { walletName: 'hw-has-totp' })).statusCode, 200);
    expectError(
      await post('/v1/factors', { walletName: 'hw-has-totp', kind: 'hwkey', xpub: card.xpub, subpath: SUBPATH }),
      409,
      'already_enrolled',
      'walletName',
    );
    assert.deepEqual(await signer.sql('SELECT id FROM hwkey_factors WHERE wallet_name = $1', 'hw-has-totp'), []);
  });

  it('bad input is 400 invalid_input naming the field, and writes nothing: hardened step, 3 steps, a private xprv, bad checksum, wrong version, bad public key', async () => {
    const tpubBytes = Buffer.from(card.xpub);
    const corrupted = card.xpub.slice(0, -1) + (card.xpub.endsWith('1') ? '2' : '1');
    const cases: Array<[Json, string, RegExp?]> = [
      [{ xpub: card.xpub, subpath: "0'/5" }, 'subpath', /non-hardened/],
      [{ xpub: card.xpub, subpath: '0h' }, 'subpath', /non-hardened/],
      [{ xpub: card.xpub, subpath: '0/1/2' }, 'subpath', /at most 2 steps/],
      [{ xpub: card.xpub, subpath: '2147483648' }, 'subpath'],
      [{ xpub: card.xpub, subpath: '05' }, 'subpath'],
      [{ xpub: card.xprv, subpath: SUBPATH }, 'xpub', /private/],
      [{ xpub: corrupted, subpath: SUBPATH }, 'xpub', /checksum/],
      [{ xpub: 'xpub-not-base58!', subpath: SUBPATH }, 'xpub'],
      [{ publicKey: `04${'11'.repeat(64)}` }, 'publicKey'],
      [{ publicKey: `02${'ff'.repeat(32)}` }, 'publicKey', /point/],
      [{ publicKey: card.publicKey(SUBPATH), subpath: SUBPATH }, 'subpath'],
      [{ publicKey: card.publicKey(SUBPATH), xpub: card.xpub }, 'publicKey', /exactly one/],
      [{}, 'xpub', /exactly one/],
    ];
    assert.ok(tpubBytes.length > 100);
    for (const [body, field, message] of cases) {
      const error = expectError(await post('/v1/factors', { walletName: 'hw-bad', kind: 'hwkey', ...body }), 400, 'invalid_input', field);
      if (message !== undefined) assert.match(String(error.message), message, JSON.stringify(body));
      // the private key is never echoed back
      assert.ok(!JSON.stringify(error).includes(card.xprv));
    }
    assert.deepEqual(await signer.sql('SELECT name FROM wallets WHERE name = $1', 'hw-bad'), [], 'no wallet was created');
  });

  it('the challenge: the kernel’s digest over label ‖ signerId ‖ approvalId ‖ opHash ‖ nonce (the nonce stored with the approval), the subpath, the expiry', async () => {
    await enrol('hw-digest');
    const created = await approval('hw-digest');
    const issued = await challenge(created.id);
    assert.equal(issued.subpath, SUBPATH);
    assert.equal(issued.expiresAt, created.expiresAt);
    const [row] = await signer.sql('SELECT challenge FROM approvals WHERE id = $1', created.id);
    const stored = JSON.parse(String(row?.challenge)) as { kind: string; nonce: string; issuedAt: number };
    assert.deepEqual({ kind: stored.kind, issuedAt: stored.issuedAt }, { kind: 'hwkey', issuedAt: T0 });
    const expected = createHash('sha256')
      .update(Buffer.from('custos.hwkey.v1\0', 'utf8'))
      .update(Buffer.from(signer.signerId.replace(/-/g, ''), 'hex'))
      .update(Buffer.from(created.id, 'hex'))
      .update(Buffer.from(created.opHash, 'hex'))
      .update(Buffer.from(stored.nonce, 'hex'))
      .digest('hex');
    assert.equal(issued.digest, expected);
    // a new challenge replaces the nonce
    const again = await challenge(created.id);
    assert.notEqual(again.digest, issued.digest);
  });

  it('full relayed flow: the card’s r‖s approves as present; the signature with approvalId then signs; the evidence records hwkey, present', async () => {
    await enrol('hw-flow');
    const created = await approval('hw-flow');
    const { digest, subpath } = await challenge(created.id);
    const res = await answer(created.id, card.sign(digest, subpath));
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual([res.json().state, res.json().factor], ['approved', 'hwkey']);
    const [row] = await signer.sql('SELECT evidence, challenge FROM approvals WHERE id = $1', created.id);
    const evidence = JSON.parse(String(row?.evidence)) as Json;
    assert.deepEqual([evidence.factor, evidence.strength, evidence.publicKey, evidence.enrolledVia], ['hwkey', 'present', card.publicKey(SUBPATH), 'api']);
    assert.equal(row?.challenge, null, 'the decision spent the challenge');
    const [audit] = await signer.sql("SELECT decision, detail FROM audit_log WHERE action = 'approval.approve' AND wallet_name = $1", 'hw-flow');
    assert.equal(audit?.decision, 'allowed');
    assert.equal((JSON.parse(String(audit?.detail)) as Json).channel, 'relay');
    const signed = await post('/v1/sign/hash', { walletName: 'hw-flow', keyIndex: 0, hash: HASH, approvalId: created.id });
    assert.equal(signed.statusCode, 200, signed.body);
    // answering again: the approval is decided
    expectError(await answer(created.id, card.sign(digest, subpath)), 409, 'approval_decided');
  });

  it('the 65-byte form with a header byte (27–34, 39–42) is accepted; the header never selects the key', async () => {
    await enrol('hw-header');
    for (const base of [27, 31, 39]) {
      const created = await approval('hw-header');
      const { digest, subpath } = await challenge(created.id);
      const { hex, recovery } = card.signWithHeader(digest, subpath, base);
      // the header's recovery bit flipped: still the enrolled key's signature, still accepted
      const flipped = (base + (1 - recovery)).toString(16).padStart(2, '0') + hex.slice(2);
      const res = await answer(created.id, base === 31 ? flipped : `0x${hex}`);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().state, 'approved');
    }
    // a header outside the ranges hosts use
    const created = await approval('hw-header');
    const { digest, subpath } = await challenge(created.id);
    const { hex } = card.signWithHeader(digest, subpath, 39);
    expectError(await answer(created.id, `23${hex.slice(2)}`), 400, 'invalid_input', 'signature');
    // (any answer spends the challenge, a malformed one too)
    expectError(await answer(created.id, hex), 409, 'challenge_required');
    // (65 bytes read as header ‖ r‖s: a header of 0xff is none a host uses)
    for (const malformed of ['zz'.repeat(64), card.sign(digest, subpath).slice(2), `ff${card.sign(digest, subpath)}`, `${card.sign(digest, subpath)}0`]) {
      await challenge(created.id);
      expectError(await answer(created.id, malformed), 400, 'invalid_input', 'signature');
    }
  });

  describe('attacks, each with its exact code (nothing approved)', () => {
    async function pending(walletName: string) {
      const created = await approval(walletName);
      return { created, issued: await challenge(created.id) };
    }
    async function stillPending(id: string) {
      const res = await signer.app.inject({ method: 'GET', url: `/v1/approvals/${id}`, headers: signer.auth() });
      assert.equal(res.json().state, 'pending');
    }
    before(async () => {
      await enrol('hw-attack');
    });

    it('a signature over another digest: hwkey_invalid', async () => {
      const { created, issued } = await pending('hw-attack');
      expectError(await answer(created.id, card.sign(randomBytes(32).toString('hex'), issued.subpath)), 403, 'hwkey_invalid', 'signature');
      await stillPending(created.id);
    });

    it('another approval’s digest (of the same wallet, by the same card): hwkey_invalid', async () => {
      const a = await pending('hw-attack');
      const b = await pending('hw-attack');
      expectError(await answer(a.created.id, card.sign(b.issued.digest, SUBPATH)), 403, 'hwkey_invalid');
      await stillPending(a.created.id);
    });

    it('a high-s signature (s → n − s of a valid one): hwkey_signature_high_s', async () => {
      const { created, issued } = await pending('hw-attack');
      const valid = card.sign(issued.digest, issued.subpath);
      expectError(await answer(created.id, highS(valid)), 403, 'hwkey_signature_high_s', 'signature');
      await stillPending(created.id);
    });

    it('a replayed signature: after any answer the challenge is spent (challenge_required); after a new challenge the old answer is hwkey_invalid', async () => {
      const { created, issued } = await pending('hw-attack');
      const valid = card.sign(issued.digest, issued.subpath);
      // a wrong answer spends the challenge …
      expectError(await answer(created.id, card.sign(randomBytes(32).toString('hex'), SUBPATH)), 403, 'hwkey_invalid');
      // … so the right one, sent after it, is refused
      expectError(await answer(created.id, valid), 409, 'challenge_required', 'signature');
      // a new challenge: the old answer answers the old nonce
      await challenge(created.id);
      expectError(await answer(created.id, valid), 403, 'hwkey_invalid');
      // no challenge ever issued for this approval
      const fresh = await approval('hw-attack');
      expectError(await answer(fresh.id, valid), 409, 'challenge_required');
      await stillPending(created.id);
    });

    it('a key that is not the enrolled one: another card, another subpath of the same card, and a 65-byte form whose header recovers another key', async () => {
      const { created, issued } = await pending('hw-attack');
      expectError(await answer(created.id, otherCard.sign(issued.digest, SUBPATH)), 403, 'hwkey_invalid');
      const second = await pending('hw-attack');
      expectError(await answer(second.created.id, card.sign(second.issued.digest, '0/6')), 403, 'hwkey_invalid');
      // the other card's 65-byte answer: its header recovers the other card's key, which is not the enrolled one
      const third = await pending('hw-attack');
      expectError(await answer(third.created.id, otherCard.signWithHeader(third.issued.digest, SUBPATH).hex), 403, 'hwkey_invalid');
      await stillPending(third.created.id);
    });

    it('the challenge is bounded by the approval’s expiry: an answer after it is approval_expired', async () => {
      const { created, issued } = await pending('hw-attack');
      const valid = card.sign(issued.digest, issued.subpath);
      const saved = signer.clock.now;
      signer.clock.now = created.expiresAt;
      try {
        expectError(await answer(created.id, valid), 409, 'approval_expired');
        expectError(await post(`/v1/approvals/${created.id}/hwkey-challenge`), 409, 'approval_expired');
      } finally {
        signer.clock.now = saved;
      }
    });

    it('another tenant’s approval, an unknown id, a wallet without a card', async () => {
      const other = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, tenant: 'other-tenant' });
      try {
        const created = await approval('hw-attack');
        const res = await other.app.inject({ method: 'POST', url: `/v1/approvals/${created.id}/hwkey-challenge`, headers: other.auth() });
        assert.equal(res.statusCode, 404);
      } finally {
        await other.close();
      }
      expectError(await post(`/v1/approvals/${'0'.repeat(32)}/hwkey-challenge`), 404, 'approval_not_found');
      assert.equal((await post('/v1/totp/enroll', { walletName: 'hw-totp-only' })).statusCode, 200);
      const created = await approval('hw-totp-only');
      expectError(await post(`/v1/approvals/${created.id}/hwkey-challenge`), 403, 'factor_required', 'kind');
    });
  });

  it('challenge issuance is limited per wallet (counted in the store): the 21st in 10 minutes is hwkey_challenge_rate_limited with Retry-After, across approvals; another wallet is not affected; the window passes', async () => {
    await enrol('hw-rate');
    await enrol('hw-rate-other');
    const a = await approval('hw-rate', 3600);
    const b = await approval('hw-rate', 3600);
    for (let i = 0; i < HWKEY_CHALLENGE_LIMIT.max; i++) await challenge(i % 2 === 0 ? a.id : b.id);
    const [row] = await signer.sql('SELECT issued FROM hwkey_factors WHERE wallet_name = $1', 'hw-rate');
    assert.equal(Number(row?.issued), HWKEY_CHALLENGE_LIMIT.max);
    const refused = await post(`/v1/approvals/${b.id}/hwkey-challenge`);
    expectError(refused, 429, 'hwkey_challenge_rate_limited');
    assert.equal(refused.headers['retry-after'], String(HWKEY_CHALLENGE_LIMIT.windowMs / 1000));
    // the refusal counted nothing
    const [after] = await signer.sql('SELECT issued FROM hwkey_factors WHERE wallet_name = $1', 'hw-rate');
    assert.equal(Number(after?.issued), HWKEY_CHALLENGE_LIMIT.max);
    // another wallet has its own budget
    await challenge((await approval('hw-rate-other')).id);
    const saved = signer.clock.now;
    signer.clock.now = saved + HWKEY_CHALLENGE_LIMIT.windowMs - 1000;
    try {
      expectError(await post(`/v1/approvals/${a.id}/hwkey-challenge`), 429, 'hwkey_challenge_rate_limited');
      signer.clock.now = saved + HWKEY_CHALLENGE_LIMIT.windowMs;
      const { digest, subpath } = await challenge(a.id);
      assert.equal((await answer(a.id, card.sign(digest, subpath))).json().state, 'approved');
    } finally {
      signer.clock.now = saved;
    }
  });

  it('the row’s MAC covers the key and the window: a database writer who swaps in another key, or resets the count, gets record_unreadable', async () => {
    await enrol('hw-tamper');
    const created = await approval('hw-tamper');
    await challenge(created.id);
    const [original] = await signer.sql('SELECT id, issued FROM hwkey_factors WHERE wallet_name = $1', 'hw-tamper');
    await signer.sql('UPDATE hwkey_factors SET id = $1 WHERE wallet_name = $2', otherCard.publicKey(SUBPATH), 'hw-tamper');
    expectError(await post(`/v1/approvals/${created.id}/hwkey-challenge`), 503, 'record_unreadable');
    await signer.sql('UPDATE hwkey_factors SET id = $1, issued = 0 WHERE wallet_name = $2', original?.id, 'hw-tamper');
    expectError(await post(`/v1/approvals/${created.id}/hwkey-challenge`), 503, 'record_unreadable');
    await signer.sql('UPDATE hwkey_factors SET issued = $1 WHERE wallet_name = $2', original?.issued, 'hw-tamper');
    await challenge(created.id);
  });
});

describe('the strength an approval recorded is what its signature checks (not the kind’s registered one)', () => {
  it('a relayed card answer (present) no longer signs once the wallet requires bound — though hwkey’s registered strength is bound', async () => {
    const signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, kernelOptions: { factors: [boundTestFactor()] } });
    try {
      const card = standInCard(randomBytes(32));
      const post = (url: string, payload?: Json) =>
        signer.app.inject({ method: 'POST', url, headers: signer.auth(), ...(payload === undefined ? {} : { payload }) });
      assert.equal((await post('/v1/factors', { walletName: 'upgraded', kind: 'hwkey', xpub: card.xpub, subpath: SUBPATH })).statusCode, 200);
      const created = (await post('/v1/approvals', { walletName: 'upgraded', keyIndex: 0, operation: { hash: HASH } })).json() as { id: string };
      const { digest, subpath } = (await post(`/v1/approvals/${created.id}/hwkey-challenge`)).json() as { digest: string; subpath: string };
      assert.equal((await post(`/v1/approvals/${created.id}/hwkey`, { signature: card.sign(digest, subpath) })).json().state, 'approved');
      // the wallet gains a bound factor (the kernel's seam): it now requires bound
      const app = await signer.kernel.authenticateApiKey(signer.apiKey);
      await signer.kernel.enrollFactor(app, { walletName: 'upgraded', kind: 'test-bound' });
      const refused = await post('/v1/sign/hash', { walletName: 'upgraded', keyIndex: 0, hash: HASH, approvalId: created.id });
      assert.equal(refused.statusCode, 403, refused.body);
      assert.equal(refused.json().error.code, 'consent_too_weak');
      assert.deepEqual(refused.json().error.details, { required: 'bound', given: 'present' });
    } finally {
      await signer.close();
    }
  });
});
