import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { CustosClient } from './client.js';
import { createCustosClient } from './client.js';
import { CustosApiError, CustosInputError } from './errors.js';
import { listenTestSigner } from './testing/listenTestSigner.js';
import { highS, RAW_HASHES_ALLOWED, recordTestSecret, standInCard } from './testing/serverTesting.js';

// Issue 12, point 1: the SDK's hardware-key methods against a real kernel — enrollHwkey,
// hwkeyChallenge and answerHwkeyChallenge with a stand-in card (@noble/curves + @scure/bip32), the
// relayed answer approving as present, then the signature with the approval; the refusals as
// CustosApiError with the kernel's codes.

const HASH = `0x${'12'.repeat(32)}` as const;
const START_MS = 1_700_000_010_000;

describe('hardware keys through the SDK (real kernel, SQLite)', () => {
  let signer: Awaited<ReturnType<typeof listenTestSigner>>;
  let client: CustosClient;
  const card = standInCard(randomBytes(32));

  before(async () => {
    signer = await listenTestSigner({ startMs: START_MS, policyDefaults: RAW_HASHES_ALLOWED });
    client = createCustosClient({ url: signer.url, apiKey: signer.apiKey });
  });
  after(async () => {
    await signer.close();
  });

  it('enrollHwkey → createApproval → hwkeyChallenge → the card signs → answerHwkeyChallenge approves (present) → signHash with approvalId', async () => {
    const enrolled = await client.enrollHwkey({ walletName: 'sdk-card', xpub: card.xpub, subpath: 'm/0/1' });
    assert.deepEqual(enrolled, { walletName: 'sdk-card', kind: 'hwkey', publicKey: card.publicKey('0/1'), subpath: '0/1', enrolledVia: 'api' });
    const created = await client.createApproval({ walletName: 'sdk-card', keyIndex: 0, operation: { hash: HASH } });
    recordTestSecret('approveUrl', created.approveUrl);
    assert.equal(created.requiredStrength, 'present');
    const challenge = await client.hwkeyChallenge(created.id);
    assert.deepEqual(Object.keys(challenge).sort(), ['digest', 'expiresAt', 'subpath']);
    assert.equal(challenge.subpath, '0/1');
    assert.equal(challenge.expiresAt, created.expiresAt);
    // a high s is refused with its code, and spends the challenge
    await assert.rejects(
      client.answerHwkeyChallenge(created.id, highS(card.sign(challenge.digest, challenge.subpath))),
      (e: unknown) => e instanceof CustosApiError && e.code === 'hwkey_signature_high_s' && e.status === 403,
    );
    const fresh = await client.hwkeyChallenge(created.id);
    const view = await client.answerHwkeyChallenge(created.id, card.sign(fresh.digest, fresh.subpath));
    assert.deepEqual([view.state, view.factor], ['approved', 'hwkey']);
    const signed = await client.signHash({ walletName: 'sdk-card', keyIndex: 0, hash: HASH, approvalId: created.id });
    assert.equal(signed.opHash, created.opHash);
  });

  it('refusals: already_enrolled, invalid_input naming the field, an id checked before any request', async () => {
    await client.enrollHwkey({ walletName: 'sdk-card-2', publicKey: card.publicKey('0') });
    await assert.rejects(
      client.enrollHwkey({ walletName: 'sdk-card-2', xpub: card.xpub, subpath: '0' }),
      (e: unknown) => e instanceof CustosApiError && e.code === 'already_enrolled' && e.status === 409,
    );
    await assert.rejects(
      client.enrollHwkey({ walletName: 'sdk-card-3', xpub: card.xpub, subpath: "0'" }),
      (e: unknown) => e instanceof CustosApiError && e.code === 'invalid_input' && e.details.field === 'subpath',
    );
    await assert.rejects(client.hwkeyChallenge('../x'), (e: unknown) => e instanceof CustosInputError);
    await assert.rejects(client.answerHwkeyChallenge('ABC', '00'), (e: unknown) => e instanceof CustosInputError);
  });
});
