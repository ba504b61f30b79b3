import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeFunctionData, maxUint256, parseAbi } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { prepareAuthorization } from '../chain/prepareAuthorization.js';
import { prepareTransaction } from '../chain/prepareTransaction.js';
import { prepareTypedData } from '../chain/prepareTypedData.js';
import { summarizeBatch } from '../chain/summarizeBatch.js';
import { summarizeHash } from '../chain/summarizeHash.js';
import type { Address, OperationSummary } from '../chain/types.js';
import type { Requirement } from '../consent/Factor.js';
import { isCustosError } from '../errors.js';
import type { PolicyUsageRecord } from '../store/types.js';
import { evaluatePolicy, type PolicyInput } from './evaluatePolicy.js';
import { assertWalletPolicy, comparePolicies, effectivePolicy, type WalletPolicy } from './walletPolicy.js';

/**
 * The policy decision (evaluatePolicy.ts) on summaries the real chain codec makes: each rule
 * attacked, the exact code and rule asserted. Pure: no store, no clock.
 */

const FROM = '0x6ac7ea33f8831ea9dcc53393aaa88b25a785dbf0' as Address;
const TOKEN = '0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48';
const BOB = '0x000000000000000000000000000000000000dead';
const SAFE = '0x5afe5afe5afe5afe5afe5afe5afe5afe5afe5afe';
const EVIL = '0xe11e000000000000000000000000000000000e11';
const abi = parseAbi([
  'function transfer(address to, uint256 amount)',
  'function approve(address spender, uint256 amount)',
  'function increaseAllowance(address spender, uint256 addedValue)',
  'function transferFrom(address from, address to, uint256 amount)',
  'function safeTransferFrom(address from, address to, uint256 id, uint256 amount, bytes data)',
  'function setApprovalForAll(address operator, bool approved)',
]);
const GWEI = 10n ** 9n;
const ETHER = 10n ** 18n;

function txSummary(fields: Record<string, unknown>): OperationSummary {
  const op = prepareTransaction({
    type: 'eip1559',
    chainId: 1,
    nonce: 0,
    to: BOB,
    value: '0',
    gas: '21000',
    maxFeePerGas: String(10n * GWEI),
    maxPriorityFeePerGas: '1',
    ...fields,
  });
  return op.summarize(FROM).summary;
}

const tokenCall = (data: `0x${string}`, fields: Record<string, unknown> = {}) => txSummary({ to: TOKEN, data, gas: '100000', ...fields });

function typedSummary(data: unknown): OperationSummary {
  return prepareTypedData(data).summarize(FROM).summary;
}

const permit = (spender: string, value: bigint) =>
  typedSummary({
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
    message: { owner: FROM, spender, value: value.toString(), nonce: '0', deadline: '99999999999' },
  });

const PERMIT2 = '0x000000000022d473030f116ddee9f6b43ac78ba3';
const permit2 = typedSummary({
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
  message: { details: { token: TOKEN, amount: '1', expiration: '1', nonce: '0' }, spender: EVIL, sigDeadline: '1' },
});

/** A limited wallet: 1 ether max cost per tx and 2 per day on chain 1; 1000 base units of TOKEN per tx, 1500 per day. */
const LIMITED: WalletPolicy = {
  native: { '1': { perTx: String(ETHER), perWindow: String(2n * ETHER) } },
  tokens: { [`1:${TOKEN}`]: { perTx: '1000', perWindow: '1500' } },
};

function decide(summary: OperationSummary, policy: WalletPolicy, more: Partial<PolicyInput> = {}) {
  return evaluatePolicy({
    policy: effectivePolicy({}, assertWalletPolicy(policy)),
    floor: 'present',
    enrolled: true,
    summary,
    route: 'api',
    compatRawHash: 'allow',
    usage: [],
    ...more,
  });
}

function refused(run: () => unknown, code: string, rule: string): Record<string, unknown> {
  try {
    run();
  } catch (error) {
    assert.ok(isCustosError(error), String(error));
    assert.equal(error.code, code, error.message);
    assert.equal(error.details.rule, rule);
    return error.details;
  }
  assert.fail(`expected ${code} (${rule})`);
}

const usageRow = (amounts: Record<string, string>, n = 1): PolicyUsageRecord => ({ walletName: 'w', auditSeq: n, ts: n, amounts: JSON.stringify(amounts) });

describe('evaluatePolicy: limits', () => {
  test('the gas cost is counted: value under the limit, value + gas × maxFee over it, refused perTx', () => {
    const value = ETHER - 100_000n * GWEI; // 0.9999 ether
    // 21000 gas × 10 gwei = 0.00021 ether: value + fee > 1 ether
    const details = refused(() => decide(txSummary({ value: String(value) }), LIMITED), 'policy_limit_exceeded', 'perTx');
    assert.equal(details.asset, 'native:1');
    assert.equal(details.amount, String(value + 21000n * 10n * GWEI));
    // with a fee that fits, the max cost is what is counted
    const ok = decide(txSummary({ value: String(ETHER / 2n) }), LIMITED);
    assert.deepEqual(ok.amounts, { 'native:1': String(ETHER / 2n + 21000n * 10n * GWEI) });
    // a legacy transaction: gas × gasPrice
    const legacyTx = prepareTransaction({ type: 'legacy', chainId: 1, nonce: 0, to: BOB, value: '5', gas: '21000', gasPrice: String(GWEI) });
    const legacy = decide(legacyTx.summarize(FROM).summary, LIMITED);
    assert.deepEqual(legacy.amounts, { 'native:1': String(5n + 21000n * GWEI) });
  });

  test('the rolling window: what the usage rows counted plus this one may not pass perWindow', () => {
    const used = [usageRow({ 'native:1': String(ETHER) }, 1), usageRow({ 'native:1': String((ETHER * 9n) / 10n) }, 2)];
    const details = refused(() => decide(txSummary({ value: String(ETHER / 5n) }), LIMITED, { usage: used }), 'policy_limit_exceeded', 'perWindow');
    assert.equal(details.used, String((ETHER * 19n) / 10n));
    decide(txSummary({ value: String(ETHER / 20n) }), LIMITED, { usage: used });
  });

  test('ERC-20 transfer, transferFrom, approve and increaseAllowance are counted in base units per token contract; over the limit refused', () => {
    const transfer = decide(tokenCall(encodeFunctionData({ abi, functionName: 'transfer', args: [BOB, 1000n] })), LIMITED);
    assert.equal(transfer.amounts[`token:1:${TOKEN}`], '1000');
    refused(() => decide(tokenCall(encodeFunctionData({ abi, functionName: 'transfer', args: [BOB, 1001n] })), LIMITED), 'policy_limit_exceeded', 'perTx');
    refused(
      () => decide(tokenCall(encodeFunctionData({ abi, functionName: 'transferFrom', args: [FROM, BOB, 1001n] })), LIMITED),
      'policy_limit_exceeded',
      'perTx',
    );
    // an approve counts its amount: an unlimited approve exceeds any limit
    const approve = decide(tokenCall(encodeFunctionData({ abi, functionName: 'approve', args: [BOB, 700n] })), LIMITED, {
      usage: [usageRow({ [`token:1:${TOKEN}`]: '800' })],
    });
    assert.equal(approve.amounts[`token:1:${TOKEN}`], '700');
    refused(() => decide(tokenCall(encodeFunctionData({ abi, functionName: 'approve', args: [BOB, maxUint256] })), LIMITED), 'policy_limit_exceeded', 'perTx');
    // increaseAllowance adds to the allowance: counted as approve
    assert.equal(
      decide(tokenCall(encodeFunctionData({ abi, functionName: 'increaseAllowance', args: [BOB, 999n] })), LIMITED).amounts[`token:1:${TOKEN}`],
      '999',
    );
    refused(
      () => decide(tokenCall(encodeFunctionData({ abi, functionName: 'increaseAllowance', args: [BOB, 1001n] })), LIMITED),
      'policy_limit_exceeded',
      'perTx',
    );
    refused(
      () =>
        decide(tokenCall(encodeFunctionData({ abi, functionName: 'approve', args: [BOB, 701n] })), LIMITED, {
          usage: [usageRow({ [`token:1:${TOKEN}`]: '800' })],
        }),
      'policy_limit_exceeded',
      'perWindow',
    );
  });

  test('an EIP-2612 permit in typed data is counted against the token limit (per tx and per window)', () => {
    assert.equal(decide(permit(BOB, 1000n), LIMITED).amounts[`token:1:${TOKEN}`], '1000');
    refused(() => decide(permit(BOB, maxUint256), LIMITED), 'policy_limit_exceeded', 'perTx');
    refused(() => decide(permit(BOB, 600n), LIMITED, { usage: [usageRow({ [`token:1:${TOKEN}`]: '1000' })] }), 'policy_limit_exceeded', 'perWindow');
  });

  test("a token with no limit follows unknownToken: 'deny' by default, 'allow' lets it through uncounted", () => {
    const other = '0x1111111111111111111111111111111111111111';
    const call = txSummary({ to: other, gas: '100000', data: encodeFunctionData({ abi, functionName: 'transfer', args: [BOB, 1n] }) });
    const details = refused(() => decide(call, LIMITED), 'policy_limit_exceeded', 'unknownToken');
    assert.equal(details.asset, `token:1:${other}`);
    decide(call, { ...LIMITED, unknownToken: 'allow' });
    // a chain with no native limit is an unknown asset too (its gas is value moved)
    refused(() => decide(txSummary({ chainId: 10 }), LIMITED), 'policy_limit_exceeded', 'unknownToken');
  });

  test('a batch: perTx applies to each item, perWindow to the total; any item’s destination or flow decides for the batch', () => {
    const pay = (nonce: number, value: bigint, to = BOB) => ({ keyIndex: 0, summary: txSummary({ nonce, value: String(value), to }), summaryText: 'x' });
    const fee = 21000n * 10n * GWEI;
    // three payments of 0.6 ether: each under perTx (1 ether), the total (1.8 + fees) under perWindow (2 ether)
    const three = summarizeBatch([pay(0, (ETHER * 6n) / 10n), pay(1, (ETHER * 6n) / 10n), pay(2, (ETHER * 6n) / 10n)]).summary;
    assert.equal(decide(three, LIMITED).amounts['native:1'], String((ETHER * 18n) / 10n + 3n * fee));
    // four are over the window together, though each alone fits
    const four = summarizeBatch([0, 1, 2, 3].map((n) => pay(n, (ETHER * 6n) / 10n))).summary;
    refused(() => decide(four, LIMITED), 'policy_limit_exceeded', 'perWindow');
    // one item over perTx refuses the batch
    refused(() => decide(summarizeBatch([pay(0, 1n), pay(1, ETHER)]).summary, LIMITED), 'policy_limit_exceeded', 'perTx');
    // one item to a destination off the allowlist refuses the batch
    refused(() => decide(summarizeBatch([pay(0, 1n), pay(1, 1n, EVIL)]).summary, { destinations: [BOB] }), 'policy_destination_not_allowed', 'destinations');
  });

  test('a usage row the kernel did not write (a negative or malformed amount) is refused record_unreadable, never read as less', () => {
    for (const amounts of ['{"native:1":"-1000000000000000000"}', '{"native:1":"1e18"}', 'not json', '[]'])
      assert.throws(
        () => decide(txSummary({ value: '1' }), LIMITED, { usage: [{ walletName: 'w', auditSeq: 1, ts: 1, amounts }] }),
        (e: unknown) => isCustosError(e) && e.code === 'record_unreadable',
        amounts,
      );
  });

  test('maxSignaturesPerWindow counts signatures (usage rows), with or without value limits', () => {
    const msg = { operation: 'message', from: FROM, encoding: 'text', byteLength: 2, text: 'hi' } as OperationSummary;
    decide(msg, { maxSignaturesPerWindow: 2 }, { usage: [usageRow({}, 1)] });
    const details = refused(
      () => decide(msg, { maxSignaturesPerWindow: 2 }, { usage: [usageRow({}, 1), usageRow({}, 2)] }),
      'policy_limit_exceeded',
      'maxSignaturesPerWindow',
    );
    assert.equal(details.used, 2);
  });

  test("the repeat of an approval's signature counts nothing new: a full window does not refuse it, perTx and the other rules still do", () => {
    const msg = { operation: 'message', from: FROM, encoding: 'text', byteLength: 2, text: 'hi' } as OperationSummary;
    const full = [usageRow({}, 1), usageRow({}, 2)];
    refused(() => decide(msg, { maxSignaturesPerWindow: 2 }, { usage: full }), 'policy_limit_exceeded', 'maxSignaturesPerWindow');
    decide(msg, { maxSignaturesPerWindow: 2 }, { usage: full, repeat: true });
    const send = txSummary({ value: String(ETHER / 2n) });
    const spent = [usageRow({ 'native:1': String(2n * ETHER) })];
    refused(() => decide(send, LIMITED, { usage: spent }), 'policy_limit_exceeded', 'perWindow');
    decide(send, LIMITED, { usage: spent, repeat: true });
    refused(() => decide(txSummary({ value: String(2n * ETHER) }), LIMITED, { repeat: true }), 'policy_limit_exceeded', 'perTx');
    refused(() => decide(send, { deniedDestinations: [BOB] }, { repeat: true }), 'policy_destination_not_allowed', 'deniedDestinations');
  });
});

describe('evaluatePolicy: value flows the limits cannot count', () => {
  const setAll = (approved: boolean) => tokenCall(encodeFunctionData({ abi, functionName: 'setApprovalForAll', args: [EVIL, approved] }), { value: '0' });
  const authority = privateKeyToAccount(`0x${'11'.repeat(32)}`);

  test('setApprovalForAll(true): refused on a wallet with limits unless the collection is on the contract allowlist; then bound', async () => {
    const details = refused(() => decide(setAll(true), LIMITED), 'policy_operation_not_allowed', 'contracts');
    assert.deepEqual([details.operation, details.contract], ['setApprovalForAll', TOKEN]);
    const allowed = decide(setAll(true), { ...LIMITED, contracts: [TOKEN] });
    assert.equal(allowed.required, 'bound');
    assert.deepEqual(allowed.boundBy, ['setApprovalForAll']);
    // revoking an operator gives nothing away
    assert.equal(decide(setAll(false), LIMITED).required, 'present');
    // without limits: not refused, but an enrolled wallet still needs bound (unless its policy says uncountable: present)
    assert.equal(decide(setAll(true), {}).required, 'bound');
    assert.equal(decide(setAll(true), { uncountable: 'present' }).required, 'present');
    // with limits, uncountable: present does not lower it
    assert.equal(decide(setAll(true), { ...LIMITED, contracts: [TOKEN], uncountable: 'present' }).required, 'bound');
  });

  test('a 7702 delegation — the authorization tuple and a type-4 transaction — is refused unless the delegate is allowlisted; then bound', async () => {
    const auth = prepareAuthorization({ chainId: 1, address: EVIL, nonce: 0 }).summarize(FROM).summary;
    refused(() => decide(auth, LIMITED), 'policy_operation_not_allowed', 'contracts');
    assert.equal(decide(auth, { ...LIMITED, contracts: [EVIL] }).required, 'bound');
    assert.equal(decide(auth, {}).required, 'bound');
    assert.deepEqual(decide(auth, {}).boundBy, ['eip7702Authorization']);
    assert.equal(decide(auth, { uncountable: 'present' }).required, 'present');
    const signed = await authority.signAuthorization({ chainId: 1, address: EVIL, nonce: 0 });
    const type4 = txSummary({
      type: 'eip7702',
      gas: '100000',
      authorizationList: [{ chainId: 1, address: EVIL, nonce: 0, r: signed.r, s: signed.s, yParity: signed.yParity }],
    });
    const details = refused(() => decide(type4, LIMITED), 'policy_operation_not_allowed', 'contracts');
    assert.equal(details.operation, 'eip7702Authorization');
    assert.equal(decide(type4, {}).required, 'bound');
    // clearing a delegation (delegate: the zero address) gives no power away
    const clear = prepareAuthorization({ chainId: 1, address: '0x0000000000000000000000000000000000000000', nonce: 0 }).summarize(FROM).summary;
    assert.equal(decide(clear, LIMITED).required, 'present');
  });

  test('Permit2, undecoded calls, undecodable typed data and deployments: refused with limits unless allowlisted; bound', () => {
    const p2 = refused(() => decide(permit2, LIMITED), 'policy_operation_not_allowed', 'contracts');
    assert.equal(p2.operation, 'permit2');
    assert.equal(decide(permit2, { ...LIMITED, contracts: [PERMIT2] }).required, 'bound');
    const unknown = txSummary({ to: EVIL, gas: '100000', data: '0xdeadbeef' });
    assert.equal(refused(() => decide(unknown, LIMITED), 'policy_operation_not_allowed', 'contracts').operation, 'undecodedCall');
    assert.equal(decide(unknown, { maxSignaturesPerWindow: 5 }).required, 'bound');
    assert.equal(decide(unknown, { uncountable: 'present' }).required, 'present');
    assert.equal(decide(permit2, {}).required, 'bound');
    const order = typedSummary({
      domain: { name: 'Market', chainId: 1, verifyingContract: EVIL },
      types: { Order: [{ name: 'id', type: 'uint256' }] },
      primaryType: 'Order',
      message: { id: '1' },
    });
    assert.equal(refused(() => decide(order, LIMITED), 'policy_operation_not_allowed', 'contracts').operation, 'undecodedTypedData');
    assert.equal(decide(order, { ...LIMITED, contracts: [EVIL] }).required, 'bound');
    // typed data the codec cannot decode into a value flow needs bound with or without limits
    assert.deepEqual([decide(order, {}).required, decide(order, {}).boundBy], ['bound', ['undecodedTypedData']]);
    // a decoded permit is counted, not uncountable: the floor
    assert.equal(decide(permit(BOB, 5n), {}).required, 'present');
    const deploy = txSummary({ to: null, gas: '100000', data: '0x6000' });
    assert.equal(refused(() => decide(deploy, LIMITED), 'policy_operation_not_allowed', 'contracts').operation, 'deployment');
  });

  test('a never-enrolled wallet with no policy keeps signing without consent (the TOTP ETH Signer semantics)', () => {
    const unknown = txSummary({ to: EVIL, gas: '100000', data: '0xdeadbeef' });
    assert.equal(decide(unknown, {}, { floor: 'none', enrolled: false }).required, 'none');
    assert.equal(decide(permit2, {}, { floor: 'none', enrolled: false }).required, 'none');
    // with limits it is refused like any other
    refused(() => decide(unknown, LIMITED, { floor: 'none', enrolled: false }), 'policy_operation_not_allowed', 'contracts');
  });
});

describe('evaluatePolicy: destinations', () => {
  const allow = (list: string[], other: 'deny' | 'bound' = 'deny'): WalletPolicy => ({ destinations: list, otherDestinations: other });

  test('the decoded recipient per kind: native to, ERC-20 recipient (not the token), approve/permit spender, 1155 recipient, operator, delegate', () => {
    const cases: Array<[string, OperationSummary, string]> = [
      ['native', txSummary({ to: EVIL, value: '1' }), EVIL],
      ['erc20 transfer', tokenCall(encodeFunctionData({ abi, functionName: 'transfer', args: [EVIL, 1n] })), EVIL],
      ['transferFrom', tokenCall(encodeFunctionData({ abi, functionName: 'transferFrom', args: [FROM, EVIL, 1n] })), EVIL],
      ['approve', tokenCall(encodeFunctionData({ abi, functionName: 'approve', args: [EVIL, 1n] })), EVIL],
      ['increaseAllowance', tokenCall(encodeFunctionData({ abi, functionName: 'increaseAllowance', args: [EVIL, 1n] })), EVIL],
      ['permit', permit(EVIL, 1n), EVIL],
      ['erc1155', tokenCall(encodeFunctionData({ abi, functionName: 'safeTransferFrom', args: [FROM, EVIL, 1n, 2n, '0x'] })), EVIL],
      ['operator', tokenCall(encodeFunctionData({ abi, functionName: 'setApprovalForAll', args: [EVIL, true] })), EVIL],
      ['delegate', prepareAuthorization({ chainId: 1, address: EVIL, nonce: 0 }).summarize(FROM).summary, EVIL],
      ['undecoded call', txSummary({ to: EVIL, gas: '100000', data: '0xdeadbeef' }), EVIL],
    ];
    for (const [name, summary, destination] of cases) {
      // the token contract itself on the allowlist does not let a transfer to anyone else through
      const details = refused(() => decide(summary, allow([TOKEN, BOB])), 'policy_destination_not_allowed', 'destinations');
      assert.equal(details.destination, destination, name);
      const ok = decide(summary, allow([destination, TOKEN]));
      assert.ok(ok.required === 'present' || ok.required === 'bound', name);
    }
  });

  test("another destination under otherDestinations 'bound' needs bound consent, named in boundBy", () => {
    const decision = decide(txSummary({ to: EVIL, value: '1' }), allow([BOB], 'bound'));
    assert.equal(decision.required, 'bound');
    assert.deepEqual(decision.boundBy, ['otherDestinations']);
    assert.equal(decide(txSummary({ to: BOB, value: '1' }), allow([BOB], 'bound')).required, 'present');
  });

  test('a contract deployment under an allowlist: refused under deny (no destination of its own), bound under bound', () => {
    const deploy = txSummary({ to: null, gas: '100000', data: '0x6000' });
    const details = refused(() => decide(deploy, allow([BOB, EVIL, TOKEN])), 'policy_destination_not_allowed', 'destinations');
    assert.deepEqual([details.destination, details.operation], [null, 'deployment']);
    // under otherDestinations 'bound' it needs bound, and the rule is named
    const bound = decide(deploy, allow([BOB], 'bound'));
    assert.equal(bound.required, 'bound');
    assert.ok(bound.boundBy.includes('otherDestinations'), JSON.stringify(bound.boundBy));
    // even in the weaker mode (uncountable: present) the allowlist still asks bound
    assert.deepEqual(decide(deploy, { ...allow([BOB], 'bound'), uncountable: 'present' }).boundBy, ['otherDestinations']);
    // no allowlist: as before (bound for what the limits cannot count, no destination rule)
    assert.deepEqual(decide(deploy, {}).boundBy, ['deployment']);
  });

  test('deny wins over allow: a destination on both lists is refused, whatever allows it', () => {
    const policy: WalletPolicy = { destinations: [EVIL], deniedDestinations: [EVIL], requiredStrength: 'bound' };
    refused(() => decide(txSummary({ to: EVIL, value: '1' }), policy), 'policy_destination_not_allowed', 'deniedDestinations');
    // also through the emergency exit's safe address and through a permit's spender
    refused(() => decide(txSummary({ to: EVIL, value: '1' }), policy, { exit: { safeAddress: EVIL } }), 'policy_destination_not_allowed', 'deniedDestinations');
    refused(() => decide(permit(EVIL, 1n), policy), 'policy_destination_not_allowed', 'deniedDestinations');
  });
});

describe('evaluatePolicy: raw hashes and strength', () => {
  const hash = summarizeHash(new Uint8Array(32).fill(7), FROM).summary;

  test('a raw hash is refused for an enrolled wallet unless the policy allows it; the compatibility API follows compatRawHash', () => {
    // the built-in default refuses
    refused(() => decide(hash, {}), 'policy_operation_not_allowed', 'rawHash');
    refused(() => decide(hash, { rawHash: 'deny' }), 'policy_operation_not_allowed', 'rawHash');
    decide(hash, { rawHash: 'allow' });
    // compat, weaker mode (default allow): signs; under 'policy' it follows the wallet's policy
    decide(hash, { rawHash: 'deny' }, { route: 'compat', compatRawHash: 'allow' });
    refused(() => decide(hash, { rawHash: 'deny' }, { route: 'compat', compatRawHash: 'policy' }), 'policy_operation_not_allowed', 'rawHash');
    // never enrolled: no consent at all, the rule does not apply
    decide(hash, { rawHash: 'deny' }, { floor: 'none', enrolled: false });
    // a wallet with limits: a hash can be any transaction — refused even where raw hashes are allowed
    refused(() => decide(hash, { ...LIMITED, rawHash: 'allow' }), 'policy_operation_not_allowed', 'rawHash');
  });

  test('a message of exactly 32 raw bytes is a prefixed raw hash (what toEthSignedMessageHash(bytes32) and a Safe’s eth_sign verify): under the rawHash rule', () => {
    const raw = (byteLength: number) =>
      ({ operation: 'message', from: FROM, encoding: 'raw', byteLength, raw: `0x${'ab'.repeat(byteLength)}` }) as OperationSummary;
    refused(() => decide(raw(32), {}), 'policy_operation_not_allowed', 'rawHash');
    refused(() => decide(raw(32), { rawHash: 'deny' }), 'policy_operation_not_allowed', 'rawHash');
    refused(() => decide(raw(32), { ...LIMITED, rawHash: 'allow' }), 'policy_operation_not_allowed', 'rawHash');
    decide(raw(32), { rawHash: 'allow' });
    decide(raw(32), { rawHash: 'deny' }, { floor: 'none', enrolled: false });
    // other lengths, and text of 32 characters, are messages as before
    decide(raw(31), { rawHash: 'deny' });
    decide(raw(33), { rawHash: 'deny' });
    decide({ operation: 'message', from: FROM, encoding: 'text', byteLength: 32, text: 'x'.repeat(32) } as OperationSummary, { rawHash: 'deny' });
  });

  test('required strength: the policy raises the factors’ floor, never lowers it; an enrolled wallet never needs none', () => {
    const msg = { operation: 'message', from: FROM, encoding: 'text', byteLength: 2, text: 'hi' } as OperationSummary;
    const cases: Array<[Requirement, Requirement, boolean, Requirement]> = [
      ['none', 'none', false, 'none'],
      ['none', 'present', false, 'present'],
      ['bound', 'none', true, 'bound'],
      ['present', 'bound', true, 'bound'],
      ['present', 'none', true, 'present'],
    ];
    for (const [floor, policy, enrolled, expected] of cases)
      assert.equal(decide(msg, { requiredStrength: policy }, { floor, enrolled }).required, expected, `${floor}/${policy}`);
  });
});

describe('evaluatePolicy: the emergency exit', () => {
  const policy: WalletPolicy = { ...LIMITED, destinations: [BOB] };

  test('a native transfer or ERC-20 transfer to the safe address skips limits and allowlist; the consent stays', () => {
    const big = decide(txSummary({ to: SAFE, value: String(100n * ETHER) }), policy, { exit: { safeAddress: SAFE } });
    assert.equal(big.exit, true);
    assert.equal(big.required, 'present');
    // an exit counts only its fee part (21000 gas × 10 gwei), never the payment to the safe address
    assert.deepEqual(big.amounts, { 'native:1': String(21_000n * 10n * GWEI) });
    const token = decide(
      txSummary({ to: TOKEN, gas: '100000', data: encodeFunctionData({ abi, functionName: 'transfer', args: [SAFE, maxUint256] }) }),
      policy,
      {
        exit: { safeAddress: SAFE.toUpperCase().replace('0X', '0x') },
      },
    );
    assert.equal(token.exit, true);
  });

  test('the fee part of an exit stays under the native limits: a 1-wei exit with a huge gas × max fee is refused', () => {
    const exit = { safeAddress: SAFE };
    // 21000 gas × 0.001 ETH per gas = 21 ETH of fees over the 1 ETH perTx limit
    const details = refused(
      () => decide(txSummary({ to: SAFE, value: '1', maxFeePerGas: String(10n ** 15n) }), policy, { exit }),
      'policy_limit_exceeded',
      'perTx',
    );
    assert.equal(details.exit, true);
    assert.equal(details.amount, String(21_000n * 10n ** 15n));
    // the same through an ERC-20 exit (no value: all of the maximum cost is fee)
    refused(
      () =>
        decide(
          tokenCall(encodeFunctionData({ abi, functionName: 'transfer', args: [SAFE, 1n] }), { gas: '1000000', maxFeePerGas: String(10n ** 13n) }),
          policy,
          {
            exit,
          },
        ),
      'policy_limit_exceeded',
      'perTx',
    );
    // and over the window: 1.9999 ETH used, a fee of 0.00021 ETH is past the 2 ETH perWindow
    refused(
      () => decide(txSummary({ to: SAFE, value: String(50n * ETHER) }), policy, { exit, usage: [usageRow({ 'native:1': String(2n * ETHER - 10n ** 14n) })] }),
      'policy_limit_exceeded',
      'perWindow',
    );
    // a chain with no native limit under unknownToken: deny: the fee is refused as any uncounted amount
    refused(() => decide(txSummary({ chainId: 5, to: SAFE, value: '1' }), policy, { exit }), 'policy_limit_exceeded', 'unknownToken');
  });

  test('an ERC-20 transfer to the safe address is an exit only on a token the policy configures', () => {
    const exit = { safeAddress: SAFE };
    const other = '0x1111111111111111111111111111111111111111';
    // any other contract's `transfer(safe, …)` can do anything: no exemption (the allowlist refuses the safe address)
    refused(
      () => decide(txSummary({ to: other, gas: '100000', data: encodeFunctionData({ abi, functionName: 'transfer', args: [SAFE, 1n] }) }), policy, { exit }),
      'policy_destination_not_allowed',
      'destinations',
    );
    // with the safe address allowlisted, the unconfigured token is refused as a normal payment (unknownToken)
    refused(
      () =>
        decide(
          txSummary({ to: other, gas: '100000', data: encodeFunctionData({ abi, functionName: 'transfer', args: [SAFE, 1n] }) }),
          { ...policy, destinations: [BOB, SAFE] },
          { exit },
        ),
      'policy_limit_exceeded',
      'unknownToken',
    );
    // a wallet with an allowlist but no token limits: no token is configured, no ERC-20 exit
    refused(
      () => decide(tokenCall(encodeFunctionData({ abi, functionName: 'transfer', args: [SAFE, 1n] })), { destinations: [BOB] }, { exit }),
      'policy_destination_not_allowed',
      'destinations',
    );
  });

  test('the exit to any other address, or any other kind of operation to the safe address, gets no exemption', () => {
    const exit = { safeAddress: SAFE };
    refused(() => decide(txSummary({ to: EVIL, value: String(100n * ETHER) }), policy, { exit }), 'policy_destination_not_allowed', 'destinations');
    refused(
      () => decide(tokenCall(encodeFunctionData({ abi, functionName: 'transfer', args: [EVIL, 1n] })), policy, { exit }),
      'policy_destination_not_allowed',
      'destinations',
    );
    // an approve to the safe address is not a payment
    refused(
      () => decide(tokenCall(encodeFunctionData({ abi, functionName: 'approve', args: [SAFE, 1n] })), policy, { exit }),
      'policy_destination_not_allowed',
      'destinations',
    );
    // an ERC-20 transfer to the safe address that also sends value is not only a payment
    refused(
      () => decide(tokenCall(encodeFunctionData({ abi, functionName: 'transfer', args: [SAFE, 1n] }), { value: '1' }), policy, { exit }),
      'policy_destination_not_allowed',
      'destinations',
    );
  });
});

describe('comparePolicies and assertWalletPolicy', () => {
  const eff = (p: WalletPolicy) => effectivePolicy({}, assertWalletPolicy(p));

  test('tighter only when every rule is at least as strict; anything else is looser', () => {
    const base = eff({ ...LIMITED, destinations: [BOB], contracts: [TOKEN], maxSignaturesPerWindow: 10 });
    const tighter: WalletPolicy[] = [
      { ...LIMITED, destinations: [BOB], contracts: [TOKEN], maxSignaturesPerWindow: 10 },
      { ...LIMITED, destinations: [], contracts: [], maxSignaturesPerWindow: 5, requiredStrength: 'bound', deniedDestinations: [EVIL] },
      { ...LIMITED, native: { '1': { perTx: '1', perWindow: '1' } }, destinations: [BOB], maxSignaturesPerWindow: 10, windowSeconds: 2 * 86_400 },
      // a native limit removed: the chain then has no entry, refused under unknownToken: deny
      { tokens: LIMITED.tokens ?? {}, destinations: [BOB], contracts: [TOKEN], maxSignaturesPerWindow: 10 },
    ];
    for (const p of tighter) assert.equal(comparePolicies(base, eff(p)), 'tighter', JSON.stringify(p));
    const looser: WalletPolicy[] = [
      { ...LIMITED, destinations: [BOB, EVIL], contracts: [TOKEN], maxSignaturesPerWindow: 10 }, // an added destination
      { ...LIMITED, destinations: [BOB], contracts: [TOKEN, EVIL], maxSignaturesPerWindow: 10 }, // an added contract
      { ...LIMITED, contracts: [TOKEN], maxSignaturesPerWindow: 10 }, // the allowlist removed
      { ...LIMITED, destinations: [BOB], contracts: [TOKEN] }, // the signature cap removed
      { ...LIMITED, destinations: [BOB], contracts: [TOKEN], maxSignaturesPerWindow: 11 },
      { ...LIMITED, native: { '1': { perTx: String(ETHER) } }, destinations: [BOB], contracts: [TOKEN], maxSignaturesPerWindow: 10 }, // perWindow removed
      {
        ...LIMITED,
        native: { '1': { perTx: String(ETHER + 1n), perWindow: String(2n * ETHER) } },
        destinations: [BOB],
        contracts: [TOKEN],
        maxSignaturesPerWindow: 10,
      },
      { ...LIMITED, destinations: [BOB], contracts: [TOKEN], maxSignaturesPerWindow: 10, windowSeconds: 3600 }, // a shorter window
      { ...LIMITED, destinations: [BOB], contracts: [TOKEN], maxSignaturesPerWindow: 10, unknownToken: 'allow' },
      { ...LIMITED, destinations: [BOB], contracts: [TOKEN], maxSignaturesPerWindow: 10, otherDestinations: 'bound' },
    ];
    for (const p of looser) assert.equal(comparePolicies(base, eff(p)), 'looser', JSON.stringify(p));
    // removing a denied destination, lowering the strength
    assert.equal(comparePolicies(eff({ deniedDestinations: [EVIL] }), eff({})), 'looser');
    assert.equal(comparePolicies(eff({ requiredStrength: 'bound' }), eff({ requiredStrength: 'present' })), 'looser');
    assert.equal(comparePolicies(eff({ rawHash: 'deny' }), eff({ rawHash: 'allow' })), 'looser');
    assert.equal(comparePolicies(eff({ rawHash: 'allow' }), eff({ rawHash: 'deny' })), 'tighter');
    assert.equal(comparePolicies(eff({}), eff({ uncountable: 'present' })), 'looser');
    assert.equal(comparePolicies(eff({ uncountable: 'present' }), eff({ uncountable: 'bound' })), 'tighter');
  });

  test('a policy is validated field by field: unknown fields, bad amounts, keys and addresses are refused naming the field', () => {
    const bad: Array<[unknown, string]> = [
      [{ limits: {} }, 'policy.limits'],
      [{ native: { '1': { perTx: '1.5' } } }, 'policy.native.1.perTx'],
      [{ native: { '1': { perTx: '-1' } } }, 'policy.native.1.perTx'],
      [{ native: { '1': { perTx: (1n << 256n).toString() } } }, 'policy.native.1.perTx'],
      [{ native: { one: {} } }, 'policy.native.one'],
      [{ tokens: { [TOKEN]: {} } }, `policy.tokens.${TOKEN}`],
      [{ destinations: ['0x12'] }, 'policy.destinations[0]'],
      [{ windowSeconds: 1 }, 'policy.windowSeconds'],
      [{ requiredStrength: 'strong' }, 'policy.requiredStrength'],
      [[], 'policy'],
    ];
    for (const [input, field] of bad)
      assert.throws(
        () => assertWalletPolicy(input),
        (e: unknown) => isCustosError(e) && e.code === 'invalid_input' && e.details.field === field,
        field,
      );
    // addresses normalised: lower case, sorted, deduplicated; token keys too
    const p = assertWalletPolicy({
      destinations: [BOB.toUpperCase().replace('0X', '0x'), BOB],
      tokens: { [`1:${TOKEN.toUpperCase().replace('0X', '0x')}`]: { perTx: '1' } },
    });
    assert.deepEqual(p.destinations, [BOB]);
    assert.deepEqual(Object.keys(p.tokens ?? {}), [`1:${TOKEN}`]);
  });
});

describe('issue 13 review G1: comparePolicies agrees with evaluatePolicy (an added limit entry can loosen)', () => {
  const eff = (p: WalletPolicy) => effectivePolicy({}, assertWalletPolicy(p));
  const NFT = '0x2222222222222222222222222222222222222222';
  const T = `1:${TOKEN}`;
  const N = `1:${NFT}`;
  const POLICIES: Array<[string, WalletPolicy]> = [
    ['none', {}],
    ['limited', LIMITED],
    ['limited, unknownToken allow', { ...LIMITED, unknownToken: 'allow' }],
    ['limited + NFT {}', { ...LIMITED, tokens: { ...LIMITED.tokens, [N]: {} } }],
    ['limited + NFT perTx 5', { ...LIMITED, tokens: { ...LIMITED.tokens, [N]: { perTx: '5' } } }],
    ['limited + chain 137 {}', { ...LIMITED, native: { ...LIMITED.native, '137': {} } }],
    ['limited + chain 137 perTx 1 ether', { ...LIMITED, native: { ...LIMITED.native, '137': { perTx: String(ETHER) } } }],
    ['limited, safe allowlisted', { ...LIMITED, destinations: [BOB, SAFE] }],
    ['allowlist', { destinations: [BOB] }],
    ['allowlist + token limit', { destinations: [BOB], tokens: { [T]: { perTx: '1000' } } }],
    ['cap', { maxSignaturesPerWindow: 3 }],
    ['cap + token {}', { maxSignaturesPerWindow: 3, tokens: { [T]: {} } }],
    ['token {}, unknownToken allow', { tokens: { [T]: {} }, unknownToken: 'allow' }],
    ['unknownToken allow', { unknownToken: 'allow' }],
    ['chain 1 {}', { native: { '1': {} } }],
  ];
  const value = (v: bigint) => ({ value: String(v) });
  const PROBES: Array<[string, OperationSummary]> = [
    ['pay BOB on chain 1', txSummary(value(ETHER / 2n))],
    ['pay SAFE on chain 1', txSummary({ to: SAFE, ...value(ETHER / 2n) })],
    ['pay BOB on chain 137', txSummary({ chainId: 137, ...value(1000n) })],
    ['TOKEN to BOB 500', tokenCall(encodeFunctionData({ abi, functionName: 'transfer', args: [BOB, 500n] }))],
    ['TOKEN to SAFE 500', tokenCall(encodeFunctionData({ abi, functionName: 'transfer', args: [SAFE, 500n] }))],
    ['TOKEN to SAFE 5000', tokenCall(encodeFunctionData({ abi, functionName: 'transfer', args: [SAFE, 5000n] }))],
    ['NFT id 0 to BOB', txSummary({ to: NFT, gas: '100000', data: encodeFunctionData({ abi, functionName: 'transferFrom', args: [FROM, BOB, 0n] }) })],
    ['NFT id 3 to BOB', txSummary({ to: NFT, gas: '100000', data: encodeFunctionData({ abi, functionName: 'transferFrom', args: [FROM, BOB, 3n] }) })],
    ['NFT to SAFE', txSummary({ to: NFT, gas: '100000', data: encodeFunctionData({ abi, functionName: 'transfer', args: [SAFE, 1n] }) })],
    ['permit TOKEN 100 to BOB', permit(BOB, 100n)],
    ['operator', tokenCall(encodeFunctionData({ abi, functionName: 'setApprovalForAll', args: [BOB, true] }))],
    ['hash', summarizeHash(new Uint8Array(32).fill(7), FROM).summary],
    ['message', { operation: 'message', from: FROM, encoding: 'text', byteLength: 2, text: 'hi' } as OperationSummary],
  ];
  const RANK: Record<Requirement, number> = { none: 0, present: 1, bound: 2 };
  const full = [usageRow({}, 1), usageRow({}, 2), usageRow({}, 3)];
  const SITUATIONS: Array<[string, Partial<PolicyInput>]> = [
    ['plain', {}],
    ['exit pending', { exit: { safeAddress: SAFE } }],
    ['signature cap used up', { usage: full }],
    ['exit pending, cap used up', { exit: { safeAddress: SAFE }, usage: full }],
  ];
  const outcome = (summary: OperationSummary, policy: WalletPolicy, more: Partial<PolicyInput>): Requirement | null => {
    try {
      return decide(summary, policy, more).required;
    } catch (error) {
      if (isCustosError(error) && error.code.startsWith('policy_')) return null;
      throw error;
    }
  };

  test('every pair classed tighter: whatever the new policy allows (in every situation probed), the old one allowed with no weaker consent', () => {
    let tighterPairs = 0;
    const broken: string[] = [];
    for (const [fromName, from] of POLICIES)
      for (const [toName, to] of POLICIES) {
        if (comparePolicies(eff(from), eff(to)) !== 'tighter') continue;
        tighterPairs++;
        for (const [probeName, summary] of PROBES)
          for (const [situation, more] of SITUATIONS) {
            const now = outcome(summary, to, more);
            if (now === null) continue;
            const before = outcome(summary, from, more);
            if (before === null || RANK[before] > RANK[now])
              broken.push(`${fromName} → ${toName}: ${probeName} (${situation}) now ${now}, before ${before ?? 'refused'}`);
          }
      }
    assert.deepEqual(broken, []);
    // not vacuous: many pairs are tighter (every policy against itself, and the real tightenings)
    assert.ok(tighterPairs > POLICIES.length + 10, String(tighterPairs));
  });

  test('the attacks: an entry added for an asset the policy refused is looser (a `register` key must not apply it at once)', () => {
    const limited = eff(LIMITED);
    for (const added of [
      { ...LIMITED, tokens: { ...LIMITED.tokens, [N]: {} } },
      { ...LIMITED, tokens: { ...LIMITED.tokens, [N]: { perTx: '1' } } },
      { ...LIMITED, tokens: { ...LIMITED.tokens, [N]: { perTx: '0' } } },
      { ...LIMITED, native: { ...LIMITED.native, '137': {} } },
      { ...LIMITED, native: { ...LIMITED.native, '137': { perTx: '1', perWindow: '1' } } },
    ])
      assert.equal(comparePolicies(limited, eff(added)), 'looser', JSON.stringify(added));
    // the same entry where the asset was allowed uncounted (unknownToken: allow, or no limits, no allowlist, no cap) is a tightening
    assert.equal(
      comparePolicies(
        eff({ ...LIMITED, unknownToken: 'allow' }),
        eff({ ...LIMITED, unknownToken: 'allow', tokens: { ...LIMITED.tokens, [N]: { perTx: '1' } } }),
      ),
      'tighter',
    );
    assert.equal(comparePolicies(eff({}), eff({ tokens: { [T]: { perTx: '1' } } })), 'tighter');
    // …but not under an allowlist or a signature cap: the emergency exit would then cover the new token, skipping both
    assert.equal(comparePolicies(eff({ destinations: [BOB] }), eff({ destinations: [BOB], tokens: { [T]: { perTx: '1' } } })), 'looser');
    assert.equal(comparePolicies(eff({ maxSignaturesPerWindow: 3 }), eff({ maxSignaturesPerWindow: 3, tokens: { [T]: {} } })), 'looser');
    // dropping every limit drops what a wallet with limits refuses (uncountable flows, raw hashes), even when no asset was limited
    assert.equal(comparePolicies(eff({ tokens: { [T]: {} }, unknownToken: 'allow' }), eff({ unknownToken: 'allow' })), 'looser');
    assert.equal(comparePolicies(eff({ unknownToken: 'allow' }), eff({ tokens: { [T]: {} }, unknownToken: 'allow' })), 'tighter');
    // removing an entry under deny refuses the asset: a tightening
    assert.equal(comparePolicies(limited, eff({ native: LIMITED.native ?? {} })), 'tighter');
  });
});

describe('issue 13 review G2: native value sent with a decoded token call goes to `to`, a destination', () => {
  const allowBob: WalletPolicy = { destinations: [BOB] };
  const withValue = (data: `0x${string}`, v: bigint) => tokenCall(data, { value: String(v) });
  const calls: Array<[string, `0x${string}`]> = [
    ['transfer', encodeFunctionData({ abi, functionName: 'transfer', args: [BOB, 0n] })],
    ['approve', encodeFunctionData({ abi, functionName: 'approve', args: [BOB, 0n] })],
    ['increaseAllowance', encodeFunctionData({ abi, functionName: 'increaseAllowance', args: [BOB, 0n] })],
    ['transferFrom', encodeFunctionData({ abi, functionName: 'transferFrom', args: [FROM, BOB, 0n] })],
    ['erc1155', encodeFunctionData({ abi, functionName: 'safeTransferFrom', args: [FROM, BOB, 1n, 0n, '0x'] })],
    ['setApprovalForAll(false)', encodeFunctionData({ abi, functionName: 'setApprovalForAll', args: [BOB, false] })],
  ];

  test('a token call to a contract off the allowlist, naming an allowlisted recipient, with value: refused, the contract named', () => {
    for (const [name, data] of calls) {
      const details = refused(() => decide(withValue(data, 100n * ETHER), allowBob), 'policy_destination_not_allowed', 'destinations');
      assert.equal(details.destination, TOKEN, name);
      // under otherDestinations: bound it needs bound, the rule named
      const bound = decide(withValue(data, 1n), { ...allowBob, otherDestinations: 'bound' });
      assert.deepEqual([bound.required, bound.boundBy], ['bound', ['otherDestinations']], name);
      // on the denied list: refused whatever allows it
      refused(() => decide(withValue(data, 1n), { deniedDestinations: [TOKEN] }), 'policy_destination_not_allowed', 'deniedDestinations');
      // without value the token contract is no destination (its recipient, spender or operator is)
      assert.equal(decide(withValue(data, 0n), allowBob).required, 'present', name);
      // with the contract allowlisted too, the value is what the native limits count (its maximum cost)
      const counted = decide(withValue(data, ETHER / 2n), { ...LIMITED, unknownToken: 'allow', destinations: [BOB, TOKEN] });
      assert.equal(counted.amounts['native:1'], String(ETHER / 2n + 100_000n * 10n * GWEI), name);
    }
  });

  test('an undecoded call with value names `to` once; a value-less token call to an allowlisted recipient still passes', () => {
    const details = refused(
      () => decide(txSummary({ to: EVIL, gas: '100000', data: '0xdeadbeef', value: '1' }), allowBob),
      'policy_destination_not_allowed',
      'destinations',
    );
    assert.equal(details.destination, EVIL);
    // a payment's recipient is `to`: no second destination
    assert.equal(decide(txSummary({ to: BOB, value: '1' }), allowBob).required, 'present');
  });
});

describe('issue 13 review G3: an ERC-721 transferFrom (same selector as ERC-20) on a wallet with limits', () => {
  const NFT = '0x3333333333333333333333333333333333333333';
  const nftMove = (id: bigint) => txSummary({ to: NFT, gas: '100000', data: encodeFunctionData({ abi, functionName: 'transferFrom', args: [FROM, BOB, id] }) });
  const big = 2n ** 200n;

  test('a collection with no limit under unknownToken: deny is refused whatever the token id — 0 included', () => {
    for (const id of [0n, 1n, big]) {
      const details = refused(() => decide(nftMove(id), LIMITED), 'policy_limit_exceeded', 'unknownToken');
      assert.equal(details.asset, `token:1:${NFT}`);
    }
    // the same for a zero ERC-20 transfer or approve of a contract the policy does not know, and a zero permit
    const other = '0x1111111111111111111111111111111111111111';
    for (const functionName of ['transfer', 'approve'] as const)
      refused(
        () => decide(txSummary({ to: other, gas: '100000', data: encodeFunctionData({ abi, functionName, args: [BOB, 0n] }) }), LIMITED),
        'policy_limit_exceeded',
        'unknownToken',
      );
    // and a transaction of zero maximum cost on a chain with no native entry
    refused(() => decide(txSummary({ chainId: 10, maxFeePerGas: '0', maxPriorityFeePerGas: '0' }), LIMITED), 'policy_limit_exceeded', 'unknownToken');
    // under unknownToken: allow it passes uncounted
    decide(nftMove(0n), { ...LIMITED, unknownToken: 'allow' });
  });

  test('a configured collection: id 0 counts 1 (never nothing), id N counts N', () => {
    const policy: WalletPolicy = { ...LIMITED, tokens: { ...LIMITED.tokens, [`1:${NFT}`]: { perTx: '1', perWindow: '1' } } };
    assert.equal(decide(nftMove(0n), policy).amounts[`token:1:${NFT}`], '1');
    refused(() => decide(nftMove(0n), policy, { usage: [usageRow({ [`token:1:${NFT}`]: '1' })] }), 'policy_limit_exceeded', 'perWindow');
    const details = refused(() => decide(nftMove(big), policy), 'policy_limit_exceeded', 'perTx');
    assert.equal(details.amount, big.toString());
    // an entry without limits counts the collection but allows any id
    assert.equal(decide(nftMove(big), { ...LIMITED, tokens: { [`1:${NFT}`]: {} } }).amounts[`token:1:${NFT}`], big.toString());
    // a zero ERC-20 transfer of a configured token counts 1 base unit; a zero approve (a revoke) counts nothing
    assert.equal(decide(tokenCall(encodeFunctionData({ abi, functionName: 'transfer', args: [BOB, 0n] })), LIMITED).amounts[`token:1:${TOKEN}`], '1');
    assert.equal(decide(tokenCall(encodeFunctionData({ abi, functionName: 'approve', args: [BOB, 0n] })), LIMITED).amounts[`token:1:${TOKEN}`], '0');
  });
});

describe('the gas of a type-4 (EIP-7702) transaction is counted', () => {
  test('maxCost = value + gas × maxFeePerGas, over perTx refused with that amount', async () => {
    const authority = privateKeyToAccount(`0x${'22'.repeat(32)}`);
    const signed = await authority.signAuthorization({ chainId: 1, address: EVIL, nonce: 0 });
    const type4 = (v: bigint, maxFeePerGas: bigint) =>
      txSummary({
        type: 'eip7702',
        gas: '100000',
        value: String(v),
        maxFeePerGas: String(maxFeePerGas),
        authorizationList: [{ chainId: 1, address: EVIL, nonce: 0, r: signed.r, s: signed.s, yParity: signed.yParity }],
      });
    const policy: WalletPolicy = { ...LIMITED, contracts: [EVIL] };
    const ok = decide(type4(ETHER / 2n, 10n * GWEI), policy);
    assert.deepEqual(ok.amounts, { 'native:1': String(ETHER / 2n + 100_000n * 10n * GWEI) });
    assert.equal(ok.required, 'bound');
    // the value alone fits (0.9999 ether), value + 100000 gas × 10 gwei does not
    const value = ETHER - 100_000n * GWEI;
    const details = refused(() => decide(type4(value, 10n * GWEI), policy), 'policy_limit_exceeded', 'perTx');
    assert.deepEqual([details.asset, details.amount], ['native:1', String(value + 100_000n * 10n * GWEI)]);
    // the fee alone can exceed it: 100000 gas × 0.00002 ether
    refused(() => decide(type4(0n, 2n * 10n ** 13n), policy), 'policy_limit_exceeded', 'perTx');
  });
});
