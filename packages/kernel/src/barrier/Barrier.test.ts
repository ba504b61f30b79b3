import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Barrier } from './Barrier.js';

describe('Barrier.wipe', () => {
  it('zeroes every secret buffer it holds: record key, master node and every cached wallet node', () => {
    const barrier = new Barrier({ barrierKey: new Uint8Array(randomBytes(32)), master: { kind: 'seed', seed: new Uint8Array(randomBytes(64)) } }, 'custos-v1');
    const digest = new Uint8Array(randomBytes(32));
    for (const wallet of ['alice', 'bob', 'carol']) barrier.sign(wallet, 0, digest);
    const before = barrier.secretBufferState();
    // record key + master (key, chain code) + 3 cached wallets (key, chain code)
    assert.equal(before.buffers, 1 + 2 + 3 * 2);
    assert.equal(before.nonZero, before.buffers);
    barrier.wipe();
    assert.deepEqual(barrier.secretBufferState(), { buffers: before.buffers, nonZero: 0 });
    assert.throws(() => barrier.sign('alice', 0, digest), { code: 'sealed' });
    assert.throws(() => barrier.publicKey('alice', 0), { code: 'sealed' });
    assert.equal(JSON.stringify({ barrier }), '{"barrier":"[Barrier]"}');
  });
});
