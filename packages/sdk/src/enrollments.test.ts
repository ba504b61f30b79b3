import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CustosClient } from './client.js';
import { createCustosClient } from './client.js';
import { CustosApiError } from './errors.js';
import { listenTestSigner } from './testing/listenTestSigner.js';
import { recordTestSecret, totpFromUri } from './testing/serverTesting.js';

// Issue 11, point 4: the SDK's createEnrollment against a real kernel — the link for the owner, the
// owner enrolling on the kernel's page (here through the kernel, as the page does), the refusals.

/** The middle of a 30 s step. */
const START_MS = 1_700_000_010_000;

describe('enrolment links through the SDK (real kernel, SQLite)', () => {
  let signer: Awaited<ReturnType<typeof listenTestSigner>>;
  let client: CustosClient;

  before(async () => {
    signer = await listenTestSigner({ startMs: START_MS });
    client = createCustosClient({ url: signer.url, apiKey: signer.apiKey });
  });
  after(async () => {
    await signer.close();
  });

  function capabilityOf(enrollUrl: string): string {
    const capability = new URL(enrollUrl).pathname.split('/').at(-1) ?? '';
    recordTestSecret('enrolment capability', capability);
    return capability;
  }

  it('createEnrollment → the owner activates TOTP on the page → the wallet has totp; a second link is already_enrolled', async () => {
    const created = await client.createEnrollment({ walletName: 'sdk-enrol', ttlSeconds: 600 });
    assert.deepEqual(Object.keys(created).sort(), ['enrollUrl', 'expiresAt', 'id', 'kind', 'walletName']);
    assert.match(created.id, /^[0-9a-f]{32}$/);
    assert.equal(created.walletName, 'sdk-enrol');
    assert.equal(created.kind, 'totp');
    assert.equal(created.expiresAt, START_MS + 600_000);
    assert.match(created.enrollUrl, /^http:\/\/localhost:\d+\/enroll\/[A-Za-z0-9_-]{43}$/);
    const capability = capabilityOf(created.enrollUrl);
    const page = await signer.kernel.openEnrollmentPage(capability);
    const { otpauthUri } = page.shown as { otpauthUri: string };
    recordTestSecret('otpauth uri', otpauthUri);
    const secret = new URL(otpauthUri).searchParams.get('secret') ?? assert.fail('no secret');
    recordTestSecret('totp secret', secret);
    assert.ok(!JSON.stringify(created).includes(secret));
    const code = totpFromUri(otpauthUri, signer.clock.now);
    recordTestSecret('totp code', code);
    assert.equal((await signer.kernel.completeEnrollment(capability, { proof: code })).state, 'completed');
    assert.deepEqual((await client.getWallet({ walletName: 'sdk-enrol' })).factors, ['totp']);
    await assert.rejects(
      client.createEnrollment({ walletName: 'sdk-enrol' }),
      (e: unknown) => e instanceof CustosApiError && e.code === 'already_enrolled' && e.status === 409,
    );
  });

  it('the default lifetime is a day; ttlSeconds out of range is refused invalid_input', async () => {
    const created = await client.createEnrollment({ walletName: 'sdk-enrol-2' });
    capabilityOf(created.enrollUrl);
    assert.equal(created.expiresAt, signer.clock.now + 86_400_000);
    for (const ttlSeconds of [299, 604_801])
      await assert.rejects(
        client.createEnrollment({ walletName: 'sdk-enrol-2', ttlSeconds }),
        (e: unknown) => e instanceof CustosApiError && e.code === 'invalid_input' && e.status === 400,
      );
  });
});
