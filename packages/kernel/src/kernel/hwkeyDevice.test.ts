import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Barrier } from '../barrier/Barrier.js';
import type { FactorRecord } from '../consent/Factor.js';
import { hwkeyDeviceMatches, hwkeyDeviceToken, hwkeyPageChannel } from './hwkeyDevice.js';

function newBarrier(): Barrier {
  return new Barrier({ barrierKey: new Uint8Array(randomBytes(32)), master: { kind: 'seed', seed: new Uint8Array(randomBytes(64)) } }, 'custos-v1');
}

const card: FactorRecord<object> = {
  kind: 'hwkey',
  id: `02${'ab'.repeat(32)}`,
  version: 1,
  walletName: 'alice',
  secretEnvelope: null,
  state: {},
  createdAt: 1_700_000_000_000,
  enrolledVia: 'page',
  mac: null,
};

describe('hwkey device token (kernel/hwkeyDevice.ts)', () => {
  it('is 32 bytes base64url, fixed for one card enrolment, different for another wallet, card, enrolment or barrier', () => {
    const barrier = newBarrier();
    const token = hwkeyDeviceToken(barrier, card);
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(hwkeyDeviceToken(barrier, { ...card }), token);
    const others = [
      hwkeyDeviceToken(barrier, { ...card, walletName: 'bob' }),
      hwkeyDeviceToken(barrier, { ...card, id: `03${'ab'.repeat(32)}` }),
      hwkeyDeviceToken(barrier, { ...card, createdAt: card.createdAt + 1 }),
      hwkeyDeviceToken(newBarrier(), card),
    ];
    assert.equal(new Set([token, ...others]).size, 5);
  });

  it('matches only the card’s own token, among at most 16 cookies; never for a card the app enrolled; a wrong or empty list is no match', () => {
    const barrier = newBarrier();
    const token = hwkeyDeviceToken(barrier, card);
    const other = hwkeyDeviceToken(barrier, { ...card, walletName: 'bob' });
    assert.equal(hwkeyDeviceMatches(barrier, card, [token]), true);
    assert.equal(hwkeyDeviceMatches(barrier, card, [other, token]), true);
    assert.equal(hwkeyDeviceMatches(barrier, card, [other]), false);
    assert.equal(hwkeyDeviceMatches(barrier, card, [token.slice(0, 42)]), false);
    assert.equal(hwkeyDeviceMatches(barrier, card, []), false);
    assert.equal(hwkeyDeviceMatches(barrier, card, undefined), false);
    assert.equal(hwkeyDeviceMatches(barrier, { ...card, enrolledVia: 'api' }, [hwkeyDeviceToken(barrier, card)]), false);
    assert.equal(hwkeyDeviceMatches(barrier, card, [...Array(16).fill(other), token]), false, 'the 17th cookie is not compared');
  });

  it('a page answer counts through the page only with the cookie AND a challenge issued with it: a relay-issued or untagged challenge is relay', () => {
    assert.equal(hwkeyPageChannel(true, { via: 'page' }), 'page');
    assert.equal(hwkeyPageChannel(true, { via: 'relay' }), 'relay');
    assert.equal(hwkeyPageChannel(true, {}), 'relay', 'a challenge stored before device cookies');
    assert.equal(hwkeyPageChannel(false, { via: 'page' }), 'relay');
    assert.equal(hwkeyPageChannel(false, undefined), 'relay');
    // with the cookie and no challenge: left to the factor, which refuses challenge_required
    assert.equal(hwkeyPageChannel(true, undefined), 'page');
  });
});
