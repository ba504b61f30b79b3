import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../buildApp.js';
import { loggedUrl } from '../createLogger.js';
import { captureLogLines } from '../testing/captureLogLines.js';
import { createTestSigner, recordTestSecret, type TestSigner } from '../testing/createTestSigner.js';

const CAPABILITY = 'Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5';

describe('request URLs in the logs: no query string, no capability', () => {
  it('loggedUrl', () => {
    assert.equal(loggedUrl('/v1/wallets/address?walletName=alice&keyIndex=0'), '/v1/wallets/address');
    assert.equal(loggedUrl(`/approve/${CAPABILITY}`), '/approve/[redacted]');
    assert.equal(loggedUrl(`/changes/${CAPABILITY}`), '/changes/[redacted]', 'a timelocked change’s page (issue 13)');
    assert.equal(loggedUrl(`/approve/${CAPABILITY}?x=1`), '/approve/[redacted]');
    assert.equal(loggedUrl(`/approve/${CAPABILITY}/more`), '/approve/[redacted]');
    assert.equal(loggedUrl(`/approve/${CAPABILITY}/challenge`), '/approve/[redacted]');
    // the router decodes the path: so does the redaction
    assert.equal(loggedUrl(`/%61pprove/${CAPABILITY}`), '/approve/[redacted]');
    assert.equal(loggedUrl(`/APPROVE/${CAPABILITY}`), '/approve/[redacted]');
    assert.equal(loggedUrl(`/%61pprove/${CAPABILITY}%zz`), '/approve/[redacted]');
    assert.equal(loggedUrl('/v1/sign/hash#frag'), '/v1/sign/hash');
    // the enrolment page's capability too
    assert.equal(loggedUrl(`/enroll/${CAPABILITY}`), '/enroll/[redacted]');
    assert.equal(loggedUrl(`/enroll/${CAPABILITY}?x=1`), '/enroll/[redacted]');
    assert.equal(loggedUrl(`/%65nroll/${CAPABILITY}`), '/enroll/[redacted]');
    assert.equal(loggedUrl(`/ENROLL/${CAPABILITY}/more`), '/enroll/[redacted]');
    assert.equal(loggedUrl(`/owner/${CAPABILITY}`), '/owner/[redacted]');
    assert.equal(loggedUrl(`/%6Fwner/${CAPABILITY}?x=1`), '/owner/[redacted]');
    assert.equal(loggedUrl('/v1/enrollments'), '/v1/enrollments');
  });

  describe('in the server log', () => {
    let signer: TestSigner;
    let app: FastifyInstance;
    let lines: string[];
    before(async () => {
      signer = await createTestSigner();
      const captured = captureLogLines();
      lines = captured.lines;
      app = await buildApp({ kernel: signer.kernel, logger: captured.logger });
    });
    after(async () => {
      await app.close();
      await signer.close();
    });

    it('an approval page request and an API request with a query string are logged without them', async () => {
      await app.inject({ method: 'GET', url: `/approve/${CAPABILITY}?utm=1` });
      await app.inject({
        method: 'POST',
        url: `/%61pprove/${CAPABILITY}`,
        payload: 'csrf=x',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      await app.inject({ method: 'GET', url: '/v1/wallets/address?walletName=secret-wallet-name&keyIndex=0', headers: signer.auth() });
      // the enrolment page: a real link (its page found) and a post to it
      const created = await app.inject({ method: 'POST', url: '/v1/enrollments', headers: signer.auth(), payload: { walletName: 'log-enrol' } });
      const enrollCapability = /\/enroll\/([A-Za-z0-9_-]{43})$/.exec(created.json().enrollUrl)?.[1] ?? assert.fail(created.body);
      recordTestSecret('enrolment capability', enrollCapability);
      assert.equal((await app.inject({ method: 'GET', url: `/enroll/${enrollCapability}` })).statusCode, 200);
      await app.inject({
        method: 'POST',
        url: `/%65nroll/${enrollCapability}`,
        payload: 'csrf=x&code=000000',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      // An owner-device cookie (kernel/ownerDevice.ts) sent to the change and owner pages: never logged.
      const ownerDevice = `custos_owner_0123456789abcdef=${'Q'.repeat(75)}`;
      for (const url of [`/changes/${CAPABILITY}`, `/owner/${CAPABILITY}`])
        await app.inject({
          method: 'POST',
          url,
          payload: 'csrf=x&decision=cancel&code=000000',
          headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: ownerDevice },
        });
      const log = lines.join('');
      assert.ok(!log.includes('Q'.repeat(75)), 'the owner-device cookie is not in the log');
      assert.ok(!log.includes(enrollCapability), 'the enrolment capability is not in the log');
      assert.ok(log.includes('"url":"/enroll/[redacted]"'));
      assert.ok(!log.includes(CAPABILITY), 'the capability is not in the log');
      assert.ok(!log.includes('secret-wallet-name'), 'the query string is not in the log');
      assert.ok(log.includes('"url":"/approve/[redacted]"'));
      assert.ok(log.includes('"url":"/v1/wallets/address"'));
    });
  });
});
