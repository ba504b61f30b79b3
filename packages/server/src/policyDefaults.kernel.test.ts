import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { App, WalletPolicy } from '@custos/kernel';
import { createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { startTestDelivery, type TestDelivery } from './testing/startTestDelivery.js';
import { adminSet, bootstrapTestQuorum, newTestAdmin, quorumDriver } from './testing/testAdmins.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Issue 13 stage 2, points 1, 2 and 4 wired: the quorum's deployment settings give the policy
// defaults; a `deployment.settings` proposal whose defaults loosen a wallet's effective policy runs
// through that wallet's timelock — pinned at once, the pin removed after the delay unless the owner
// cancels (a cancel keeps it); a wallet without a factor follows the new defaults at once.

const T0 = Date.UTC(2026, 11, 9, 6, 0, 0);
const ORIGIN = 'http://localhost:8436';
const HOUR = 3_600_000;
const DELAY = 48 * HOUR;
const GWEI = 10n ** 9n;
const ETHER = 10n ** 18n;
const FEE = 21_000n * GWEI;
const BOB = '0x000000000000000000000000000000000000dead';

const A = newTestAdmin('alice');
const B = newTestAdmin('bob');
const C = newTestAdmin('carol');

const CONFIG: WalletPolicy = { windowSeconds: 3600, native: { '1': { perTx: String(ETHER) } } };
const LOOSER = { timelockDelaySeconds: 7200, webhookUrl: null, policyDefaults: { windowSeconds: 3600, native: { '1': { perTx: String(5n * ETHER) } } } };

const transaction = (value: bigint) => ({
  type: 'eip1559',
  chainId: 1,
  nonce: 0,
  to: BOB,
  value: String(value - FEE),
  gas: '21000',
  maxFeePerGas: String(GWEI),
  maxPriorityFeePerGas: '1',
});

describe('deployment policy defaults under the quorum: a loosening runs through each wallet’s timelock', () => {
  let signer: TestSigner;
  let app: App;
  let delivery: TestDelivery;
  let uri = '';

  before(async () => {
    signer = await createTestSigner({
      startMs: T0,
      scopes: ['admin', 'register', 'derive', 'sign'],
      policyDefaults: CONFIG,
      appOptions: { publicUrl: ORIGIN },
      kernelOptions: { oob: { channels: ['email'] } },
    });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    delivery = await startTestDelivery(signer, { publicUrl: ORIGIN });
  });
  after(async () => {
    await delivery.close();
    await signer.close();
  });

  /** Proposed by A (testing/testAdmins.ts), approved by whom each step says. */
  const q = quorumDriver({ kernel: () => signer.kernel, app: () => app, now: () => signer.clock.now });
  const propose = (kind: string, payload: unknown) => q.propose(A, kind, payload);
  const approve = q.approve;
  const code = () => {
    signer.clock.now += 30_000;
    return totpFromUri(uri, signer.clock.now);
  };
  const sign = (walletName: string, value: bigint, withCode: boolean) =>
    signer.kernel.signTransaction(app, { walletName, keyIndex: 0, transaction: transaction(value), ...(withCode ? { code: code() } : {}) } as never);
  const policyOf = (walletName: string) => signer.kernel.getWalletPolicy(app, { walletName });
  const changesOf = async (walletName: string) =>
    (await signer.sql('SELECT kind, state FROM pending_changes WHERE wallet_name = $1 ORDER BY created_at', walletName)).map((r) => [r.kind, r.state]);

  it('2 of 3 admins loosen the defaults: wallets with a factor are pinned and get a pending policy.loosen; a wallet without one follows at once; a cancel keeps the pin', async () => {
    // tina: TOTP; olaf: e-mail (told, cancels through the delivered link); nemo: no factor
    const enrolled = await signer.kernel.enrollTotp(app, { walletName: 'tina' });
    uri = enrolled.otpauthUri;
    recordTestSecret('otpauthUri', uri);
    const created = await signer.kernel.createEnrollment(app, { walletName: 'olaf', kind: 'oob' });
    recordTestSecret('enrollmentCapability', created.capability);
    await signer.kernel.setEnrollmentAddress(created.capability, { channel: 'email', address: 'olaf@example.com' });
    await signer.kernel.completeEnrollment(created.capability, { proof: (await delivery.deliver()).code });
    await signer.kernel.getPublicKey(app, { walletName: 'nemo', keyIndex: 0 });
    const olafOverride: WalletPolicy = { destinations: [BOB] };
    assert.equal('timelocked' in (await signer.kernel.setWalletPolicy(app, { walletName: 'olaf', policy: olafOverride })), false);
    // the quorum starts from the deployment's defaults of the moment (the bootstrap writes the settings row)
    await bootstrapTestQuorum(signer.store, adminSet(2, [A, B, C]), { timelockDelaySeconds: 48 * 3600, webhookUrl: null, policyDefaults: CONFIG });
    await signer.kernel.refreshPolicyDefaults();
    const before = {
      tina: (await policyOf('tina')).policy,
      olaf: (await policyOf('olaf')).policy,
    };
    // a default that is no policy is refused at the proposal
    await expectCode(propose('deployment.settings', { ...LOOSER, policyDefaults: { allow: [BOB] } }), 'invalid_input');
    const proposal = await propose('deployment.settings', LOOSER);
    await approve(B, proposal.id, 'deployment.settings', LOOSER);
    // M−1 approvals: nothing changes
    await expectCode(sign('nemo', 2n * ETHER, false), 'policy_limit_exceeded');
    const mark = delivery.mail.received.length;
    const applied = await approve(C, proposal.id, 'deployment.settings', LOOSER);
    assert.equal(applied.state, 'applied');
    assert.deepEqual((applied as unknown as { result: { pinnedWallets: string[] } }).result.pinnedWallets.sort(), ['olaf', 'tina']);
    // the wallet without a factor: the new defaults at once
    assert.equal((await policyOf('nemo')).policy.native?.['1']?.perTx, String(5n * ETHER));
    await sign('nemo', 2n * ETHER, false);
    // the wallets with a factor: their old effective policy pinned, a pending policy.loosen each
    assert.deepEqual((await policyOf('tina')).policy, before.tina);
    assert.deepEqual((await policyOf('tina')).override, before.tina);
    assert.deepEqual((await policyOf('olaf')).policy, before.olaf);
    await expectCode(sign('tina', 2n * ETHER, true), 'policy_limit_exceeded');
    assert.deepEqual(await changesOf('tina'), [['policy.loosen', 'pending']]);
    assert.deepEqual(await changesOf('olaf'), [['policy.loosen', 'pending']]);
    assert.deepEqual(await changesOf('nemo'), []);
    // olaf is told at once, with the cancel link; he cancels: the pin stays
    await delivery.loop.runOnce();
    await delivery.mail.nextMail(mark);
    const notice = delivery.mail.received.slice(mark).find((m) => m.to === 'olaf@example.com');
    assert.ok(notice, 'olaf is told');
    assert.match(notice.subject, /was requested/);
    const link = new RegExp(`${ORIGIN}/changes/([A-Za-z0-9_-]{43})`).exec(notice.text)?.[1] as string;
    recordTestSecret('changeNoticeCapability', link);
    assert.equal((await signer.kernel.cancelChange(link, {})).state, 'cancelled');
    // after the delay: tina's pin removed (her previous override: none), olaf's kept
    signer.clock.now += DELAY + HOUR;
    await signer.kernel.applyDueChanges();
    assert.deepEqual(await changesOf('tina'), [['policy.loosen', 'applied']]);
    assert.deepEqual((await policyOf('tina')).override, {});
    assert.equal((await policyOf('tina')).policy.native?.['1']?.perTx, String(5n * ETHER));
    await sign('tina', 2n * ETHER, true);
    assert.deepEqual((await policyOf('olaf')).override, before.olaf);
  });

  it('a tightening of the defaults pins nobody and applies to every wallet at once', async () => {
    const TIGHTER = { ...LOOSER, policyDefaults: { windowSeconds: 3600, native: { '1': { perTx: String(ETHER / 2n) } } } };
    const proposal = await propose('deployment.settings', TIGHTER);
    await approve(B, proposal.id, 'deployment.settings', TIGHTER);
    const applied = await approve(C, proposal.id, 'deployment.settings', TIGHTER);
    assert.equal((applied as unknown as { result: Record<string, unknown> }).result.pinnedWallets, undefined);
    await expectCode(sign('nemo', ETHER, false), 'policy_limit_exceeded');
    await expectCode(sign('tina', ETHER, true), 'policy_limit_exceeded');
    assert.deepEqual(await changesOf('tina'), [['policy.loosen', 'applied']]);
  });

  it('review G1: defaults ADDING a chain entry (refused before under unknownToken: deny) loosen: the wallet with a factor is pinned, the one without follows', async () => {
    const ADDED = { ...LOOSER, policyDefaults: { windowSeconds: 3600, native: { '1': { perTx: String(ETHER / 2n) }, '137': {} } } };
    const on137 = (walletName: string, withCode: boolean) =>
      signer.kernel.signTransaction(app, {
        walletName,
        keyIndex: 0,
        transaction: { ...transaction(ETHER / 10n), chainId: 137 },
        ...(withCode ? { code: code() } : {}),
      } as never);
    await expectCode(on137('tina', true), 'policy_limit_exceeded');
    const proposal = await propose('deployment.settings', ADDED);
    await approve(B, proposal.id, 'deployment.settings', ADDED);
    const applied = await approve(C, proposal.id, 'deployment.settings', ADDED);
    // olaf's pin sets `native` itself (the defaults' chains do not reach him): only tina's effective policy loosens
    assert.deepEqual((applied as unknown as { result: { pinnedWallets: string[] } }).result.pinnedWallets, ['tina']);
    assert.deepEqual(await changesOf('tina'), [
      ['policy.loosen', 'applied'],
      ['policy.loosen', 'pending'],
    ]);
    // tina stays refused on chain 137 until her change applies; nemo (no factor) follows at once
    await expectCode(on137('tina', true), 'policy_limit_exceeded');
    assert.deepEqual((await policyOf('tina')).override?.native, { '1': { perTx: String(ETHER / 2n) } });
    await on137('nemo', false);
    // what tina's change shows her: chain 137 refused → no limit, looser
    const [row] = await signer.sql("SELECT id FROM pending_changes WHERE wallet_name = 'tina' AND state = 'pending'");
    const view = await signer.app.inject({ method: 'GET', url: `/v1/changes?id=${String(row?.id)}`, headers: signer.auth() });
    const diff = view.json().policyDiff as Array<{ field: string; from: string; to: string; looser: boolean }>;
    assert.deepEqual(
      diff.map((l) => [l.field, l.from, l.to, l.looser]),
      [['native.137', 'refused (no limit of its own, unknownToken: deny)', 'no limit', true]],
      view.body,
    );
  });
});

describe('under the quorum the deployment defaults change only through deployment.settings (issue 13 review, gap 1)', () => {
  let signer: TestSigner;
  let app: App;
  const LOOSE_CONFIG: WalletPolicy = { native: { '1': { perTx: String(100n * ETHER) } }, rawHash: 'allow' };
  const QUORUM_DEFAULTS = { windowSeconds: 3600, native: { '1': { perTx: String(ETHER) } } };
  const SETTINGS = { timelockDelaySeconds: 48 * 3600, webhookUrl: null, policyDefaults: QUORUM_DEFAULTS };

  before(async () => {
    // the operator's own flags are loose: --policy-file allows 100 ETH and raw hashes, --compat-raw-hash allow
    signer = await createTestSigner({
      startMs: T0,
      scopes: ['admin', 'register', 'derive', 'sign'],
      policyDefaults: LOOSE_CONFIG,
      kernelOptions: { compatRawHash: 'allow' },
    });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await signer.close();
  });

  /** Proposed by A, approved by B: M = 1 (testing/testAdmins.ts). */
  const q = quorumDriver({ kernel: () => signer.kernel, app: () => app, now: () => signer.clock.now });
  const pass = (kind: string, payload: unknown) => q.pass(A, [B], kind, payload);
  const sign = (walletName: string, value: bigint, code?: string) =>
    signer.kernel.signTransaction(app, { walletName, keyIndex: 0, transaction: transaction(value), ...(code === undefined ? {} : { code }) } as never);
  const HASH = `0x${'ab'.repeat(32)}`;

  it('the configuration (--policy-file, --compat-raw-hash allow) is looser than the quorum’s settings: it never applies', async () => {
    const enrolled = await signer.kernel.enrollTotp(app, { walletName: 'tina' });
    recordTestSecret('otpauthUri', enrolled.otpauthUri);
    const code = () => {
      signer.clock.now += 30_000;
      return totpFromUri(enrolled.otpauthUri, signer.clock.now);
    };
    // before the quorum: the operator's flags are the deployment's
    await sign('nemo', 2n * ETHER);
    await signer.kernel.signCompatHash(app, { walletName: 'tina', keyIndex: 0, hash: HASH, code: code() } as never);
    await bootstrapTestQuorum(signer.store, adminSet(1, [A, B]), SETTINGS);
    await signer.kernel.refreshPolicyDefaults();
    // the quorum's settings, not the flags: 1 ETH per transaction, and raw hashes on the compatibility API under the policy
    await expectCode(sign('nemo', 2n * ETHER), 'policy_limit_exceeded');
    await expectCode(signer.kernel.signCompatHash(app, { walletName: 'tina', keyIndex: 0, hash: HASH, code: code() } as never), 'policy_operation_not_allowed');
    // only a deployment.settings proposal loosens them
    await pass('deployment.settings', { ...SETTINGS, compatRawHash: 'allow' });
    await signer.kernel.signCompatHash(app, { walletName: 'tina', keyIndex: 0, hash: HASH, code: code() } as never);
    await expectCode(sign('nemo', 2n * ETHER), 'policy_limit_exceeded');
  });

  it('a deleted deployment settings row is record_unreadable: signing refuses, never the --policy-file fallback', async () => {
    await signer.sql('DELETE FROM kernel_settings WHERE name = $1', 'deployment');
    // the next pass of the apply loop (or an approval) reads the row again
    await expectCode(signer.kernel.applyDueChanges(), 'record_unreadable');
    // 2 ETH would pass the configuration's 100 ETH; half an ether the old row's 1 ETH: both refused
    await expectCode(sign('nemo', 2n * ETHER), 'record_unreadable');
    await expectCode(sign('nemo', ETHER / 2n), 'record_unreadable');
    const [last] = await signer.sql("SELECT decision, reason FROM audit_log WHERE wallet_name = 'nemo' ORDER BY seq DESC LIMIT 1");
    assert.deepEqual({ ...last }, { decision: 'denied', reason: 'record_unreadable' });
    // the settings reads refuse it too (the timelock delay, the webhook URL, the settings themselves)
    await expectCode(signer.kernel.readDeploymentSettings(), 'record_unreadable');
    await expectCode(signer.kernel.timelockDelayInForceMs(), 'record_unreadable');
    // and a proposal cannot apply over it (its wallets' pins need the defaults in force)
    await expectCode(pass('deployment.settings', SETTINGS), 'record_unreadable');
  });
});
