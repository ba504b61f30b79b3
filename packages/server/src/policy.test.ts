import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createApiKey, type WalletPolicy } from '@custos/kernel';
import { encodeFunctionData, parseAbi } from 'viem';
import { createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { totpFromUri } from './testing/totpFromUri.js';

/**
 * Wallet policy through the real app and store (issue 13, point 1): the routes (GET and PUT
 * /v1/wallets/policy), limits counted in the sign unit and shown as usage, refusals before the code
 * is checked (so neither charged nor consumed), raw hashes through every route that takes one, and
 * the audit records naming the rule.
 */

const T0 = Date.UTC(2026, 11, 7, 12, 0, 0);
const GWEI = 10n ** 9n;
const ETHER = 10n ** 18n;
const TOKEN = '0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48';
const BOB = '0x000000000000000000000000000000000000dead';
const EVIL = '0xe11e000000000000000000000000000000000e11';
const HASH = `0x${'ab'.repeat(32)}`;
const abi = parseAbi([
  'function transfer(address to, uint256 amount)',
  'function setApprovalForAll(address operator, bool approved)',
  'function approve(address spender, uint256 amount)',
  'function transferFrom(address from, address to, uint256 amount)',
]);
/** 21000 gas × 1 gwei: the fee every test transaction may cost at most. */
const FEE = 21_000n * GWEI;

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

describe('wallet policy (real app, real store)', () => {
  let signer: TestSigner;
  const uris = new Map<string, string>();
  let step = 0;

  before(async () => {
    signer = await createTestSigner({ startMs: T0, kernelOptions: { policyDefaults: { windowSeconds: 3600 } } });
  });
  after(async () => {
    await signer.close();
  });

  const call = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) =>
    signer.app.inject({ method, url, headers: signer.auth(), ...(payload === undefined ? {} : { payload: payload as object }) });
  const enroll = async (walletName: string) => {
    const res = await call('POST', '/v1/totp/enroll', { walletName });
    assert.equal(res.statusCode, 200, res.body);
    const uri = res.json().otpauthUri as string;
    recordTestSecret('otpauthUri', uri);
    uris.set(walletName, uri);
  };
  /** A fresh code: the clock moves one step on each call, so that no code is a reuse. */
  const code = (walletName: string) => {
    step += 1;
    signer.clock.now = T0 + step * 30_000;
    return totpFromUri(uris.get(walletName) as string, signer.clock.now);
  };
  const setPolicy = (walletName: string, policy: WalletPolicy) => call('PUT', '/v1/wallets/policy', { walletName, policy });
  const view = async (walletName: string) => {
    const res = await call('GET', `/v1/wallets/policy?walletName=${encodeURIComponent(walletName)}`);
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  const refusedWith = (
    res: { statusCode: number; body: string; json(): { error: { code: string; details: Record<string, unknown> } } },
    status: number,
    code: string,
    rule?: string,
  ) => {
    assert.equal(res.statusCode, status, res.body);
    assert.equal(res.json().error.code, code, res.body);
    if (rule !== undefined) assert.equal(res.json().error.details.rule, rule, res.body);
  };
  const lastAudit = async (walletName: string) => {
    const [row] = await signer.sql('SELECT action, decision, reason, detail FROM audit_log WHERE wallet_name = $1 ORDER BY seq DESC LIMIT 1', walletName);
    assert.ok(row !== undefined);
    return { action: row.action, decision: row.decision, reason: row.reason, detail: JSON.parse(String(row.detail)) as Record<string, unknown> };
  };

  it('PUT tightens at once (audited), turns a loosening into a timelocked change (202, audited; never applied by the key), GET shows the effective policy', async () => {
    await enroll('routes');
    assert.deepEqual((await view('routes')).override, null);
    assert.equal((await view('routes')).policy.windowSeconds, 3600, 'the deployment default');
    const limits: WalletPolicy = { native: { '1': { perTx: String(ETHER) } }, destinations: [BOB] };
    const set = await setPolicy('routes', limits);
    assert.equal(set.statusCode, 200, set.body);
    assert.deepEqual(set.json().override, limits);
    assert.equal(set.json().policy.unknownToken, 'deny');
    const setAudit = await lastAudit('routes');
    assert.deepEqual([setAudit.action, setAudit.decision, setAudit.reason, setAudit.detail.change], ['policy.set', 'allowed', null, 'tighter']);
    // each way of loosening becomes a timelocked change waiting for the owner, and the policy in force is unchanged
    const looser: WalletPolicy[] = [
      { native: { '1': { perTx: String(2n * ETHER) } }, destinations: [BOB] },
      { native: { '1': { perTx: String(ETHER) } }, destinations: [BOB, EVIL] },
      { native: { '1': { perTx: String(ETHER) } } },
      { destinations: [BOB] },
      { ...limits, windowSeconds: 60 },
    ];
    for (const policy of looser) {
      const res = await setPolicy('routes', policy);
      assert.equal(res.statusCode, 202, res.body);
      assert.deepEqual([res.json().kind, res.json().state], ['policy.loosen', 'requested']);
      const audit = await lastAudit('routes');
      assert.deepEqual([audit.action, audit.decision, audit.detail.kind], ['change.request', 'allowed', 'policy.loosen']);
    }
    assert.deepEqual((await view('routes')).override, limits);
    // the same policy again, and a stricter one, apply
    assert.equal((await setPolicy('routes', limits)).statusCode, 200);
    assert.equal((await setPolicy('routes', { ...limits, destinations: [], maxSignaturesPerWindow: 3 })).statusCode, 200);
    // scopes: PUT needs register (a sign-only key is refused, audited), GET needs sign
    const { token: signOnly } = await createApiKey(signer.store, { name: 'sign-only', scopes: ['sign'] });
    recordTestSecret('apiKey', signOnly);
    const { token: registerOnly } = await createApiKey(signer.store, { name: 'register-only', scopes: ['register'] });
    recordTestSecret('apiKey', registerOnly);
    const put = (token: string, policy: WalletPolicy) =>
      signer.app.inject({ method: 'PUT', url: '/v1/wallets/policy', headers: signer.auth(token), payload: { walletName: 'routes', policy } });
    refusedWith(await put(signOnly, limits), 403, 'forbidden_scope');
    assert.equal((await lastAudit('routes')).reason, 'forbidden_scope');
    const tightened = await put(registerOnly, { ...limits, destinations: [], maxSignaturesPerWindow: 2 });
    assert.equal(tightened.statusCode, 200, tightened.body);
    refusedWith(
      await signer.app.inject({ method: 'GET', url: '/v1/wallets/policy?walletName=routes', headers: signer.auth(registerOnly) }),
      403,
      'forbidden_scope',
    );
    // invalid policies are refused naming the field; another tenant's wallet is not found
    refusedWith(await setPolicy('routes', { native: { '1': { perTx: '1.5' } } }), 400, 'invalid_input');
    refusedWith(await call('GET', '/v1/wallets/policy?walletName=nobody'), 404, 'wallet_not_found');
    const { token: otherTenant } = await createApiKey(signer.store, { name: 'other', scopes: ['sign', 'register'], tenant: 'other' });
    recordTestSecret('apiKey', otherTenant);
    refusedWith(
      await signer.app.inject({ method: 'GET', url: '/v1/wallets/policy?walletName=routes', headers: signer.auth(otherTenant) }),
      404,
      'wallet_not_found',
    );
    refusedWith(await put(otherTenant, {}), 404, 'wallet_not_found');
  });

  it('limits are counted in the sign unit (gas included), shown as usage, and refused before the code is checked', async () => {
    await enroll('limited');
    const perWindow = 3n * (ETHER / 10n + FEE);
    assert.equal((await setPolicy('limited', { native: { '1': { perTx: String(ETHER), perWindow: String(perWindow) } } })).statusCode, 200);
    for (let nonce = 0; nonce < 3; nonce++) {
      const ok = await call('POST', '/v1/sign/transaction', {
        walletName: 'limited',
        keyIndex: 0,
        transaction: transaction({ nonce, value: String(ETHER / 10n) }),
        code: code('limited'),
      });
      assert.equal(ok.statusCode, 200, ok.body);
      assert.deepEqual((await lastAudit('limited')).detail.policy, { counted: { 'native:1': String(ETHER / 10n + FEE) } });
    }
    const usage = (await view('limited')).usage;
    assert.deepEqual([usage.signatures, usage.amounts], [3, { 'native:1': String(perWindow) }]);
    // one wei more is over the window: refused before the code is looked at — a wrong code gives the policy's answer, not code_invalid
    const over = await call('POST', '/v1/sign/transaction', {
      walletName: 'limited',
      keyIndex: 0,
      transaction: transaction({ nonce: 3, value: '1' }),
      code: '000000',
    });
    refusedWith(over, 403, 'policy_limit_exceeded', 'perWindow');
    const audit = await lastAudit('limited');
    assert.deepEqual([audit.decision, audit.reason], ['denied', 'policy_limit_exceeded']);
    assert.equal((audit.detail.policy as Record<string, unknown>).rule, 'perWindow');
    // a right code sent with the refused operation is not consumed: it signs what the policy allows
    const fresh = code('limited');
    refusedWith(
      await call('POST', '/v1/sign/transaction', { walletName: 'limited', keyIndex: 0, transaction: transaction({ nonce: 3, value: '1' }), code: fresh }),
      403,
      'policy_limit_exceeded',
    );
    const [row] = await signer.sql("SELECT count(*) AS n FROM audit_log WHERE wallet_name = $1 AND reason = 'code_invalid'", 'limited');
    assert.equal(Number(row?.n), 0, 'no code was checked');
    // the window rolls: an hour later the usage is gone and the same signature is allowed
    signer.clock.now += 3_600_000;
    step += 120;
    const later = await call('POST', '/v1/sign/transaction', {
      walletName: 'limited',
      keyIndex: 0,
      transaction: transaction({ nonce: 3, value: '1' }),
      code: code('limited'),
    });
    assert.equal(later.statusCode, 200, later.body);
    assert.equal((await view('limited')).usage.signatures, 1);
  });

  it('per-transaction limit and gas: value under the limit but value + gas × maxFee over it is refused', async () => {
    await enroll('gas');
    assert.equal((await setPolicy('gas', { native: { '1': { perTx: String(ETHER) } } })).statusCode, 200);
    const res = await call('POST', '/v1/sign/transaction', {
      walletName: 'gas',
      keyIndex: 0,
      transaction: transaction({ value: String(ETHER - FEE + 1n) }),
      code: code('gas'),
    });
    refusedWith(res, 403, 'policy_limit_exceeded', 'perTx');
    assert.equal(res.json().error.details.amount, String(ETHER + 1n));
    const exact = await call('POST', '/v1/sign/transaction', {
      walletName: 'gas',
      keyIndex: 0,
      transaction: transaction({ value: String(ETHER - FEE) }),
      code: code('gas'),
    });
    assert.equal(exact.statusCode, 200, exact.body);
  });

  it('setApprovalForAll, an unknown token, a 7702 delegation and a destination off the allowlist are refused with their rule', async () => {
    await enroll('flows');
    const policy: WalletPolicy = { native: { '1': { perTx: String(ETHER) } }, tokens: { [`1:${TOKEN}`]: { perTx: '100' } }, destinations: [BOB] };
    assert.equal((await setPolicy('flows', policy)).statusCode, 200);
    const sign = (tx: Record<string, unknown>) =>
      call('POST', '/v1/sign/transaction', { walletName: 'flows', keyIndex: 0, transaction: transaction({ gas: '60000', ...tx }), code: code('flows') });
    refusedWith(
      await sign({ to: TOKEN, data: encodeFunctionData({ abi, functionName: 'setApprovalForAll', args: [BOB, true] }) }),
      403,
      'policy_operation_not_allowed',
      'contracts',
    );
    refusedWith(
      await sign({ to: EVIL, data: encodeFunctionData({ abi, functionName: 'transfer', args: [BOB, 1n] }) }),
      403,
      'policy_limit_exceeded',
      'unknownToken',
    );
    refusedWith(
      await sign({ to: TOKEN, data: encodeFunctionData({ abi, functionName: 'transfer', args: [BOB, 101n] }) }),
      403,
      'policy_limit_exceeded',
      'perTx',
    );
    refusedWith(
      await sign({ to: TOKEN, data: encodeFunctionData({ abi, functionName: 'transfer', args: [EVIL, 1n] }) }),
      403,
      'policy_destination_not_allowed',
      'destinations',
    );
    const ok = await sign({ to: TOKEN, data: encodeFunctionData({ abi, functionName: 'transfer', args: [BOB, 100n] }) });
    assert.equal(ok.statusCode, 200, ok.body);
    refusedWith(
      await call('POST', '/v1/sign/authorization', {
        walletName: 'flows',
        keyIndex: 0,
        authorization: { chainId: 1, address: EVIL, nonce: 0 },
        code: code('flows'),
      }),
      403,
      'policy_operation_not_allowed',
      'contracts',
    );
    // allowlisting is a loosening: a timelocked change, never applied by the API key
    assert.equal((await setPolicy('flows', { ...policy, contracts: [EVIL] })).statusCode, 202);
    // an approval for an operation the policy refuses is refused at its creation (no message, nothing pending)
    refusedWith(
      await call('POST', '/v1/approvals', { walletName: 'flows', keyIndex: 0, operation: { authorization: { chainId: 1, address: EVIL, nonce: 0 } } }),
      403,
      'policy_operation_not_allowed',
      'contracts',
    );
  });

  it('review G1: a register key adding a limit entry for an asset the policy refuses is a timelocked change, never applied at once', async () => {
    await enroll('g1');
    const OTHER = '0x0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e';
    const policy: WalletPolicy = { native: { '1': { perTx: String(ETHER) } }, tokens: { [`1:${TOKEN}`]: { perTx: '100' } } };
    assert.equal((await setPolicy('g1', policy)).statusCode, 200);
    const { token: registerOnly } = await createApiKey(signer.store, { name: 'g1-register', scopes: ['register'] });
    recordTestSecret('apiKey', registerOnly);
    const put = (p: WalletPolicy) =>
      signer.app.inject({ method: 'PUT', url: '/v1/wallets/policy', headers: signer.auth(registerOnly), payload: { walletName: 'g1', policy: p } });
    const attacks: Array<[WalletPolicy, string, string]> = [
      [{ ...policy, tokens: { ...policy.tokens, [`1:${OTHER}`]: {} } }, `tokens.1:${OTHER}`, 'no limit'],
      [{ ...policy, tokens: { ...policy.tokens, [`1:${OTHER}`]: { perTx: '5' } } }, `tokens.1:${OTHER}`, 'at most 5 base units per transaction'],
      [{ ...policy, native: { ...policy.native, '137': {} } }, 'native.137', 'no limit'],
    ];
    for (const [attack, field, to] of attacks) {
      const res = await put(attack);
      assert.equal(res.statusCode, 202, res.body);
      assert.deepEqual([res.json().kind, res.json().state], ['policy.loosen', 'requested']);
      // the owner is shown what it really does: refused → …, looser
      const line = (res.json().policyDiff as Array<{ field: string; from: string; to: string; looser: boolean }>).find((l) => l.field === field);
      assert.deepEqual(line && [line.from, line.to, line.looser], ['refused (no limit of its own, unknownToken: deny)', to, true], res.body);
      const audit = await lastAudit('g1');
      assert.deepEqual([audit.action, audit.detail.kind], ['change.request', 'policy.loosen']);
    }
    assert.deepEqual((await view('g1')).override, policy);
    // the policy in force still refuses the asset: with a right code, at any amount
    const sign = (tx: Record<string, unknown>) =>
      call('POST', '/v1/sign/transaction', { walletName: 'g1', keyIndex: 0, transaction: transaction({ gas: '60000', ...tx }), code: code('g1') });
    refusedWith(
      await sign({ to: OTHER, data: encodeFunctionData({ abi, functionName: 'transfer', args: [BOB, 10n ** 30n] }) }),
      403,
      'policy_limit_exceeded',
      'unknownToken',
    );
    refusedWith(await sign({ chainId: 137, value: '1' }), 403, 'policy_limit_exceeded', 'unknownToken');
  });

  it('review G2/G3 at the route: value sent to a token contract off the allowlist, and an NFT id 0 of an unconfigured collection, are refused', async () => {
    await enroll('g2');
    assert.equal((await setPolicy('g2', { destinations: [BOB] })).statusCode, 200);
    const sign = (walletName: string, tx: Record<string, unknown>) =>
      call('POST', '/v1/sign/transaction', { walletName, keyIndex: 0, transaction: transaction({ gas: '60000', ...tx }), code: code(walletName) });
    // transfer(BOB, 0) to EVIL with 1 ether: the ether goes to EVIL
    const res = await sign('g2', { to: EVIL, value: String(ETHER), data: encodeFunctionData({ abi, functionName: 'transfer', args: [BOB, 0n] }) });
    refusedWith(res, 403, 'policy_destination_not_allowed', 'destinations');
    assert.equal(res.json().error.details.destination, EVIL);
    assert.equal((await lastAudit('g2')).reason, 'policy_destination_not_allowed');
    // the same call without value: its recipient is allowlisted
    const ok = await sign('g2', { to: EVIL, data: encodeFunctionData({ abi, functionName: 'transfer', args: [BOB, 0n] }) });
    assert.equal(ok.statusCode, 200, ok.body);
    // an ERC-721 transferFrom of token id 0 (ERC-20's selector) on a wallet with limits, the collection not configured
    await enroll('g3');
    assert.equal((await setPolicy('g3', { native: { '1': { perTx: String(ETHER) } } })).statusCode, 200);
    const nft = await sign('g3', { to: EVIL, data: encodeFunctionData({ abi, functionName: 'transferFrom', args: [EVIL, BOB, 0n] }) });
    refusedWith(nft, 403, 'policy_limit_exceeded', 'unknownToken');
    assert.equal(nft.json().error.details.asset, `token:1:${EVIL}`);
  });

  it('approve and Permit2 against a wallet with limits, at the routes: over the limit, to a spender off the allowlist, Permit2 not allowlisted', async () => {
    await enroll('approver');
    const policy: WalletPolicy = { native: { '1': { perTx: String(ETHER) } }, tokens: { [`1:${TOKEN}`]: { perTx: '100' } }, destinations: [BOB] };
    assert.equal((await setPolicy('approver', policy)).statusCode, 200);
    const approveTx = (spender: string, amount: bigint) =>
      transaction({ to: TOKEN, gas: '60000', data: encodeFunctionData({ abi, functionName: 'approve', args: [spender as `0x${string}`, amount] }) });
    const sign = (tx: Record<string, unknown>) =>
      call('POST', '/v1/sign/transaction', { walletName: 'approver', keyIndex: 0, transaction: tx, code: code('approver') });
    const over = await sign(approveTx(BOB, 101n));
    refusedWith(over, 403, 'policy_limit_exceeded', 'perTx');
    assert.deepEqual([over.json().error.details.asset, over.json().error.details.amount], [`token:1:${TOKEN}`, '101']);
    const offList = await sign(approveTx(EVIL, 1n));
    refusedWith(offList, 403, 'policy_destination_not_allowed', 'destinations');
    assert.equal(offList.json().error.details.destination, EVIL);
    assert.equal((await sign(approveTx(BOB, 100n))).statusCode, 200);
    // an approve over the limit is refused at an approval's creation too
    refusedWith(
      await call('POST', '/v1/approvals', { walletName: 'approver', keyIndex: 0, operation: { transaction: approveTx(BOB, 101n) } }),
      403,
      'policy_limit_exceeded',
      'perTx',
    );
    const PERMIT2 = '0x000000000022d473030f116ddee9f6b43ac78ba3';
    const permit2 = {
      domain: { name: 'Permit2', chainId: 1, verifyingContract: PERMIT2 },
      types: {
        PermitSingle: [
          { name: 'details', type: 'PermitDetails' },
          { name: 'spender', type: 'address' },
          { name: 'sigDeadline', type: 'uint256' },
        ],
        PermitDetails: [
          { name: 'token', type: 'address' },
          { name: 'amount', type: 'uint160' },
          { name: 'expiration', type: 'uint48' },
          { name: 'nonce', type: 'uint48' },
        ],
      },
      primaryType: 'PermitSingle',
      message: { details: { token: TOKEN, amount: '1', expiration: '1', nonce: '0' }, spender: BOB, sigDeadline: '1' },
    };
    const p2 = await call('POST', '/v1/sign/typed-data', { walletName: 'approver', keyIndex: 0, typedData: permit2, code: code('approver') });
    refusedWith(p2, 403, 'policy_operation_not_allowed', 'contracts');
    assert.deepEqual([p2.json().error.details.operation, p2.json().error.details.contract], ['permit2', PERMIT2]);
    const audit = await lastAudit('approver');
    assert.deepEqual([audit.reason, (audit.detail.policy as Record<string, unknown>).operation], ['policy_operation_not_allowed', 'permit2']);
    refusedWith(
      await call('POST', '/v1/approvals', { walletName: 'approver', keyIndex: 0, operation: { typedData: permit2 } }),
      403,
      'policy_operation_not_allowed',
      'contracts',
    );
  });

  it('uncountable flows need bound on an enrolled wallet without limits: a relayed code is refused (rules named, not charged); a never-enrolled wallet and a deployment saying uncountable: present sign them', async () => {
    await enroll('plain');
    const mail = {
      domain: { name: 'Market', version: '1', chainId: 1, verifyingContract: EVIL },
      types: { Order: [{ name: 'id', type: 'uint256' }] },
      primaryType: 'Order',
      message: { id: '1' },
    };
    const flows: Array<[string, Record<string, unknown>, string]> = [
      ['/v1/sign/typed-data', { typedData: mail }, 'undecodedTypedData'],
      ['/v1/sign/authorization', { authorization: { chainId: 1, address: EVIL, nonce: 0 } }, 'eip7702Authorization'],
      [
        '/v1/sign/transaction',
        { transaction: transaction({ to: TOKEN, gas: '60000', data: encodeFunctionData({ abi, functionName: 'setApprovalForAll', args: [EVIL, true] }) }) },
        'setApprovalForAll',
      ],
      ['/v1/sign/transaction', { transaction: transaction({ to: EVIL, gas: '60000', data: '0xdeadbeef' }) }, 'undecodedCall'],
    ];
    for (const [url, body, rule] of flows) {
      const res = await call('POST', url, { walletName: 'plain', keyIndex: 0, ...body, code: '000000' });
      refusedWith(res, 403, 'consent_too_weak');
      assert.deepEqual(res.json().error.details.boundBy, [rule], url);
      const audit = await lastAudit('plain');
      assert.deepEqual([audit.reason, audit.detail.policy], ['consent_too_weak', { boundBy: [rule] }]);
    }
    // the wrong code was never checked: nothing charged
    const [charged] = await signer.sql("SELECT count(*) AS n FROM audit_log WHERE wallet_name = $1 AND reason = 'code_invalid'", 'plain');
    assert.equal(Number(charged?.n), 0);
    // an approval of one says so, and a TOTP code on its page is too weak
    const app = await signer.kernel.authenticateApiKey(signer.apiKey);
    const created = await signer.kernel.createApproval(app, { walletName: 'plain', keyIndex: 0, operation: { typedData: mail } });
    recordTestSecret('approvalCapability', created.capability);
    assert.equal(created.requiredStrength, 'bound');
    // refused on the page with the policy's rule named, in the details and in the audit record (as on the sign path)
    await assert.rejects(signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'totp', proof: code('plain') }), (error: unknown) => {
      const refusal = error as { code: string; details: Record<string, unknown> };
      assert.equal(refusal.code, 'consent_too_weak');
      assert.deepEqual(refusal.details.boundBy, ['undecodedTypedData']);
      return true;
    });
    const onPage = await lastAudit('plain');
    assert.deepEqual([onPage.decision, onPage.reason, onPage.detail.policy], ['denied', 'consent_too_weak', { boundBy: ['undecodedTypedData'] }]);
    // likewise an EIP-7702 delegation
    const delegation = await signer.kernel.createApproval(app, {
      walletName: 'plain',
      keyIndex: 0,
      operation: { authorization: { chainId: 1, address: EVIL, nonce: 0 } },
    });
    recordTestSecret('approvalCapability', delegation.capability);
    await assert.rejects(signer.kernel.decideApproval(delegation.capability, { decision: 'approve', kind: 'totp', proof: code('plain') }), (error: unknown) => {
      assert.deepEqual((error as { code: string; details: Record<string, unknown> }).details.boundBy, ['eip7702Authorization']);
      return (error as { code: string }).code === 'consent_too_weak';
    });
    assert.deepEqual((await lastAudit('plain')).detail.policy, { boundBy: ['eip7702Authorization'] });
    // a decoded permit is a counted flow, not an uncountable one; a plain message neither: the floor (present)
    const signed = await call('POST', '/v1/sign/message', { walletName: 'plain', keyIndex: 0, message: { text: 'hello' }, code: code('plain') });
    assert.equal(signed.statusCode, 200, signed.body);
    // a wallet never enrolled stays under the deployment's unknownWallets rule (allow: no consent)
    for (const [url, body] of flows) {
      const res = await call('POST', url, { walletName: 'never-enrolled', keyIndex: 0, ...body });
      assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
    }
    // a deployment whose policy says uncountable: present (the weaker mode) signs them with a code
    const weaker = await createTestSigner({ startMs: T0, policyDefaults: { uncountable: 'present' } });
    try {
      const res = await weaker.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: weaker.auth(), payload: { walletName: 'plain' } });
      const uri = res.json().otpauthUri as string;
      recordTestSecret('otpauthUri', uri);
      for (const [i, [url, body]] of flows.entries()) {
        weaker.clock.now = T0 + (i + 1) * 30_000;
        const ok = await weaker.app.inject({
          method: 'POST',
          url,
          headers: weaker.auth(),
          payload: { walletName: 'plain', keyIndex: 0, ...body, code: totpFromUri(uri, weaker.clock.now) },
        });
        assert.equal(ok.statusCode, 200, `${url}: ${ok.body}`);
      }
      // and a wallet's own override puts bound back at once (a tightening)
      const put = await weaker.app.inject({
        method: 'PUT',
        url: '/v1/wallets/policy',
        headers: weaker.auth(),
        payload: { walletName: 'plain', policy: { uncountable: 'bound' } },
      });
      assert.equal(put.statusCode, 200, put.body);
      weaker.clock.now = T0 + 10 * 30_000;
      const [url, body] = flows[0] as [string, Record<string, unknown>, string];
      const refused = await weaker.app.inject({
        method: 'POST',
        url,
        headers: weaker.auth(),
        payload: { walletName: 'plain', keyIndex: 0, ...body, code: totpFromUri(uri, weaker.clock.now) },
      });
      refusedWith(refused, 403, 'consent_too_weak');
      // loosening it again is timelocked
      const loosen = await weaker.app.inject({
        method: 'PUT',
        url: '/v1/wallets/policy',
        headers: weaker.auth(),
        payload: { walletName: 'plain', policy: { uncountable: 'present' } },
      });
      assert.equal(loosen.statusCode, 202, loosen.body);
      assert.equal(loosen.json().kind, 'policy.loosen');
    } finally {
      await weaker.close();
    }
  });

  it('a raw hash through every route that takes one: refused by default for an enrolled wallet on /v1/sign/hash and approvals; the compatibility API follows its deployment setting', async () => {
    await enroll('hashes');
    const signHash = () => call('POST', '/v1/sign/hash', { walletName: 'hashes', keyIndex: 0, hash: HASH, code: code('hashes') });
    const approveHash = () => call('POST', '/v1/approvals', { walletName: 'hashes', keyIndex: 0, operation: { hash: HASH } });
    // the built-in default refuses raw hashes (blind) for an enrolled wallet, on every native route, before the code is checked
    refusedWith(await signHash(), 403, 'policy_operation_not_allowed', 'rawHash');
    assert.deepEqual((await lastAudit('hashes')).detail.policy, { rule: 'rawHash' });
    refusedWith(await approveHash(), 403, 'policy_operation_not_allowed', 'rawHash');
    const [charged] = await signer.sql("SELECT count(*) AS n FROM audit_log WHERE wallet_name = $1 AND reason = 'code_invalid'", 'hashes');
    assert.equal(Number(charged?.n), 0);
    // allowing them for a wallet loosens its policy: timelocked, never at once through the API key
    assert.equal((await setPolicy('hashes', { rawHash: 'allow' })).statusCode, 202);
    refusedWith(await signHash(), 403, 'policy_operation_not_allowed', 'rawHash');
    // eth_sign over JSON-RPC signs an EIP-191 message, never a raw hash: not a route that takes one
    // the compatibility API (plugin sign): allowed by default (compatRawHash 'allow', the weaker mode)
    const plugin = async (on: TestSigner, c: string) => {
      const auth = await on.app.inject({ method: 'POST', url: '/sys/v1/session/auth', headers: { authorization: `Basic ${on.apiKey}` } });
      const bearer = auth.json().access_token as string;
      recordTestSecret('accessToken', bearer);
      return on.app.inject({
        method: 'POST',
        url: `/sys/v1/plugins/${on.signerId}`,
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
        payload: JSON.stringify({ operation: 'sign', walletName: 'hashes', keyIndex: 0, msgHash: HASH.slice(2), code: c }),
      });
    };
    const compat = await plugin(signer, code('hashes'));
    assert.equal(compat.statusCode, 200, compat.body);
    // a wallet with limits: a hash can be any transaction — refused on /v1, still signed in the compat weaker mode
    assert.equal((await setPolicy('hashes', { rawHash: 'deny', native: { '1': { perTx: '1' } } })).statusCode, 200);
    refusedWith(await signHash(), 403, 'policy_operation_not_allowed', 'rawHash');
    assert.equal((await plugin(signer, code('hashes'))).statusCode, 200);

    // a deployment that allows raw hashes (policy file: rawHash 'allow') and sends the compat API through the policy
    const other = await createTestSigner({ startMs: T0, policyDefaults: { rawHash: 'allow' }, kernelOptions: { compatRawHash: 'policy' } });
    try {
      const res = await other.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: other.auth(), payload: { walletName: 'hashes' } });
      const uri = res.json().otpauthUri as string;
      recordTestSecret('otpauthUri', uri);
      let at = T0;
      const otherCode = () => {
        at += 30_000;
        other.clock.now = at;
        return totpFromUri(uri, at);
      };
      const otherCall = (url: string, payload: object) => other.app.inject({ method: 'POST', url, headers: other.auth(), payload });
      const signed = await otherCall('/v1/sign/hash', { walletName: 'hashes', keyIndex: 0, hash: HASH, code: otherCode() });
      assert.equal(signed.statusCode, 200, signed.body);
      const created = await otherCall('/v1/approvals', { walletName: 'hashes', keyIndex: 0, operation: { hash: HASH } });
      assert.equal(created.statusCode, 201, created.body);
      recordTestSecret('approvalCapability', String(created.json().approveUrl).split('/approve/')[1] as string);
      assert.equal((await plugin(other, otherCode())).statusCode, 200);
      // the wallet's own policy tightens it (at once): every route refuses, the compat API too under 'policy'
      const put = await other.app.inject({
        method: 'PUT',
        url: '/v1/wallets/policy',
        headers: other.auth(),
        payload: { walletName: 'hashes', policy: { rawHash: 'deny' } },
      });
      assert.equal(put.statusCode, 200, put.body);
      refusedWith(
        await otherCall('/v1/sign/hash', { walletName: 'hashes', keyIndex: 0, hash: HASH, code: otherCode() }),
        403,
        'policy_operation_not_allowed',
        'rawHash',
      );
      refusedWith(
        await otherCall('/v1/approvals', { walletName: 'hashes', keyIndex: 0, operation: { hash: HASH } }),
        403,
        'policy_operation_not_allowed',
        'rawHash',
      );
      const compatRefused = await plugin(other, otherCode());
      assert.equal(compatRefused.statusCode >= 400, true, compatRefused.body);
      assert.match(compatRefused.body, /policy_operation_not_allowed|not allowed/i);
    } finally {
      await other.close();
    }
  });

  it('an approval is decided again on the page and when used: usage filled in between refuses it, before the factor is charged', async () => {
    await enroll('approved');
    const perWindow = 2n * (ETHER / 10n + FEE);
    assert.equal((await setPolicy('approved', { native: { '1': { perTx: String(ETHER), perWindow: String(perWindow) } } })).statusCode, 200);
    const app = await signer.kernel.authenticateApiKey(signer.apiKey);
    const ask = async (nonce: number) => {
      const created = await signer.kernel.createApproval(app, {
        walletName: 'approved',
        keyIndex: 0,
        operation: { transaction: transaction({ nonce, value: String(ETHER / 10n) }) },
      });
      recordTestSecret('approvalCapability', created.capability);
      return created;
    };
    // three approvals created and approved while the window has room (each alone fits; approving counts nothing), a fourth pending
    const [a, b, c, d] = [await ask(0), await ask(1), await ask(2), await ask(3)];
    for (const created of [a, b, c])
      assert.equal((await signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'totp', proof: code('approved') })).state, 'approved');
    const signWith = (nonce: number, approvalId: string) =>
      call('POST', '/v1/sign/transaction', {
        walletName: 'approved',
        keyIndex: 0,
        transaction: transaction({ nonce, value: String(ETHER / 10n) }),
        approvalId,
      });
    assert.equal((await signWith(0, a.id)).statusCode, 200);
    assert.equal((await signWith(1, b.id)).statusCode, 200);
    // the window is full: the third, approved, is refused when used (decided again at sign time) and stays unused
    refusedWith(await signWith(2, c.id), 403, 'policy_limit_exceeded', 'perWindow');
    assert.equal((await signer.kernel.getApproval(app, { id: c.id })).state, 'approved');
    // the page refuses to approve the fourth before the code is checked (a wrong code is not charged)
    await assert.rejects(signer.kernel.decideApproval(d.capability, { decision: 'approve', kind: 'totp', proof: '000000' }), {
      code: 'policy_limit_exceeded',
    });
    const [charged] = await signer.sql("SELECT count(*) AS n FROM audit_log WHERE wallet_name = $1 AND reason = 'code_invalid'", 'approved');
    assert.equal(Number(charged?.n), 0);
    // a repeat of a signature already made (the same bytes again) counts nothing new: a full window does not refuse it
    const first = await signWith(0, a.id);
    const again = await signWith(0, a.id);
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(again.json().serializedTransaction, first.json().serializedTransaction);
    const repeatAudit = await lastAudit('approved');
    assert.equal(repeatAudit.decision, 'allowed');
    assert.equal(typeof repeatAudit.detail.repeatOf, 'number');
    assert.equal((await view('approved')).usage.signatures, 2);
    assert.equal((await view('approved')).usage.amounts['native:1'], String(perWindow));
    // the third (never signed) is still refused: only a repeat passes a full window
    refusedWith(await signWith(2, c.id), 403, 'policy_limit_exceeded', 'perWindow');
  });

  it('an approval decided with a code, used after the policy asks bound: consent_too_weak naming the rule, in the details and the audit record', async () => {
    await enroll('tightened');
    const app = await signer.kernel.authenticateApiKey(signer.apiKey);
    const created = await signer.kernel.createApproval(app, { walletName: 'tightened', keyIndex: 0, operation: { transaction: transaction({ value: '1' }) } });
    recordTestSecret('approvalCapability', created.capability);
    assert.equal((await signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'totp', proof: code('tightened') })).state, 'approved');
    // a tightening applies at once: the approval (a code: present) is too weak now
    assert.equal((await setPolicy('tightened', { requiredStrength: 'bound' })).statusCode, 200);
    const used = await call('POST', '/v1/sign/transaction', {
      walletName: 'tightened',
      keyIndex: 0,
      transaction: transaction({ value: '1' }),
      approvalId: created.id,
    });
    refusedWith(used, 403, 'consent_too_weak');
    assert.deepEqual(used.json().error.details.boundBy, ['requiredStrength']);
    const audit = await lastAudit('tightened');
    assert.deepEqual([audit.decision, audit.reason, audit.detail.policy], ['denied', 'consent_too_weak', { boundBy: ['requiredStrength'] }]);
    assert.equal(audit.detail.approvalId, created.id);
    assert.equal((await signer.kernel.getApproval(app, { id: created.id })).state, 'approved', 'not consumed');
  });

  it('the sweep deletes usage older than the longest window, and only that', async () => {
    await signer.store.transact(async (tx) => {
      await tx.insertPolicyUsage({ walletName: 'limited', auditSeq: 10_000_001, ts: signer.clock.now - 366 * 86_400_000 - 1, amounts: '{}' });
      await tx.insertPolicyUsage({ walletName: 'limited', auditSeq: 10_000_002, ts: signer.clock.now - 366 * 86_400_000 + 1000, amounts: '{}' });
    });
    assert.equal(await signer.kernel.sweepPolicyUsage(), 1);
    const left = await signer.sql('SELECT audit_seq FROM policy_usage WHERE audit_seq >= 10000001');
    assert.deepEqual(
      left.map((r) => Number(r.audit_seq)),
      [10_000_002],
    );
  });

  it('a permit through /v1/sign/typed-data is counted against the token limit', async () => {
    await enroll('permits');
    assert.equal(
      (await setPolicy('permits', { native: { '1': { perTx: '1' } }, tokens: { [`1:${TOKEN}`]: { perTx: '100', perWindow: '150' } } })).statusCode,
      200,
    );
    const permit = (value: number) => ({
      domain: { name: 'USD Coin', version: '2', chainId: 1, verifyingContract: TOKEN },
      types: {
        Permit: [
          { name: 'owner', type: 'address' },
          { name: 'spender', type: 'address' },
          { name: 'value', type: 'uint256' },
          { name: 'nonce', type: 'uint256' },
          { name: 'deadline', type: 'uint256' },
        ],
      },
      primaryType: 'Permit',
      message: { owner: BOB, spender: BOB, value: String(value), nonce: '0', deadline: '99999999999' },
    });
    const sign = (value: number) =>
      call('POST', '/v1/sign/typed-data', { walletName: 'permits', keyIndex: 0, typedData: permit(value), code: code('permits') });
    refusedWith(await sign(101), 403, 'policy_limit_exceeded', 'perTx');
    assert.equal((await sign(100)).statusCode, 200);
    refusedWith(await sign(51), 403, 'policy_limit_exceeded', 'perWindow');
    assert.deepEqual((await view('permits')).usage.amounts, { [`token:1:${TOKEN}`]: '100' });
  });

  it('a policy row changed in the database (loosened by hand) is refused record_unreadable, never applied', async () => {
    await enroll('tampered');
    assert.equal((await setPolicy('tampered', { native: { '1': { perTx: '1' } } })).statusCode, 200);
    await signer.sql(`UPDATE wallet_policies SET policy = $1 WHERE wallet_name = $2`, '{"native":{"1":{"perTx":"1000000000000000000000"}}}', 'tampered');
    refusedWith(
      await call('POST', '/v1/sign/transaction', { walletName: 'tampered', keyIndex: 0, transaction: transaction({ value: '1000' }), code: code('tampered') }),
      503,
      'record_unreadable',
    );
    refusedWith(await call('GET', '/v1/wallets/policy?walletName=tampered'), 503, 'record_unreadable');
    // moved to another tenant's wallet name: refused as well
    await signer.sql(`UPDATE wallet_policies SET policy = $1, tenant = $2 WHERE wallet_name = $3`, '{"native":{"1":{"perTx":"1"}}}', 'other', 'tampered');
    refusedWith(await call('GET', '/v1/wallets/policy?walletName=tampered'), 503, 'record_unreadable');
  });

  it('deny wins over allow: a destination both allowlisted and denied is refused', async () => {
    await enroll('both');
    assert.equal((await setPolicy('both', { destinations: [BOB], deniedDestinations: [BOB] })).statusCode, 200);
    refusedWith(
      await call('POST', '/v1/sign/transaction', { walletName: 'both', keyIndex: 0, transaction: transaction({ value: '1' }), code: code('both') }),
      403,
      'policy_destination_not_allowed',
      'deniedDestinations',
    );
  });

  it('a contract deployment under an allowlist (otherDestinations: deny) is refused policy_destination_not_allowed, signed or asked for approval', async () => {
    await enroll('deployer');
    assert.equal((await setPolicy('deployer', { destinations: [BOB, EVIL, TOKEN] })).statusCode, 200);
    const deploy = transaction({ to: null, gas: '100000', data: '0x6000' });
    const signed = await call('POST', '/v1/sign/transaction', { walletName: 'deployer', keyIndex: 0, transaction: deploy, code: code('deployer') });
    refusedWith(signed, 403, 'policy_destination_not_allowed', 'destinations');
    assert.equal(signed.json().error.details.operation, 'deployment');
    const audit = await lastAudit('deployer');
    assert.deepEqual([audit.action, audit.decision, audit.reason], ['sign.transaction', 'denied', 'policy_destination_not_allowed']);
    assert.deepEqual(audit.detail.policy, { rule: 'destinations', destination: null, operation: 'deployment' });
    // an approval (which the page could decide with a bound factor) is refused at its creation too
    refusedWith(
      await call('POST', '/v1/approvals', { walletName: 'deployer', keyIndex: 0, operation: { transaction: deploy } }),
      403,
      'policy_destination_not_allowed',
      'destinations',
    );
  });
});

describe('wallet policy: the compatibility API under compatRawHash "policy"', () => {
  let signer: TestSigner;
  before(async () => {
    signer = await createTestSigner({ startMs: T0, kernelOptions: { compatRawHash: 'policy', policyDefaults: { rawHash: 'deny' } } });
  });
  after(async () => {
    await signer.close();
  });

  it('a raw hash through the plugin sign is refused for an enrolled wallet (the deployment denies raw hashes)', async () => {
    const enrolled = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName: 'strict' } });
    const uri = enrolled.json().otpauthUri as string;
    recordTestSecret('otpauthUri', uri);
    const auth = await signer.app.inject({ method: 'POST', url: '/sys/v1/session/auth', headers: { authorization: `Basic ${signer.apiKey}` } });
    const bearer = auth.json().access_token as string;
    recordTestSecret('accessToken', bearer);
    const res = await signer.app.inject({
      method: 'POST',
      url: `/sys/v1/plugins/${signer.signerId}`,
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ operation: 'sign', walletName: 'strict', keyIndex: 0, msgHash: HASH.slice(2), code: totpFromUri(uri, T0) }),
    });
    assert.equal(res.statusCode, 403, res.body);
    assert.equal(res.json().error.code, 'policy_operation_not_allowed');
    // a wallet never enrolled signs as before (no consent, no raw-hash rule: the TOTP ETH Signer's semantics)
    const open = await signer.app.inject({
      method: 'POST',
      url: '/v1/sign/hash',
      headers: signer.auth(),
      payload: { walletName: 'never-enrolled', keyIndex: 0, hash: HASH },
    });
    assert.equal(open.statusCode, 200, open.body);
  });
});
