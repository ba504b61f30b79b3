import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Upstream } from './createUpstream.js';
import { fillTransaction, readRpcTransaction } from './fillTransaction.js';
import { JsonRpcError } from './JsonRpcError.js';

/**
 * Filling a JSON-RPC transaction, against a stand-in node (a fake: these cases are about which
 * fields are asked for and how they are read; the anvil suite fills from a real node).
 */

const FROM = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8';
const TO = '0x000000000000000000000000000000000000dead';

function fakeUpstream(answers: Record<string, unknown> = {}): Upstream & { calls: string[] } {
  const calls: string[] = [];
  const defaults: Record<string, unknown> = {
    eth_chainId: '0x7a69',
    eth_getTransactionCount: '0x5',
    eth_gasPrice: '0x3b9aca00',
    eth_maxPriorityFeePerGas: '0x77359400',
    eth_getBlockByNumber: { baseFeePerGas: '0x10' },
    eth_estimateGas: '0x5208',
    ...answers,
  };
  return {
    calls,
    forward: async () => assert.fail('nothing is forwarded while filling'),
    call: async <T>(method: string) => {
      calls.push(method);
      return defaults[method] as T;
    },
  };
}

const fill = async (tx: Record<string, unknown>, upstream = fakeUpstream()) => fillTransaction(readRpcTransaction({ from: FROM, ...tx }), upstream);

async function refused(tx: Record<string, unknown>, message: RegExp): Promise<void> {
  await assert.rejects(fill(tx), (error: unknown) => error instanceof JsonRpcError && error.code === -32602 && message.test(error.message));
}

describe('fillTransaction', () => {
  it('a transaction with every field asks the node nothing, and keeps every field as sent', async () => {
    const upstream = fakeUpstream();
    const tx = await fill(
      { to: TO, value: '0x1', data: '0xabcd', nonce: '0x9', chainId: '0x1', gas: '0x7530', maxFeePerGas: '0x10', maxPriorityFeePerGas: '0x20', type: '0x2' },
      upstream,
    );
    assert.deepEqual(upstream.calls, []);
    // a given tip above the given cap is left for the kernel to refuse, not lowered
    assert.deepEqual(tx, {
      type: 'eip1559',
      chainId: 1,
      nonce: 9,
      to: TO,
      value: '0x1',
      data: '0xabcd',
      maxFeePerGas: '0x10',
      maxPriorityFeePerGas: '0x20',
      gas: '0x7530',
    });
  });

  it('fills chainId, nonce (pending), fees (2 × base fee + tip) and gas from the node', async () => {
    const upstream = fakeUpstream();
    const tx = await fill({ to: TO, value: '0x10' }, upstream);
    assert.deepEqual(upstream.calls, ['eth_chainId', 'eth_getTransactionCount', 'eth_maxPriorityFeePerGas', 'eth_getBlockByNumber', 'eth_estimateGas']);
    assert.deepEqual(tx, {
      type: 'eip1559',
      chainId: 31337,
      nonce: 5,
      to: TO,
      value: '0x10',
      maxFeePerGas: `0x${(2n * 16n + 2_000_000_000n).toString(16)}`,
      maxPriorityFeePerGas: '0x77359400',
      gas: '0x5208',
    });
    // a filled tip never exceeds a given cap
    const capped = await fill({ to: TO, maxFeePerGas: '0x100' });
    assert.equal(capped.maxPriorityFeePerGas, '0x100');
  });

  it('the type: as sent, else by its fields (gasPrice: legacy, with an access list eip2930; an authorization list: eip7702)', async () => {
    assert.equal((await fill({ to: TO, gasPrice: '0x1' })).type, 'legacy');
    assert.equal((await fill({ to: TO, gasPrice: '0x1', accessList: [] })).type, 'eip2930');
    assert.equal((await fill({ to: TO, type: '0x00', gasPrice: '0x1' })).type, 'legacy');
    const upstream = fakeUpstream();
    assert.equal((await fill({ to: TO, type: '0x0' }, upstream)).gasPrice, '0x3b9aca00');
    assert.ok(upstream.calls.includes('eth_gasPrice'));
    const delegation = await fill({
      to: TO,
      authorizationList: [{ chainId: '0x7a69', address: TO, nonce: '0x1', yParity: '0x1', r: '0x01', s: '0x02' }],
    });
    assert.equal(delegation.type, 'eip7702');
    assert.deepEqual(delegation.authorizationList, [{ chainId: 31337, address: TO, nonce: 1, r: '0x01', s: '0x02', yParity: 1 }]);
  });

  it('refuses what it cannot read, naming the field (-32602)', async () => {
    await refused({ to: TO, type: '0x3' }, /transaction\.type/);
    await refused({ to: TO, blobVersionedHashes: [] }, /blob/);
    await refused({ to: TO, maxFeePerBlobGas: '0x1' }, /blob/);
    await refused({ to: TO, sneaky: 1 }, /transaction\.sneaky/);
    await refused({ to: TO, data: '0x01', input: '0x02' }, /data and input differ/);
    await refused({ to: TO, nonce: 5 }, /transaction\.nonce/);
    await refused({ to: TO, nonce: `0x${'f'.repeat(20)}` }, /transaction\.nonce: too large/);
    assert.throws(
      () => readRpcTransaction({ to: TO }),
      (e: unknown) => e instanceof JsonRpcError && e.code === -32602 && /transaction\.from/.test(e.message),
    );
    assert.throws(
      () => readRpcTransaction('0x'),
      (e: unknown) => e instanceof JsonRpcError && e.code === -32602,
    );
  });
});
