// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCustosError } from '@custos/kernel';
import { MAX_PROOF_LENGTH, parsePostedForm, parseProof } from './pageForms.js';

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
