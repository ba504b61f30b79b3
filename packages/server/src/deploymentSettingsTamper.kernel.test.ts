import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type App, Kernel, type Store } from '@custos/kernel';
import { openStore } from './openStore.js';
import { createTestSigner, TEST_PASSPHRASE, type TestSigner } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { adminSet, bootstrapTestQuorum, newTestAdmin, quorumDriver } from './testing/testAdmins.js';

// A deployment settings row that fails its MAC (issue 13 audit, HIGH): a kernel that unseals on it
// must not fall back to the configuration's (looser) defaults — it refuses every policy decision
// record_unreadable until the row opens again.
const T0 = Date.UTC(2026, 11, 9, 6, 0, 0);
const GWEI = 10n ** 9n;
const ETHER = 10n ** 18n;
const FEE = 21_000n * GWEI;
const BOB = '0x000000000000000000000000000000000000dead';
const A = newTestAdmin('alice');
const B = newTestAdmin('bob');
const C = newTestAdmin('carol');
const TIGHT = { timelockDelaySeconds: 7200, webhookUrl: null, policyDefaults: { windowSeconds: 3600, native: { '1': { perTx: String(ETHER) } } } };
const tx = (value: bigint, nonce: number) => ({
  type: 'eip1559',
  chainId: 1,
  nonce,
  to: BOB,
  value: String(value - FEE),
  gas: '21000',
  maxFeePerGas: String(GWEI),
  maxPriorityFeePerGas: '1',
});

describe('the quorum’s deployment settings row tampered in the database', () => {
  let signer: TestSigner;
  let app: App;
  before(async () => {
    signer = await createTestSigner({ startMs: T0, scopes: ['admin', 'register', 'derive', 'sign'] });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await signer.close();
  });

  it('the quorum’s defaults limit a wallet; the row edited and the kernel restarted: signing is refused record_unreadable, never under the configuration’s defaults', async () => {
    await signer.kernel.getPublicKey(app, { walletName: 'nemo', keyIndex: 0 });
    await bootstrapTestQuorum(signer.store, adminSet(2, [A, B, C]));
    const q = quorumDriver({ kernel: () => signer.kernel, app: () => app, now: () => signer.clock.now });
    await q.pass(A, [B, C], 'deployment.settings', TIGHT);
    await expectCode(signer.kernel.signTransaction(app, { walletName: 'nemo', keyIndex: 0, transaction: tx(2n * ETHER, 0) } as never), 'policy_limit_exceeded');
    // a database writer corrupts the deployment settings row (its MAC no longer holds)
    await signer.sql("UPDATE kernel_settings SET updated_at = updated_at + 1 WHERE name = 'deployment'");
    // restart
    const otherStore = await openStore(signer.location);
    const other = await Kernel.open({ store: otherStore, now: () => signer.clock.now });
    try {
      await other.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
      const otherApp = await other.authenticateApiKey(signer.apiKey);
      await expectCode(other.signTransaction(otherApp, { walletName: 'nemo', keyIndex: 0, transaction: tx(2n * ETHER, 1) } as never), 'record_unreadable');
      // Within the limit too: nothing is decided on defaults that cannot be read.
      await expectCode(other.signTransaction(otherApp, { walletName: 'nemo', keyIndex: 0, transaction: tx(ETHER / 2n, 1) } as never), 'record_unreadable');
      await expectCode(other.readDeploymentSettings(), 'record_unreadable');
    } finally {
      other.seal();
      await otherStore.close();
    }
  });
});

describe('the quorum’s deployment settings not readable at unseal (a store failure, not a bad row)', () => {
  let signer: TestSigner;
  let app: App;
  const admins = [newTestAdmin('alice'), newTestAdmin('bob'), newTestAdmin('carol')];
  before(async () => {
    signer = await createTestSigner({ scopes: ['admin', 'register', 'derive', 'sign'], startMs: T0 });
    await bootstrapTestQuorum(
      signer.store,
      adminSet(2, admins),
      { timelockDelaySeconds: 48 * 3600, webhookUrl: null, policyDefaults: { maxSignaturesPerWindow: 3 } },
      () => signer.clock.now,
    );
    await signer.restart();
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    await signer.kernel.getPublicKey(app, { walletName: 'nemo', keyIndex: 0 });
  });
  after(async () => {
    await signer.close();
  });

  it('one failed read at unseal: every policy decision is refused store_unavailable (never the configuration’s built-in defaults) until a read succeeds (review finding)', async () => {
    const cap = async (k: Kernel, a: App) =>
      ((await k.getWalletPolicy(a, { walletName: 'nemo' })) as unknown as { policy: { maxSignaturesPerWindow?: number } }).policy.maxSignaturesPerWindow;
    assert.equal(await cap(signer.kernel, app), 3);
    // The store's first read of the deployment settings fails (a dropped connection, a lock timeout a database writer caused).
    let failOnce = true;
    const flaky = new Proxy(signer.store, {
      get(target, prop) {
        if (prop === 'readSetting')
          return async (name: string) => {
            if (name === 'deployment' && failOnce) {
              failOnce = false;
              throw new Error('connection terminated unexpectedly');
            }
            return target.readSetting(name);
          };
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Store;
    const other = await Kernel.open({ store: flaky, now: () => signer.clock.now });
    try {
      await other.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
      const otherApp = await other.authenticateApiKey(signer.apiKey);
      await expectCode(other.getWalletPolicy(otherApp, { walletName: 'nemo' }), 'store_unavailable');
      await expectCode(other.signHash(otherApp, { walletName: 'nemo', keyIndex: 0, hash: `0x${'ab'.repeat(32)}` }), 'store_unavailable');
      // The next read (the apply loop's, every 30 s) brings the quorum's defaults back.
      await other.refreshPolicyDefaults();
      assert.equal(await cap(other, otherApp), 3);
    } finally {
      other.seal();
    }
  });
});
