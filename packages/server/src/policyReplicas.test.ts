import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { testArtifactsDir, testStoreKind } from './testing/createTestSigner.js';
import { callReplica, createReplicaCluster, errorCodeOf, type HttpResult, type ReplicaCluster } from './testing/replicas.js';

// A window limit under a race (issue 13, point 6): 50 concurrent signatures through two `custos
// serve` processes on one PostgreSQL schema, each transaction a tenth of the window, must sign
// exactly 10 — the usage rows are written in the unit of each signature, under the wallet's row lock
// and the audit head's, so no two replicas can both see room for the last one. A wallet never
// enrolled signs without consent, so nothing but the policy decides.

const GWEI = 10n ** 9n;
/** Each transaction's maximum cost: 0.001 ether + 21000 gas × 1 gwei. */
const COST = 10n ** 15n + 21_000n * GWEI;
const FITS = 10;
const REQUESTS = 50;

if (testStoreKind() !== 'postgres') {
  it('runs in the PostgreSQL pass', { skip: 'replica tests need PostgreSQL; they run in the postgres pass of npm test (scripts/test.mjs)' }, () => undefined);
} else {
  describe('policy limits across replicas (PostgreSQL)', { timeout: 300_000 }, () => {
    let cluster: ReplicaCluster;

    before(
      async () => {
        const policyFile = join(testArtifactsDir(), `policy-${process.pid}-${Date.now()}.json`);
        writeFileSync(policyFile, JSON.stringify({ native: { '1': { perWindow: String(COST * BigInt(FITS)) } }, windowSeconds: 86_400 }));
        cluster = await createReplicaCluster({ count: 2, serveArgs: ['--policy-file', policyFile] });
      },
      { timeout: 60_000 },
    );
    after(
      async () => {
        await cluster?.close();
      },
      { timeout: 30_000 },
    );

    it(`${REQUESTS} concurrent signatures through two replicas never overshoot a window limit: exactly ${FITS} signed`, async () => {
      const walletName = 'raced';
      const started = Date.now();
      const results: HttpResult[] = await Promise.all(
        Array.from({ length: REQUESTS }, (_, nonce) =>
          callReplica(cluster.replicas[nonce % 2] as (typeof cluster.replicas)[number], '/v1/sign/transaction', {
            method: 'POST',
            token: cluster.apiKey,
            timeoutMs: 120_000,
            json: {
              walletName,
              keyIndex: 0,
              transaction: {
                type: 'eip1559',
                chainId: 1,
                nonce,
                to: '0x000000000000000000000000000000000000dEaD',
                value: String(10n ** 15n),
                gas: '21000',
                maxFeePerGas: String(GWEI),
                maxPriorityFeePerGas: '1',
              },
            },
          }),
        ),
      );
      const elapsed = Date.now() - started;
      const signed = results.filter((r) => r.status === 200);
      const refused = results.filter((r) => r.status === 403 && errorCodeOf(r) === 'policy_limit_exceeded');
      console.log(`# ${REQUESTS} requests through 2 replicas in ${elapsed} ms: ${signed.length} signed, ${refused.length} refused`);
      assert.equal(signed.length + refused.length, REQUESTS, JSON.stringify(results.filter((r) => r.status !== 200 && r.status !== 403)));
      assert.equal(signed.length, FITS);
      // what the store counted is what was signed, and no more
      const usage = await cluster.sql('SELECT amounts FROM policy_usage WHERE wallet_name = $1', [walletName]);
      assert.equal(usage.length, FITS);
      const total = usage.reduce((n, row) => n + BigInt((JSON.parse(String(row.amounts)) as Record<string, string>)['native:1'] ?? '0'), 0n);
      assert.equal(total, COST * BigInt(FITS));
      const audit = await cluster.sql(
        "SELECT decision, reason, count(*)::int AS n FROM audit_log WHERE wallet_name = $1 AND action = 'sign.transaction' GROUP BY decision, reason ORDER BY decision",
        [walletName],
      );
      assert.deepEqual(audit, [
        { decision: 'allowed', reason: null, n: FITS },
        { decision: 'denied', reason: 'policy_limit_exceeded', n: REQUESTS - FITS },
      ]);
      // and the usage view agrees, from either replica
      const view = await callReplica(cluster.replicas[1] as (typeof cluster.replicas)[number], `/v1/wallets/policy?walletName=${walletName}`, {
        token: cluster.apiKey,
      });
      assert.equal(view.status, 200);
      assert.deepEqual((view.body as { usage: { signatures: number; amounts: Record<string, string> } }).usage.amounts, {
        'native:1': String(COST * BigInt(FITS)),
      });
    });
  });
}
