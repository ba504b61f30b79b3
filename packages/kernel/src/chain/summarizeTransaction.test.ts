import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeFunctionData, maxUint256, parseAbi } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { formatEther } from './formatAmount.js';
import { parseTransaction } from './parseTransaction.js';
import { summarizeTransaction } from './summarizeTransaction.js';
import type { Address } from './types.js';

const FROM = '0x6ac7ea33f8831ea9dcc53393aaa88b25a785dbf0' as Address;
const TOKEN = '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48';
const BOB = '0x000000000000000000000000000000000000dEaD';
const ALICE = '0x3535353535353535353535353535353535353535';
const abi = parseAbi([
  'function transfer(address to, uint256 amount)',
  'function approve(address spender, uint256 amount)',
  'function increaseAllowance(address spender, uint256 addedValue)',
  'function transferFrom(address from, address to, uint256 amount)',
  'function safeTransferFrom(address from, address to, uint256 tokenId)',
  'function safeTransferFrom(address from, address to, uint256 tokenId, bytes data)',
  'function safeTransferFrom(address from, address to, uint256 id, uint256 amount, bytes data)',
  'function safeBatchTransferFrom(address from, address to, uint256[] ids, uint256[] amounts, bytes data)',
  'function setApprovalForAll(address operator, bool approved)',
]);

function summarize(fields: Record<string, unknown>) {
  const tx = parseTransaction({
    type: 'eip1559',
    chainId: 8453,
    nonce: 7,
    to: TOKEN,
    gas: '100000',
    maxFeePerGas: '2000000000',
    maxPriorityFeePerGas: '1',
    ...fields,
  });
  const out = summarizeTransaction(tx, FROM);
  assert.ok(!/[\n\r]/.test(out.summaryText), 'one line');
  return out;
}

test('ether amounts are exact decimals (bigint arithmetic)', () => {
  assert.equal(formatEther(0n), '0');
  assert.equal(formatEther(1n), '0.000000000000000001');
  assert.equal(formatEther(1500000000000000000n), '1.5');
  assert.equal(formatEther(maxUint256), '115792089237316195423570985008687907853269984665640564039457.584007913129639935');
  assert.equal(formatEther(123456789012345678901234567890n), '123456789012.34567890123456789');
});

test('a plain transfer: chain name, recipient, value, fees (max cost), nonce', () => {
  const tx = parseTransaction({ type: 'legacy', chainId: 1, nonce: 7, to: ALICE, value: '1500000000000000000', gas: '21000', gasPrice: '21000000000' });
  const { summary, summaryText } = summarizeTransaction(tx, FROM);
  assert.deepEqual(summary.chain, { id: 1, name: 'Ethereum', currency: 'ETH' });
  assert.deepEqual(summary.action, { kind: 'nativeTransfer', recipient: ALICE });
  assert.deepEqual(summary.value, { wei: '1500000000000000000', ether: '1.5' });
  assert.deepEqual(summary.maxFee, { wei: '441000000000000', ether: '0.000441' });
  assert.deepEqual(summary.maxCost, { wei: '1500441000000000000', ether: '1.500441' });
  assert.equal(summary.gasPrice, '21000000000');
  assert.equal(summaryText, `Send 1.5 ETH to ${ALICE} on Ethereum (chain 1), nonce 7, max fee 0.000441 ETH`);
  // an unknown chain is shown by its id; a known non-ETH chain by its currency
  assert.deepEqual(summarizeTransaction({ ...tx, chainId: 987654321 }, FROM).summary.chain, { id: 987654321, name: null, currency: 'ETH' });
  assert.match(summarizeTransaction({ ...tx, chainId: 987654321 }, FROM).summaryText, / on chain 987654321,/);
  assert.match(summarizeTransaction({ ...tx, chainId: 137 }, FROM).summaryText, /^Send 1\.5 POL .* on Polygon \(chain 137\)/);
});

test('ERC-20 transfer, approve (unlimited flagged), increaseAllowance and transferFrom are decoded', () => {
  const transfer = summarize({ data: encodeFunctionData({ abi, functionName: 'transfer', args: [BOB, 1000000n] }) });
  assert.deepEqual(transfer.summary.action, { kind: 'erc20Transfer', token: TOKEN, recipient: BOB, amount: '1000000' });
  assert.match(
    transfer.summaryText,
    new RegExp(`^ERC-20 transfer of 1000000 base units of token ${TOKEN} to ${BOB} on Base \\(chain 8453\\), nonce 7, max fee 0\\.0002 ETH$`),
  );

  const unlimited = summarize({ data: encodeFunctionData({ abi, functionName: 'approve', args: [BOB, maxUint256] }) });
  assert.deepEqual(unlimited.summary.action, { kind: 'erc20Approve', token: TOKEN, spender: BOB, amount: maxUint256.toString(), unlimited: true });
  assert.match(unlimited.summaryText, /UNLIMITED/);
  const limited = summarize({ data: encodeFunctionData({ abi, functionName: 'approve', args: [BOB, maxUint256 - 1n] }) });
  assert.equal((limited.summary.action as { unlimited: boolean }).unlimited, false);
  assert.doesNotMatch(limited.summaryText, /UNLIMITED/);

  const increase = summarize({ data: encodeFunctionData({ abi, functionName: 'increaseAllowance', args: [BOB, 7n] }) });
  assert.deepEqual(increase.summary.action, { kind: 'erc20IncreaseAllowance', token: TOKEN, spender: BOB, amount: '7', unlimited: false });
  assert.match(increase.summaryText, new RegExp(`^ERC-20 increaseAllowance: spender ${BOB} may spend 7 more base units of token ${TOKEN} on Base`));

  const from = summarize({ data: encodeFunctionData({ abi, functionName: 'transferFrom', args: [ALICE, BOB, 5n] }), value: '1' });
  assert.deepEqual(from.summary.action, { kind: 'transferFrom', token: TOKEN, owner: ALICE, recipient: BOB, amount: '5' });
  assert.match(from.summaryText, /, sending 0\.000000000000000001 ETH on Base/);
});

test('ERC-721 and ERC-1155 transfers and setApprovalForAll are decoded', () => {
  const nft = summarize({ data: encodeFunctionData({ abi, functionName: 'safeTransferFrom', args: [ALICE, BOB, 42n] }) });
  assert.deepEqual(nft.summary.action, { kind: 'erc721SafeTransferFrom', token: TOKEN, owner: ALICE, recipient: BOB, tokenId: '42', dataLength: 0 });
  const nftData = summarize({ data: encodeFunctionData({ abi, functionName: 'safeTransferFrom', args: [ALICE, BOB, 42n, '0xabcd'] }) });
  assert.equal((nftData.summary.action as { dataLength: number }).dataLength, 2);
  const single = summarize({ data: encodeFunctionData({ abi, functionName: 'safeTransferFrom', args: [ALICE, BOB, 3n, 10n, '0x'] }) });
  assert.deepEqual(single.summary.action, {
    kind: 'erc1155SafeTransferFrom',
    token: TOKEN,
    owner: ALICE,
    recipient: BOB,
    id: '3',
    amount: '10',
    dataLength: 0,
  });
  const batch = summarize({ data: encodeFunctionData({ abi, functionName: 'safeBatchTransferFrom', args: [ALICE, BOB, [1n, 2n], [10n, 20n], '0x'] }) });
  assert.deepEqual(batch.summary.action, {
    kind: 'erc1155SafeBatchTransferFrom',
    token: TOKEN,
    owner: ALICE,
    recipient: BOB,
    ids: ['1', '2'],
    amounts: ['10', '20'],
    dataLength: 0,
  });
  const all = summarize({ data: encodeFunctionData({ abi, functionName: 'setApprovalForAll', args: [BOB, true] }) });
  assert.deepEqual(all.summary.action, { kind: 'setApprovalForAll', token: TOKEN, operator: BOB, approved: true, unlimited: true });
  assert.match(all.summaryText, /ALL tokens/);
});

test('unknown calls show selector and length; a known selector with malformed or extra bytes is not guessed', () => {
  const unknown = summarize({ data: '0x12345678ff' });
  assert.deepEqual(unknown.summary.action, { kind: 'unknownCall', selector: '0x12345678', dataLength: 5 });
  assert.match(unknown.summaryText, new RegExp(`^Call ${TOKEN}: unknown function 0x12345678 \\(5 bytes of data\\)`));
  const transfer = encodeFunctionData({ abi, functionName: 'transfer', args: [BOB, 1n] });
  assert.equal(summarize({ data: `${transfer}00` }).summary.action.kind, 'unknownCall', 'trailing byte');
  assert.equal(summarize({ data: transfer.slice(0, -2) }).summary.action.kind, 'unknownCall', 'truncated');
  // an address argument with dirty upper bytes does not re-encode to the same calldata
  assert.equal(summarize({ data: `0xa9059cbb${'ff'.repeat(12)}${BOB.slice(2)}${'00'.repeat(31)}01` }).summary.action.kind, 'unknownCall');
  assert.deepEqual(summarize({ data: '0x1234' }).summary.action, { kind: 'unknownCall', selector: null, dataLength: 2 });
});

test('a contract deployment shows the init code length and the address the contract will have', () => {
  const tx = parseTransaction({ type: 'eip1559', chainId: 1, nonce: 0, data: '0x6000', gas: '100000', maxFeePerGas: '1', maxPriorityFeePerGas: '1' });
  const { summary, summaryText } = summarizeTransaction(tx, FROM);
  // Ethereum Yellow Paper: address = keccak(rlp([sender, nonce]))[12:] — the well-known example of sender 0x6ac7…dbf0, nonce 0
  assert.deepEqual(summary.action, { kind: 'deployment', contractAddress: '0xcd234A471b72ba2F1Ccf0A70FCABA648a5eeCD8d', initCodeLength: 2 });
  assert.equal(summary.to, null);
  assert.match(summaryText, /^Deploy a contract \(2 bytes of init code\) at 0xcd234A471b72ba2F1Ccf0A70FCABA648a5eeCD8d on Ethereum/);
});

test('EIP-7702: each authorization shows its delegate, the recovered authority, and chain id 0 as every chain', async () => {
  const authority = privateKeyToAccount(`0x${'11'.repeat(32)}`);
  const signed = await authority.signAuthorization({ chainId: 0, address: ALICE, nonce: 3 });
  const auth = { chainId: 0, address: ALICE, nonce: 3, r: signed.r, s: signed.s, yParity: signed.yParity };
  const tx = parseTransaction({
    type: 'eip7702',
    chainId: 1,
    nonce: 1,
    to: authority.address,
    gas: '100000',
    maxFeePerGas: '1',
    maxPriorityFeePerGas: '1',
    authorizationList: [auth],
  });
  const { summary, summaryText } = summarizeTransaction(tx, FROM);
  assert.deepEqual(summary.authorizations, [{ chainId: 0, allChains: true, delegate: ALICE, nonce: 3, authority: authority.address }]);
  assert.ok(
    summaryText.includes(
      `EIP-7702 authorization of account ${authority.address} on EVERY chain (chainId 0): delegate: ${ALICE} — this contract will control the account`,
    ),
  );

  // a delegation to the zero address clears the account's code, and says so
  const cleared = await authority.signAuthorization({ chainId: 1, address: '0x0000000000000000000000000000000000000000', nonce: 4 });
  const clearTx = parseTransaction({
    type: 'eip7702',
    chainId: 1,
    nonce: 2,
    to: authority.address,
    gas: '100000',
    maxFeePerGas: '1',
    maxPriorityFeePerGas: '1',
    authorizationList: [{ chainId: 1, address: '0x0000000000000000000000000000000000000000', nonce: 4, r: cleared.r, s: cleared.s, yParity: cleared.yParity }],
  });
  assert.ok(
    summarizeTransaction(clearTx, FROM).summaryText.endsWith(
      `EIP-7702 authorization of account ${authority.address} on Ethereum (chain 1): clears its delegation`,
    ),
  );
});
