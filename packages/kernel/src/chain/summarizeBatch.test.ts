import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeFunctionData, parseAbi } from 'viem';
import { parseTransaction } from './parseTransaction.js';
import { prepareAuthorization } from './prepareAuthorization.js';
import { summarizeBatch } from './summarizeBatch.js';
import { summarizeTransaction } from './summarizeTransaction.js';
import type { Address } from './types.js';

const FROM = '0x6ac7ea33f8831ea9dcc53393aaa88b25a785dbf0' as Address;
const OTHER = '0x1111111111111111111111111111111111111111' as Address;
const TOKEN = '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48';
const BOB = '0x000000000000000000000000000000000000dEaD';
const ALICE = '0x3535353535353535353535353535353535353535';
const abi = parseAbi(['function transfer(address to, uint256 amount)', 'function approve(address spender, uint256 amount)']);

function tx(fields: Record<string, unknown>, from = FROM, keyIndex = 0) {
  const parsed = parseTransaction({
    type: 'eip1559',
    chainId: 1,
    nonce: 1,
    gas: '21000',
    maxFeePerGas: '10',
    maxPriorityFeePerGas: '1',
    value: '0',
    ...fields,
  });
  return { keyIndex, ...summarizeTransaction(parsed, from) };
}
const transfer = (to: string, amount: bigint) => encodeFunctionData({ abi, functionName: 'transfer', args: [to as Address, amount] });

test('totals per chain and per token contract, every payment listed, other calls counted apart, signers and delegations', () => {
  const items = [
    tx({ to: BOB, value: '1000000000000000000' }),
    tx({ to: ALICE, value: '500000000000000000', chainId: 8453 }),
    tx({ to: BOB, value: '250000000000000000' }, OTHER, 1),
    tx({ to: TOKEN, data: transfer(ALICE, 7n), gas: '60000' }),
    tx({ to: TOKEN, data: transfer(BOB, 5n), gas: '60000' }),
    // the same contract on another chain is another asset
    tx({ to: TOKEN, data: transfer(BOB, 100n), gas: '60000', chainId: 8453 }),
    // an approve: no payment, counted apart
    tx({ to: TOKEN, data: encodeFunctionData({ abi, functionName: 'approve', args: [BOB, 1n] }), gas: '60000' }),
    // a deployment sending value: its recipient is the new contract
    tx({ to: null, data: '0x6000', value: '3', gas: '100000' }),
    { keyIndex: 0, ...prepareAuthorization({ chainId: 0, address: ALICE, nonce: 2 }).summarize(FROM) },
  ];
  const { summary, summaryText } = summarizeBatch(items);
  assert.equal(summary.count, 9);
  assert.deepEqual(summary.signers, [FROM, OTHER]);
  assert.deepEqual(
    summary.totals.native.map((n) => [n.chain.id, n.value.wei, n.maxFee.wei]),
    [
      [1, '1250000000000000003', String(21000 * 10 * 2 + 60000 * 10 * 3 + 100000 * 10)],
      [8453, '500000000000000000', String(21000 * 10 + 60000 * 10)],
    ],
  );
  assert.deepEqual(
    summary.totals.tokens.map((t) => [t.chain.id, t.token, t.amount]),
    [
      [1, TOKEN, '12'],
      [8453, TOKEN, '100'],
    ],
  );
  assert.deepEqual(
    summary.recipients.map((r) => [r.item, r.chain.id, r.recipient, r.asset, r.amount]),
    [
      [0, 1, BOB, 'native', '1000000000000000000'],
      [1, 8453, ALICE, 'native', '500000000000000000'],
      [2, 1, BOB, 'native', '250000000000000000'],
      [3, 1, ALICE, TOKEN, '7'],
      [4, 1, BOB, TOKEN, '5'],
      [5, 8453, BOB, TOKEN, '100'],
      [7, 1, (items[7]?.summary as unknown as { action: { contractAddress: string } }).action.contractAddress, 'native', '3'],
    ],
  );
  assert.deepEqual(summary.authorizations, [{ item: 8, chainId: 0, allChains: true, delegate: ALICE, account: FROM }]);
  assert.equal(summary.otherOperations, 2);
  assert.equal(summary.items.length, 9);
  assert.equal(
    summaryText,
    `Batch of 9 operations: 1.250000000000000003 ETH on Ethereum (chain 1), 0.5 ETH on Base (chain 8453), 12 base units of token ${TOKEN} on Ethereum (chain 1), 100 base units of token ${TOKEN} on Base (chain 8453), to 3 recipients, 1 EIP-7702 delegation (${ALICE} will control the account), 2 other operations, max fees 0.00000000000322 ETH + 0.00000000000081 ETH, from 2 addresses`,
  );
});

test('a batch of plain payments reads as payments; amounts are summed exactly past 2^64', () => {
  const big = (2n ** 70n).toString();
  const { summary, summaryText } = summarizeBatch([tx({ to: BOB, value: big }), tx({ to: BOB, value: big })]);
  assert.equal(summary.totals.native[0]?.value.wei, (2n ** 71n).toString());
  assert.match(summaryText, /^Batch of 2 payments: 2361\.183241434822606848 ETH on Ethereum \(chain 1\), to 1 recipient, max fees /);
});
