import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CustosError } from '../errors.js';
import { parseTransaction, TRANSACTION_LIMITS } from './parseTransaction.js';

const TO = '0x3535353535353535353535353535353535353535';
const AUTH = {
  chainId: 1,
  address: TO,
  nonce: 0,
  r: '0x01',
  s: '0x02',
  yParity: 0,
};
const valid = {
  legacy: { type: 'legacy', chainId: 1, nonce: 0, to: TO, value: '1', gas: '21000', gasPrice: '1' },
  eip2930: { type: 'eip2930', chainId: 1, nonce: 0, to: TO, gas: '21000', gasPrice: '1', accessList: [] },
  eip1559: { type: 'eip1559', chainId: 1, nonce: 0, to: TO, gas: '21000', maxFeePerGas: '2', maxPriorityFeePerGas: '1' },
  eip7702: { type: 'eip7702', chainId: 1, nonce: 0, to: TO, gas: '21000', maxFeePerGas: '2', maxPriorityFeePerGas: '1', authorizationList: [AUTH] },
} as const;

function refuses(input: unknown, field: string, label = field): void {
  assert.throws(
    () => parseTransaction(input),
    (e: unknown) => e instanceof CustosError && e.code === 'invalid_input' && e.details.field === field && e.message.startsWith(`${field}:`),
    label,
  );
}

test('accepts a minimal valid transaction of each type', () => {
  for (const tx of Object.values(valid)) assert.equal(parseTransaction(tx).type, tx.type);
  const parsed = parseTransaction({ ...valid.eip1559, value: '0x0de0b6b3a7640000', data: '0xABCD' });
  assert.equal(parsed.value, 10n ** 18n);
  assert.equal(parsed.data, '0xabcd');
  assert.equal(parseTransaction({ ...valid.legacy, to: null }).to, null, 'null `to` is a deployment');
  assert.equal(parseTransaction({ type: 'legacy', chainId: 1, nonce: 0, gas: '1', gasPrice: '1' }).to, null, 'absent `to` is a deployment');
});

test('refuses unprotected legacy transactions and chain ids that protect nothing', () => {
  const { chainId: _, ...unprotected } = valid.legacy;
  refuses(unprotected, 'transaction.chainId', 'legacy without chainId');
  refuses({ ...valid.legacy, chainId: 0 }, 'transaction.chainId', 'chainId 0');
  refuses({ ...valid.eip1559, chainId: -1 }, 'transaction.chainId', 'negative chainId');
  refuses({ ...valid.eip1559, chainId: '1' }, 'transaction.chainId', 'chainId as a string');
  refuses({ ...valid.eip1559, chainId: 1.5 }, 'transaction.chainId', 'fractional chainId');
  refuses({ ...valid.eip1559, chainId: 2 ** 53 }, 'transaction.chainId', 'chainId beyond a safe integer');
});

test('refuses unknown types, missing fields, and fields that belong to another type', () => {
  refuses({ ...valid.legacy, type: 'eip4844' }, 'transaction.type');
  refuses({ ...valid.legacy, type: undefined }, 'transaction.type');
  refuses({ ...valid.legacy, gasPrice: undefined }, 'transaction.gasPrice');
  refuses({ ...valid.legacy, gas: undefined }, 'transaction.gas');
  refuses({ ...valid.legacy, nonce: undefined }, 'transaction.nonce');
  refuses({ ...valid.eip1559, maxPriorityFeePerGas: undefined }, 'transaction.maxPriorityFeePerGas');
  refuses({ ...valid.legacy, maxFeePerGas: '1' }, 'transaction.maxFeePerGas', 'a 1559 fee on legacy');
  refuses({ ...valid.legacy, accessList: [] }, 'transaction.accessList', 'an access list on legacy');
  refuses({ ...valid.eip1559, gasPrice: '1' }, 'transaction.gasPrice', 'gasPrice on 1559');
  refuses({ ...valid.eip1559, authorizationList: [AUTH] }, 'transaction.authorizationList', 'authorizations on 1559');
  refuses({ ...valid.eip1559, from: TO }, 'transaction.from', 'an unknown field');
  refuses('0x02f8', 'transaction', 'not an object');
});

test('refuses overflows: gas > 2^64-1, quantities > 2^256-1, nonce beyond a safe integer, tip above the fee cap', () => {
  refuses({ ...valid.eip1559, gas: (2n ** 64n).toString() }, 'transaction.gas');
  assert.equal(parseTransaction({ ...valid.eip1559, gas: (2n ** 64n - 1n).toString() }).gas, 2n ** 64n - 1n);
  refuses({ ...valid.eip1559, value: (2n ** 256n).toString() }, 'transaction.value');
  refuses({ ...valid.eip1559, value: `0x1${'0'.repeat(64)}` }, 'transaction.value');
  assert.equal(parseTransaction({ ...valid.eip1559, value: (2n ** 256n - 1n).toString() }).value, 2n ** 256n - 1n);
  refuses({ ...valid.eip1559, maxFeePerGas: (2n ** 256n).toString(), maxPriorityFeePerGas: '1' }, 'transaction.maxFeePerGas');
  refuses({ ...valid.legacy, gasPrice: (2n ** 256n).toString() }, 'transaction.gasPrice');
  refuses({ ...valid.eip1559, nonce: 2 ** 64 }, 'transaction.nonce');
  refuses({ ...valid.eip1559, nonce: -1 }, 'transaction.nonce');
  refuses({ ...valid.eip1559, maxFeePerGas: '1', maxPriorityFeePerGas: '2' }, 'transaction.maxPriorityFeePerGas');
});

test('refuses malformed quantities, addresses and data', () => {
  for (const bad of [21000, '', '-1', '1.5', '1e3', '021000', '0x', '0xg', ' 1', '1 ', `${'9'.repeat(81)}`])
    refuses({ ...valid.eip1559, gas: bad }, 'transaction.gas', `gas ${JSON.stringify(bad)}`);
  refuses({ ...valid.eip1559, to: '0x1234' }, 'transaction.to');
  refuses({ ...valid.eip1559, to: '3535353535353535353535353535353535353535' }, 'transaction.to', 'no 0x');
  // EIP-55: a mixed-case address must carry the right checksum
  refuses({ ...valid.eip1559, to: '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB49' }, 'transaction.to', 'bad checksum');
  refuses({ ...valid.eip1559, to: '0xa0B86991c6218b36c1d19D4a2e9Eb0cE3606eB48' }, 'transaction.to', 'one letter flipped');
  assert.equal(parseTransaction({ ...valid.eip1559, to: '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48' }).to, '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48');
  assert.equal(
    parseTransaction({ ...valid.eip1559, to: '0xA0B86991C6218B36C1D19D4A2E9EB0CE3606EB48' }).to,
    '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48',
    'all upper case',
  );
  refuses({ ...valid.eip1559, data: '0xabc' }, 'transaction.data', 'odd length');
  refuses({ ...valid.eip1559, data: 'abcd' }, 'transaction.data', 'no 0x');
});

test('refuses malformed access lists and authorizations, naming the item', () => {
  refuses({ ...valid.eip1559, accessList: {} }, 'transaction.accessList');
  refuses({ ...valid.eip1559, accessList: [{ address: TO }] }, 'transaction.accessList[0].storageKeys');
  refuses(
    {
      ...valid.eip1559,
      accessList: [
        { address: TO, storageKeys: [] },
        { address: '0x12', storageKeys: [] },
      ],
    },
    'transaction.accessList[1].address',
  );
  refuses({ ...valid.eip1559, accessList: [{ address: TO, storageKeys: ['0x01'] }] }, 'transaction.accessList[0].storageKeys[0]');
  refuses({ ...valid.eip1559, accessList: [{ address: TO, storageKeys: [], extra: 1 }] }, 'transaction.accessList[0].extra');
  refuses({ ...valid.eip7702, authorizationList: [] }, 'transaction.authorizationList', 'empty');
  refuses({ ...valid.eip7702, authorizationList: undefined }, 'transaction.authorizationList', 'missing');
  refuses({ ...valid.eip7702, to: null }, 'transaction.to', '7702 deployment');
  refuses({ ...valid.eip7702, authorizationList: [{ ...AUTH, yParity: 2 }] }, 'transaction.authorizationList[0].yParity');
  refuses({ ...valid.eip7702, authorizationList: [AUTH, { ...AUTH, chainId: -1 }] }, 'transaction.authorizationList[1].chainId');
  refuses({ ...valid.eip7702, authorizationList: [{ ...AUTH, r: '0x00' }] }, 'transaction.authorizationList[0].r', 'r = 0');
  refuses(
    { ...valid.eip7702, authorizationList: [{ ...AUTH, s: '0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a1' }] },
    'transaction.authorizationList[0].s',
    'high s',
  );
  refuses({ ...valid.eip7702, authorizationList: [{ ...AUTH, nonce: undefined }] }, 'transaction.authorizationList[0].nonce');
  refuses({ ...valid.eip7702, authorizationList: [{ ...AUTH, contractAddress: TO }] }, 'transaction.authorizationList[0].contractAddress');
});

test('issue 9: access lists, authorization lists and calldata are capped, the cap named with the field', () => {
  const L = TRANSACTION_LIMITS;
  const key = `0x${'00'.repeat(32)}`;
  const entries = (n: number, keys = 0) => Array.from({ length: n }, () => ({ address: TO, storageKeys: new Array(keys).fill(key) }));
  // addresses in an access list
  assert.equal(parseTransaction({ ...valid.eip1559, accessList: entries(L.maxAccessListEntries) }).accessList?.length, L.maxAccessListEntries);
  refuses({ ...valid.eip1559, accessList: entries(L.maxAccessListEntries + 1) }, 'transaction.accessList');
  assert.throws(() => parseTransaction({ ...valid.eip2930, accessList: entries(L.maxAccessListEntries + 1) }), {
    message: `transaction.accessList: expected at most ${L.maxAccessListEntries} addresses, got ${L.maxAccessListEntries + 1}`,
  });
  // storage keys, all addresses together: the entry that goes over is named
  const perEntry = L.maxStorageKeys / 4;
  parseTransaction({ ...valid.eip1559, accessList: entries(4, perEntry) });
  refuses({ ...valid.eip1559, accessList: [...entries(4, perEntry), ...entries(1, 1)] }, 'transaction.accessList[4].storageKeys');
  refuses({ ...valid.eip7702, accessList: entries(1, L.maxStorageKeys + 1) }, 'transaction.accessList[0].storageKeys');
  // EIP-7702 authorizations (each one costs a public-key recovery in the summary)
  const auths = (n: number) => new Array(n).fill(AUTH);
  assert.equal(parseTransaction({ ...valid.eip7702, authorizationList: auths(L.maxAuthorizations) }).authorizationList?.length, L.maxAuthorizations);
  refuses({ ...valid.eip7702, authorizationList: auths(L.maxAuthorizations + 1) }, 'transaction.authorizationList');
  assert.throws(() => parseTransaction({ ...valid.eip7702, authorizationList: auths(L.maxAuthorizations + 1) }), {
    message: `transaction.authorizationList: expected at most ${L.maxAuthorizations} signed authorizations, got ${L.maxAuthorizations + 1}`,
  });
  // calldata or init code
  const data = (bytes: number) => `0x${'ab'.repeat(bytes)}`;
  assert.equal(parseTransaction({ ...valid.legacy, data: data(L.maxDataBytes) }).data.length, 2 + 2 * L.maxDataBytes);
  refuses({ ...valid.legacy, to: null, data: data(L.maxDataBytes + 1) }, 'transaction.data');
});
