import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeChange } from './pendingChanges.js';

/** A change's payload as the kernel stores it: the new factor's record (its address sealed in secretEnvelope). */
function change(kind: string, payload: Record<string, unknown>) {
  return { kind, payload: JSON.stringify(payload) };
}

describe('describeChange: the line the owner and the admins read of a factor change', () => {
  it('names what a factor is, by kind and channel, with the right article (not "Add a oob factor")', () => {
    const mail = { kind: 'oob', id: 'oob', state: { channel: 'email' }, secretEnvelope: 'sealed-address' };
    const hook = { kind: 'oob', id: 'oob', state: { channel: 'webhook' }, secretEnvelope: 'sealed-recipient' };
    assert.equal(describeChange(change('factor.add', { record: mail })), 'Add an e-mail address for signing codes');
    assert.equal(describeChange(change('factor.add', { record: hook })), 'Add a webhook recipient for signing codes');
    assert.equal(describeChange(change('factor.add', { record: { kind: 'totp', id: 'totp', state: {} } })), 'Add an authenticator app (TOTP)');
    assert.equal(describeChange(change('factor.add', { record: { kind: 'hwkey', id: 'hwkey', state: {} } })), 'Add a hardware key (card)');
    assert.equal(describeChange(change('factor.add', { record: { kind: 'passkey', id: 'AbCdEfGhIjKlMnOp', state: {} } })), 'Add a passkey AbCdEfGhIjKl…');
    assert.equal(
      describeChange(change('factor.replace', { remove: { kind: 'totp', id: 'totp' }, record: mail })),
      'Replace the authenticator app (TOTP) by an e-mail address for signing codes',
    );
    assert.equal(describeChange(change('factor.remove', { kind: 'oob', id: 'oob' })), 'Remove the delivery address for signing codes');
  });
});
