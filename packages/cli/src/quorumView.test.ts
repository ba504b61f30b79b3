import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import {
  bootstrapQuorumOffline,
  changePayloadHash,
  computePayloadHash,
  generateAdminKey,
  PROPOSE_LABEL,
  parseAdminKeyFile,
  signAdminMessage,
} from '@custos/kernel';
import { codeOf, createTestSigner, RAW_HASHES_ALLOWED, recordTestSecret, startTestDelivery, TEST_PASSPHRASE, totpFromUri } from '@custos/server/testing';
import { adminCommand } from './commands/admin.js';
import { secretInputs } from './testing/cliHarness.js';

// Issue 13 point 4 ("shown to each approver in full"; review finding G4): `custos admin show` of a
// wallet.change.approve for a TOTP-only wallet's new delivery address prints the channel and the
// address MASKED (opened by the kernel at view time), never the address itself (issue 14 point 6).

const inputs = secretInputs('custos-cli-quorum-view');
const PUBLIC_URL = 'http://localhost:8701';

describe('custos admin show: what a wallet.change.approve adds', () => {
  it('prints the new delivery address masked (channel, first characters, length, domain), never in full', { timeout: 120_000 }, async () => {
    const signer = await createTestSigner({
      policyDefaults: RAW_HASHES_ALLOWED,
      scopes: ['admin', 'register', 'derive', 'sign'],
      appOptions: { publicUrl: PUBLIC_URL },
      kernelOptions: { oob: { limits: { perHour: 40 } } },
    });
    const delivery = await startTestDelivery(signer, { publicUrl: PUBLIC_URL });
    try {
      const A = parseAdminKeyFile(JSON.stringify(generateAdminKey()));
      const B = parseAdminKeyFile(JSON.stringify(generateAdminKey()));
      await bootstrapQuorumOffline({
        store: signer.store,
        credential: { type: 'passphrase', passphrase: new TextEncoder().encode(TEST_PASSPHRASE) },
        quorum: {
          threshold: 1,
          admins: [
            { publicKey: A.publicKey, email: 'a@example.com' },
            { publicKey: B.publicKey, email: 'b@example.com' },
          ],
        },
        deployment: { timelockDelaySeconds: 48 * 3600, webhookUrl: null, policyDefaults: RAW_HASHES_ALLOWED },
      });
      await signer.kernel.refreshPolicyDefaults();
      const app = await signer.kernel.authenticateApiKey(signer.apiKey);
      const walletName = 'cli-v1';
      const address = 'bo.secret-box@example.net';
      const { otpauthUri } = await signer.kernel.enrollTotp(app, { walletName });
      const link = await signer.kernel.createEnrollment(app, { walletName, kind: 'oob' });
      recordTestSecret('enrollmentCapability', link.capability);
      await signer.kernel.setEnrollmentAddress(link.capability, { channel: 'email', address });
      const verify = await delivery.deliver();
      assert.equal(verify.to, address);
      signer.clock.now += 30_000;
      const done = await signer.kernel.completeEnrollment(link.capability, { proof: codeOf(verify.text), consent: totpFromUri(otpauthUri, signer.clock.now) });
      assert.equal(done.state, 'completed');
      const [row] = await signer.sql('SELECT id, payload FROM pending_changes WHERE wallet_name = $1', walletName);
      const payload = { changeId: String(row?.id), walletName, kind: 'factor.add', payloadHash: changePayloadHash({ payload: String(row?.payload) }) };
      const id = 'ab'.repeat(16);
      const expiresAt = signer.clock.now + 3_600_000;
      const statement = {
        signerId: signer.kernel.signerId as string,
        id,
        proposer: A.publicKey,
        expiresAt,
        payloadHash: computePayloadHash('wallet.change.approve', payload),
      };
      await signer.kernel.proposeChange(app, {
        id,
        kind: 'wallet.change.approve',
        payload,
        proposer: A.publicKey,
        expiresAt,
        signature: signAdminMessage(A.privateKey, PROPOSE_LABEL, statement),
      });

      await signer.app.listen({ port: 0, host: '127.0.0.1' });
      const url = `http://127.0.0.1:${(signer.app.server.address() as AddressInfo).port}`;
      const apiKeyFile = inputs.write('api-key', `${signer.apiKey}\n`);
      let stdout = '';
      const io = {
        stdout: {
          write: (c: string) => {
            stdout += c;
            return true;
          },
        },
        stderr: { write: () => true },
        readLine: async () => null,
      };
      assert.equal(await adminCommand(['show', '--url', url, '--api-key-file', apiKeyFile, '--id', id], io), 0);
      assert.match(stdout, /approves {4}The stored change matches the proposal/);
      assert.ok(stdout.includes('Adds delivery address: e-mail bo•••••••••••@example.net (13 characters before @)'), stdout);
      assert.ok(stdout.includes(`(factor.add) of wallet "${walletName}"`), stdout);
      assert.match(stdout, /Requested: \d{4}-\d\d-\d\dT/);
      assert.ok(!stdout.includes('secret-box'), 'the address is never printed');
    } finally {
      await delivery.close();
      await signer.close();
    }
  });
});
