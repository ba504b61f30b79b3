import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalJson } from '../util/canonicalJson.js';
import { computeAuditHash } from './computeAuditHash.js';
import type { AuditEntry } from './types.js';

/** The definition: SHA-256("custos.audit.v1\0" ‖ canonicalJson({ seq, prevHash, ...entry })). */
function referenceHash(entry: AuditEntry, seq: number, prevHash: string): string {
  return createHash('sha256')
    .update('custos.audit.v1\0')
    .update(canonicalJson({ seq, prevHash, ...entry }))
    .digest('hex');
}

const signEntry: AuditEntry = {
  ts: 1700000000123,
  appId: '0123456789abcdef',
  walletName: 'alice',
  action: 'sign.hash',
  opHash: 'ab'.repeat(32),
  decision: 'allowed',
  reason: null,
  detail: { keyIndex: 0, factor: 'totp', totpStep: 56666667 },
};

describe('computeAuditHash', () => {
  it('hashes a sign record to the pinned value (the chain format of every existing log)', () => {
    assert.equal(computeAuditHash(signEntry, 42, 'cd'.repeat(32)), 'ba0cc18f06c015e38dfbf724e6fa277efe5eaf4b9bc70171b19eba0c02e4e135');
  });

  it('changes with every field, the sequence number and the previous hash', () => {
    const base = computeAuditHash(signEntry, 42, 'cd'.repeat(32));
    assert.notEqual(computeAuditHash(signEntry, 43, 'cd'.repeat(32)), base);
    assert.notEqual(computeAuditHash(signEntry, 42, 'ce'.repeat(32)), base);
    assert.notEqual(computeAuditHash({ ...signEntry, decision: 'denied' }, 42, 'cd'.repeat(32)), base);
    assert.notEqual(computeAuditHash({ ...signEntry, detail: { ...signEntry.detail, keyIndex: 1 } }, 42, 'cd'.repeat(32)), base);
    assert.notEqual(computeAuditHash({ ...signEntry, appId: null }, 42, 'cd'.repeat(32)), base);
  });

  it('equals the canonical-JSON definition for any entry (property: strings with any code points, nulls, nested detail)', () => {
    const nullableString = fc.option(fc.string({ unit: 'grapheme' }), { nil: null });
    const jsonValue = fc.jsonValue() as fc.Arbitrary<unknown>;
    const entry = fc.record({
      ts: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      appId: nullableString,
      walletName: nullableString,
      action: fc.string({ unit: 'grapheme' }),
      opHash: nullableString,
      decision: fc.constantFrom('allowed' as const, 'denied' as const),
      reason: nullableString,
      detail: fc.dictionary(fc.string({ unit: 'grapheme' }), jsonValue),
    });
    fc.assert(
      fc.property(entry, fc.nat(), fc.string(), (e, seq, prevHash) => {
        assert.equal(computeAuditHash(e, seq, prevHash), referenceHash(e, seq, prevHash));
      }),
      { numRuns: 500 },
    );
  });

  it('takes the generic encoding for an entry that breaks its type (a member left undefined is dropped, as canonicalJson does)', () => {
    const odd = { ...signEntry, reason: undefined } as unknown as AuditEntry;
    assert.equal(computeAuditHash(odd, 7, 'ef'.repeat(32)), referenceHash(odd, 7, 'ef'.repeat(32)));
  });
});
