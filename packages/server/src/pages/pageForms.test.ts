// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCustosError } from '@custos/kernel';
import { MAX_PROOF_LENGTH, ownerDeviceCookieHeaders, ownerDeviceCookieName, ownerDeviceCookieValues, parsePostedForm, parseProof } from './pageForms.js';

describe('page forms: the passkey fields', () => {
  it('parsePostedForm reads kind, proof and consent; a field sent twice is absent', () => {
    const form = parsePostedForm(new URLSearchParams({ csrf: 'c', decision: 'approve', kind: 'passkey', proof: '{"id":"x"}', consent: '{}' }).toString());
    assert.deepEqual(form, { csrf: 'c', decision: 'approve', code: undefined, kind: 'passkey', proof: '{"id":"x"}', consent: '{}' });
    assert.equal(parsePostedForm('proof=%7B%7D&proof=%7B%7D').proof, undefined);
  });

  it('parseProof: a JSON object of at most MAX_PROOF_LENGTH characters; else invalid_input naming the field', () => {
    assert.deepEqual(parseProof('{"id":"abc","response":{}}'), { id: 'abc', response: {} });
    const longest = `{"a":"${'x'.repeat(MAX_PROOF_LENGTH - 8)}"}`;
    assert.equal(longest.length, MAX_PROOF_LENGTH);
    assert.equal(typeof parseProof(longest), 'object');
    for (const field of ['proof', 'consent'] as const)
      for (const text of [undefined, '', '{', 'null', '[]', '[{}]', '"x"', '1', 'true', `{"a":"${'x'.repeat(MAX_PROOF_LENGTH - 7)}"}`]) {
        assert.throws(
          () => parseProof(text, field),
          (error: unknown) => isCustosError(error) && error.code === 'invalid_input' && error.details.field === field,
          `${field}: ${String(text).slice(0, 20)}`,
        );
      }
  });
});

describe('page forms: the owner-device cookie (review: planted from a sibling host)', () => {
  const token = 'Q'.repeat(75);
  const device = { token, maxAgeSeconds: 100 };

  it('under https: one __Host- cookie, Path=/, Secure — a name a sibling host of the parent domain cannot set', () => {
    const [header, more] = ownerDeviceCookieHeaders('alice', device, { secure: true });
    assert.equal(more, undefined);
    assert.match(header ?? '', /^__Host-custos_owner_[0-9a-f]{16}=Q{75}; Path=\/; Max-Age=100; HttpOnly; SameSite=Strict; Secure$/);
    assert.equal(ownerDeviceCookieName('alice', true), `__Host-${ownerDeviceCookieName('alice', false)}`);
  });

  it('under https only the __Host- name is read: a cookie of the plain name (planted with Domain=parent) is ignored', () => {
    const plain = ownerDeviceCookieName('alice', false);
    const host = ownerDeviceCookieName('alice', true);
    const planted = `${plain}=${'P'.repeat(75)}; ${plain}=${'R'.repeat(75)}`;
    assert.deepEqual(ownerDeviceCookieValues(`${planted}; ${host}=${token}`, 'alice', true), [token]);
    assert.deepEqual(ownerDeviceCookieValues(planted, 'alice', true), []);
    // over plain http (development) the plain name is the cookie, set for the change and owner pages
    assert.deepEqual(ownerDeviceCookieValues(`${plain}=${token}`, 'alice', false), [token]);
    assert.deepEqual(
      ownerDeviceCookieHeaders('alice', device, { secure: false }).map((h) => /Path=([^;]+)/.exec(h)?.[1]),
      ['/changes/', '/owner/'],
    );
  });
});
