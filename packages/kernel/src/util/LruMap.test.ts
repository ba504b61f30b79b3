import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LruMap } from './LruMap.js';

describe('LruMap', () => {
  it('keeps at most maxEntries, dropping the least recently used', () => {
    const map = new LruMap<string, number>(10_000);
    for (let i = 0; i < 10_000; i += 1) map.set(`k${i}`, i);
    assert.equal(map.size, 10_000);
    // k0 is used again: k1 becomes the least recently used
    assert.equal(map.get('k0'), 0);
    map.set('k10000', 10_000);
    assert.equal(map.size, 10_000);
    assert.equal(map.has('k1'), false);
    assert.equal(map.get('k0'), 0);
    assert.equal(map.get('k10000'), 10_000);
    // a set of a kept key is a use, not a new entry
    map.set('k2', 22);
    map.set('k10001', 10_001);
    assert.equal(map.has('k2'), true);
    assert.equal(map.has('k3'), false);
    assert.equal(map.size, 10_000);
  });

  it('has() is not a use; delete and clear drop entries', () => {
    const map = new LruMap<string, number>(2);
    map.set('a', 1);
    map.set('b', 2);
    assert.equal(map.has('a'), true);
    map.set('c', 3);
    assert.equal(map.has('a'), false);
    assert.equal(map.delete('b'), true);
    assert.equal(map.size, 1);
    map.clear();
    assert.equal(map.size, 0);
    assert.equal(map.get('c'), undefined);
  });

  it('refuses a bound that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => new LruMap(bad), RangeError);
  });
});
