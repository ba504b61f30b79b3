// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isCustosError } from '@custos/kernel';
import { testArtifactsDir } from '../testing/createTestSigner.js';
import { formatUnits, parseTokenList, readTokenList } from './tokenList.js';

const USDC = '0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913';

function refusal(value: unknown): string {
  try {
    parseTokenList(value);
  } catch (error) {
    assert.ok(isCustosError(error) && error.code === 'invalid_input', String(error));
    return error.message;
  }
  assert.fail('accepted');
}

describe('the operator token list', () => {
  it('finds a token by chain and address, whatever the address case', () => {
    const list = parseTokenList([{ chainId: 8453, address: USDC, symbol: 'USDC', decimals: 6 }]);
    assert.deepEqual(list.find(8453, USDC.toLowerCase()), { chainId: 8453, address: USDC.toLowerCase(), symbol: 'USDC', decimals: 6 });
    assert.equal(list.find(1, USDC), undefined);
    assert.equal(list.size, 1);
  });

  it('refuses every malformed entry with the field named', () => {
    assert.match(refusal({}), /expected a JSON array/);
    assert.match(refusal([1]), /\[0\]: expected an object/);
    assert.match(refusal([{ chainId: 0, address: USDC, symbol: 'X', decimals: 6 }]), /\[0\]\.chainId/);
    assert.match(refusal([{ chainId: 1, address: '0x12', symbol: 'X', decimals: 6 }]), /\[0\]\.address/);
    assert.match(refusal([{ chainId: 1, address: USDC, symbol: '<b>', decimals: 6 }]), /\[0\]\.symbol/);
    assert.match(refusal([{ chainId: 1, address: USDC, symbol: 'X', decimals: 37 }]), /\[0\]\.decimals/);
    assert.match(refusal([{ chainId: 1, address: USDC, symbol: 'X', decimals: 6, name: 'x' }]), /\[0\]\.name: is not a known field/);
    assert.match(
      refusal([
        { chainId: 1, address: USDC, symbol: 'X', decimals: 6 },
        { chainId: 1, address: USDC.toLowerCase(), symbol: 'Y', decimals: 6 },
      ]),
      /\[1\]: chain 1 address .* is listed twice/,
    );
  });

  it('reads a JSON file; a missing or unparseable file is invalid_input', () => {
    const dir = mkdtempSync(join(testArtifactsDir(), 'tokens-'));
    const file = join(dir, 'tokens.json');
    writeFileSync(file, JSON.stringify([{ chainId: 1, address: USDC, symbol: 'USDC', decimals: 6 }]));
    assert.equal(readTokenList(file).size, 1);
    writeFileSync(file, '[');
    assert.throws(() => readTokenList(file), { code: 'invalid_input', message: /not valid JSON/ });
    assert.throws(() => readTokenList(join(dir, 'absent.json')), { code: 'invalid_input', message: /cannot read/ });
  });

  it('formats base units exactly', () => {
    assert.equal(formatUnits('1500000', 6), '1.5');
    assert.equal(formatUnits('1', 18), '0.000000000000000001');
    assert.equal(formatUnits('1000000', 6), '1');
    assert.equal(formatUnits('0', 6), '0');
    assert.equal(formatUnits('123', 0), '123');
    assert.equal(formatUnits((2n ** 256n - 1n).toString(), 18), '115792089237316195423570985008687907853269984665640564039457.584007913129639935');
  });
});
