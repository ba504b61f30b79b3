// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { groupClientAddress } from './groupClientAddress.js';

describe('groupClientAddress', () => {
  test('IPv4 addresses are their own key', () => {
    assert.equal(groupClientAddress('192.0.2.1'), '192.0.2.1');
    assert.equal(groupClientAddress('127.0.0.1'), '127.0.0.1');
  });

  test('every address of one IPv6 /64 shares a key; another /64 has another', () => {
    const a = groupClientAddress('2001:db8:1:2::1');
    assert.equal(a, '2001:db8:1:2::/64');
    for (const same of [
      '2001:db8:1:2:ffff:ffff:ffff:ffff',
      '2001:0db8:0001:0002:0:0:0:9',
      '2001:DB8:1:2:a:b:c:d',
      'fe80::1%eth0'.replace('fe80::1', '2001:db8:1:2::5'),
    ])
      assert.equal(groupClientAddress(same), a, same);
    assert.equal(groupClientAddress('2001:db8:1:3::1'), '2001:db8:1:3::/64');
    assert.equal(groupClientAddress('::1'), '0:0:0:0::/64');
    assert.equal(groupClientAddress('2001:db8::'), '2001:db8:0:0::/64');
    assert.equal(groupClientAddress('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
  });

  test('an IPv4-mapped IPv6 address is the IPv4 address (not all of ::ffff:0:0/96 in one key)', () => {
    assert.equal(groupClientAddress('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(groupClientAddress('::ffff:c000:0201'), '192.0.2.1');
    assert.equal(groupClientAddress('0:0:0:0:0:ffff:198.51.100.7'), '198.51.100.7');
  });

  test('no address, or not an address: one shared key', () => {
    assert.equal(groupClientAddress(undefined), 'unknown');
    assert.equal(groupClientAddress(''), 'unknown');
    assert.equal(groupClientAddress('not an address'), 'unknown');
  });
});
