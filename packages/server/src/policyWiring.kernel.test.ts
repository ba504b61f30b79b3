import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { App, AuditRecord, WalletPolicy } from '@custos/kernel';
import { encodeFunctionData, parseAbi } from 'viem';
import { createTestSigner, QUORUM_APPROVED_STAND_IN, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Issue 13 stage 2, the wallet policy wired into the timelock: a loosening PUT /v1/wallets/policy is
// a timelocked change `policy.loosen` (the API key alone never applies it; the old policy holds until
// it applies; a swapped payload is refused), and the emergency exit — while a deactivation is
// pending, a payment to the safe address is exempt from limits and allowlist, nothing else is.

const T0 = Date.UTC(2026, 11, 7, 9, 0, 0);
const HOUR = 3_600_000;
const DELAY = 48 * HOUR;
const GWEI = 10n ** 9n;
const ETHER = 10n ** 18n;
const FEE = 21_000n * GWEI;
const BOB = '0x000000000000000000000000000000000000dead';
const EVIL = '0xe11e000000000000000000000000000000000e11';
const SAFE = '0x5afe000000000000000000000000000000005afe';
const TOKEN = '0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48';
const abi = parseAbi(['function transfer(address to, uint256 amount)', 'function approve(address spender, uint256 amount)']);

const transaction = (fields: Record<string, unknown> = {}) => ({
  type: 'eip1559',
  chainId: 1,
  nonce: 0,
  to: BOB,
  value: '0',
  gas: '21000',
  maxFeePerGas: String(GWEI),
  maxPriorityFeePerGas: '1',
  ...fields,
});

describe('policy wiring: loosening through the timelock, the emergency exit (kernel and routes)', () => {
  let signer: TestSigner;
  let app: App;
  const uris = new Map<string, string>();

  before(async () => {
    signer = await createTestSigner({ startMs: T0, kernelOptions: { timelock: { hooks: QUORUM_APPROVED_STAND_IN } } });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await signer.close();
  });

  function nextCode(walletName: string): string {
    signer.clock.now += 30_000;
    return totpFromUri(uris.get(walletName) as string, signer.clock.now);
  }
  async function enrolled(walletName: string): Promise<void> {
    const { otpauthUri } = await signer.kernel.enrollTotp(app, { walletName });
    recordTestSecret('otpauthUri', otpauthUri);
    uris.set(walletName, otpauthUri);
  }
  const put = (walletName: string, policy: WalletPolicy) =>
    signer.app.inject({ method: 'PUT', url: '/v1/wallets/policy', headers: signer.auth(), payload: { walletName, policy } });
  const override = async (walletName: string) => (await signer.kernel.getWalletPolicy(app, { walletName })).override;
  const signTx = (walletName: string, tx: Record<string, unknown>, withCode = true) =>
    signer.kernel.signTransaction(app, { walletName, keyIndex: 0, transaction: tx, ...(withCode ? { code: nextCode(walletName) } : {}) } as never);
  async function lastAudit(action: string): Promise<AuditRecord> {
    const found = (await signer.store.readAudit(1, 100_000)).filter((r) => r.action === action).at(-1);
    assert.ok(found, `an audit record ${action}`);
    return found;
  }
  const capabilityOf = (changeUrl: string) => {
    const capability = changeUrl.split('/changes/')[1] as string;
    recordTestSecret('changeCapability', capability);
    return capability;
  };

  it('a loosening PUT is a timelocked change (202): the key alone never applies it, the old policy holds until it applies, a tightening applies at once', async () => {
    await enrolled('loose');
    const strict: WalletPolicy = { native: { '1': { perTx: String(ETHER) } }, destinations: [BOB] };
    assert.equal((await put('loose', strict)).statusCode, 200);
    const looser: WalletPolicy = { native: { '1': { perTx: String(3n * ETHER) } }, destinations: [BOB, EVIL] };
    const res = await put('loose', looser);
    assert.equal(res.statusCode, 202, res.body);
    const change = res.json();
    assert.deepEqual([change.kind, change.state, change.requiredStrength], ['policy.loosen', 'requested', 'present']);
    assert.match(change.changeUrl, /\/changes\/[A-Za-z0-9_-]+$/);
    const capability = capabilityOf(change.changeUrl);
    assert.deepEqual((await lastAudit('change.request')).detail.kind, 'policy.loosen');
    // The API key cannot confirm it (audited), over the kernel or the route; it stays requested.
    await expectCode(signer.kernel.refuseChangeByApi(app, { id: change.id }, 'confirm'), 'owner_consent_required');
    const viaRoute = await signer.app.inject({ method: 'POST', url: '/v1/changes/confirm', headers: signer.auth(), payload: { id: change.id } });
    assert.equal(viaRoute.json().error?.code, 'owner_consent_required', viaRoute.body);
    assert.equal((await signer.kernel.getChange(app, { id: change.id })).state, 'requested');
    // The old policy is in force: 2 ether and EVIL are refused.
    assert.deepEqual(await override('loose'), strict);
    await expectCode(signTx('loose', transaction({ value: String(2n * ETHER - FEE) })), 'policy_limit_exceeded');
    await expectCode(signTx('loose', transaction({ to: EVIL })), 'policy_destination_not_allowed');
    // The owner consents: pending; still the old policy until the delay has passed.
    const confirmed = await signer.kernel.confirmChange(capability, { kind: 'totp', proof: nextCode('loose') });
    assert.equal(confirmed.state, 'pending');
    signer.clock.now = (confirmed.effectiveAt as number) - 1;
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    await expectCode(signTx('loose', transaction({ value: String(2n * ETHER - FEE) })), 'policy_limit_exceeded');
    // A tightening meanwhile applies at once.
    const tighter: WalletPolicy = { ...strict, native: { '1': { perTx: String(ETHER / 2n) } } };
    assert.equal((await put('loose', tighter)).statusCode, 200);
    await expectCode(signTx('loose', transaction({ value: String(ETHER - FEE) })), 'policy_limit_exceeded');
    // At the time: the kernel's own hook applies the loosened override (audited with it).
    signer.clock.now = confirmed.effectiveAt as number;
    assert.equal(await signer.kernel.applyDueChanges(), 1);
    assert.deepEqual(await override('loose'), looser);
    assert.deepEqual((await lastAudit('change.apply')).detail.kind, 'policy.loosen');
    await signTx('loose', transaction({ value: String(2n * ETHER - FEE) }));
    await signTx('loose', transaction({ to: EVIL }));
  });

  it('a loosening cancelled by the owner never applies; a swapped payload is refused; a payload that is no policy is never applied', async () => {
    await enrolled('swap');
    const strict: WalletPolicy = { destinations: [BOB] };
    assert.equal((await put('swap', strict)).statusCode, 200);
    // cancelled
    const first = await put('swap', {});
    assert.equal(first.statusCode, 202, first.body);
    const firstCap = capabilityOf(first.json().changeUrl);
    await signer.kernel.confirmChange(firstCap, { kind: 'totp', proof: nextCode('swap') });
    await signer.kernel.cancelChange(firstCap, { kind: 'totp', proof: nextCode('swap') });
    // swapped in the database before the consent: record_unreadable
    const second = await put('swap', { destinations: [BOB, EVIL] });
    const secondCap = capabilityOf(second.json().changeUrl);
    await signer.sql('UPDATE pending_changes SET payload = $1 WHERE id = $2', JSON.stringify({ policy: {} }), second.json().id);
    await expectCode(signer.kernel.confirmChange(secondCap, { kind: 'totp', proof: nextCode('swap') }), 'record_unreadable');
    // a policy.loosen requested over POST /v1/changes with a payload that is no policy: refused at the request
    await expectCode(signer.kernel.requestChange(app, { walletName: 'swap', kind: 'policy.loosen', payload: { policy: { allow: [EVIL] } } }), 'invalid_input');
    signer.clock.now += DELAY + HOUR;
    await signer.kernel.applyDueChanges();
    assert.deepEqual(await override('swap'), strict);
    await expectCode(signTx('swap', transaction({ to: EVIL })), 'policy_destination_not_allowed');
  });

  it('a wallet with no factor has no owner to consent: its loosening is refused policy_change_timelocked', async () => {
    const res0 = await put('nofactor', { destinations: [BOB] });
    assert.equal(res0.statusCode, 200, res0.body);
    const res = await put('nofactor', {});
    assert.equal(res.statusCode, 409, res.body);
    assert.equal(res.json().error.code, 'policy_change_timelocked');
  });

  it('the emergency exit: while a deactivation is pending, a payment to the safe address signs past the window and off the allowlist (its fee within them); nothing else does', async () => {
    await enrolled('exit');
    // the safe address, through its own timelocked change
    const safe = await signer.kernel.requestChange(app, { walletName: 'exit', kind: 'safeAddress.set', payload: { address: SAFE } });
    recordTestSecret('changeCapability', safe.capability);
    await signer.kernel.confirmChange(safe.capability, { kind: 'totp', proof: nextCode('exit') });
    signer.clock.now += DELAY;
    assert.equal(await signer.kernel.applyDueChanges(), 1);
    const policy: WalletPolicy = {
      native: { '1': { perWindow: String(ETHER) } },
      tokens: { [`1:${TOKEN}`]: { perWindow: '100' } },
      destinations: [BOB, TOKEN],
    };
    assert.equal((await put('exit', policy)).statusCode, 200);
    // the window is full but for the exits' fees below (21000 and 60000 gas × 1 gwei, and one more 21000): an exit's fee stays under the limits
    const TOKEN_FEE = 60_000n * GWEI;
    await signTx('exit', transaction({ value: String(ETHER - 3n * FEE - TOKEN_FEE) }));
    const toSafe = transaction({ to: SAFE, value: String(ETHER) });
    const tokenTx = (to: string, amount: bigint, fn: 'transfer' | 'approve' = 'transfer') =>
      transaction({ to: TOKEN, gas: '60000', data: encodeFunctionData({ abi, functionName: fn, args: [to as `0x${string}`, amount] }) });
    // no pending deactivation: no exemption
    await expectCode(signTx('exit', toSafe), 'policy_destination_not_allowed');
    await expectCode(signTx('exit', tokenTx(SAFE, 1000n)), 'policy_destination_not_allowed');
    // a deactivation requested but not consented: still none
    const off = await signer.kernel.requestChange(app, { walletName: 'exit', kind: '2fa.disable' });
    recordTestSecret('changeCapability', off.capability);
    await expectCode(signTx('exit', toSafe), 'policy_destination_not_allowed');
    await signer.kernel.confirmChange(off.capability, { kind: 'totp', proof: nextCode('exit') });
    // pending: the exit signs (native, past the full window; ERC-20 transfer over the token limit), with the code
    await expectCode(signTx('exit', toSafe, false), 'code_required');
    await signTx('exit', toSafe);
    const signed = await lastAudit('sign.transaction');
    assert.equal(signed.decision, 'allowed');
    assert.match(JSON.stringify(signed), /"exit":true/);
    await signTx('exit', tokenTx(SAFE, 1000n));
    // the same to any other address: refused
    await expectCode(signTx('exit', transaction({ value: String(ETHER) })), 'policy_limit_exceeded');
    await expectCode(signTx('exit', transaction({ to: EVIL, value: String(ETHER) })), 'policy_destination_not_allowed');
    await expectCode(signTx('exit', tokenTx(BOB, 1000n)), 'policy_limit_exceeded');
    await expectCode(signTx('exit', tokenTx(EVIL, 1n)), 'policy_destination_not_allowed');
    // extra effects: an approve to the safe address, a payment with other calldata: no exemption
    await expectCode(signTx('exit', tokenTx(SAFE, 1000n, 'approve')), 'policy_destination_not_allowed');
    await expectCode(signTx('exit', transaction({ to: SAFE, value: String(ETHER), gas: '60000', data: '0xdeadbeef' })), 'policy_operation_not_allowed');
    // approvals decide with the same exit
    const approval = await signer.kernel.createApproval(app, { walletName: 'exit', keyIndex: 0, operation: { transaction: toSafe } } as never);
    recordTestSecret('approvalCapability', (approval as { capability?: string }).capability ?? '');
    await expectCode(
      signer.kernel.createApproval(app, { walletName: 'exit', keyIndex: 0, operation: { transaction: transaction({ value: String(ETHER) }) } } as never),
      'policy_limit_exceeded',
    );
    // room left for one 21000-gas fee at 1 gwei: an exit paying 2 gwei a gas is refused for its fee (perWindow, exit: true)
    const refused = await expectCode(signTx('exit', transaction({ to: SAFE, value: String(ETHER), maxFeePerGas: String(2n * GWEI) })), 'policy_limit_exceeded');
    assert.deepEqual([refused.rule, refused.exit, refused.amount], ['perWindow', true, String(2n * FEE)]);
    // cancelled deactivation: the exemption ends
    await signer.kernel.cancelChange(off.capability, { kind: 'totp', proof: nextCode('exit') });
    await expectCode(signTx('exit', toSafe), 'policy_destination_not_allowed');
  });
});

describe('the emergency exit of a TOTP-only wallet waits for the admin quorum (review finding)', () => {
  it('a deactivation the owner confirmed (a phishable TOTP code) but the quorum has not approved opens no exit; once approved, it does', async () => {
    // The quorum approves the safe address (as it would have when it was registered) and, once
    // `approveDeactivation` says so, the deactivation: a stand-in for the admin quorum (its suite tests it).
    let approveDeactivation = false;
    const quorumApproved = async (_tx: unknown, change: { kind: string }) => change.kind !== '2fa.disable' || approveDeactivation;
    const signer = await createTestSigner({ startMs: T0, kernelOptions: { timelock: { hooks: { quorumApproved } } } });
    try {
      const app = await signer.kernel.authenticateApiKey(signer.apiKey);
      const { otpauthUri } = await signer.kernel.enrollTotp(app, { walletName: 'phished' });
      recordTestSecret('otpauthUri', otpauthUri);
      const code = () => {
        signer.clock.now += 30_000;
        return totpFromUri(otpauthUri, signer.clock.now);
      };
      const safe = await signer.kernel.requestChange(app, { walletName: 'phished', kind: 'safeAddress.set', payload: { address: SAFE } });
      recordTestSecret('changeCapability', safe.capability);
      await signer.kernel.confirmChange(safe.capability, { kind: 'totp', proof: code() });
      signer.clock.now += DELAY;
      assert.equal(await signer.kernel.applyDueChanges(), 1);
      const put = await signer.app.inject({
        method: 'PUT',
        url: '/v1/wallets/policy',
        headers: signer.auth(),
        payload: { walletName: 'phished', policy: { native: { '1': { perWindow: String(ETHER) } }, destinations: [BOB] } },
      });
      assert.equal(put.statusCode, 200);
      const toSafe = transaction({ to: SAFE, value: String(ETHER) });
      const sign = () => signer.kernel.signTransaction(app, { walletName: 'phished', keyIndex: 0, transaction: toSafe, code: code() } as never);
      // The backend phished one code and confirmed a deactivation: pending, but not approved by the quorum.
      const off = await signer.kernel.requestChange(app, { walletName: 'phished', kind: '2fa.disable' });
      recordTestSecret('changeCapability', off.capability);
      assert.equal((await signer.kernel.confirmChange(off.capability, { kind: 'totp', proof: code() })).state, 'pending');
      await expectCode(sign(), 'policy_destination_not_allowed');
      // Once the quorum approved it, the exit opens (with the owner's code, as always).
      approveDeactivation = true;
      const signed = await sign();
      assert.match(signed.serializedTransaction, /^0x02/);
    } finally {
      await signer.close();
    }
  });
});
