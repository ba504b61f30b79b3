// store-independent: pure masking of a delivery address, no store
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { maskAddress, maskedAddressLine } from './changeFactorView.js';

// Issue 13 point 4 / issue 14 point 6 (review finding G4): an approver sees a delivery address masked —
// at most 2 leading characters (never more than half) of the local part or recipient, its length, the
// full e-mail domain — never the address.

describe('maskAddress', () => {
  it('an e-mail address: 2 leading characters, the length before @, the full domain', () => {
    const m = maskAddress({ channel: 'email', address: 'alice.newbox@mail.example.org' });
    assert.deepEqual(m, { channel: 'email', masked: `al${'•'.repeat(10)}@mail.example.org`, length: 12, domain: 'mail.example.org' });
    assert.equal(maskedAddressLine(m), `e-mail al${'•'.repeat(10)}@mail.example.org (12 characters before @)`);
  });

  it('a short local part shows at most half of it (1 character: none)', () => {
    assert.equal(maskAddress({ channel: 'email', address: 'a@x.io' }).masked, '•@x.io');
    assert.equal(maskedAddressLine(maskAddress({ channel: 'email', address: 'a@x.io' })), 'e-mail •@x.io (1 character before @)');
    assert.equal(maskAddress({ channel: 'email', address: 'ab@x.io' }).masked, 'a•@x.io');
    assert.equal(maskAddress({ channel: 'email', address: 'abc@x.io' }).masked, 'a••@x.io');
  });

  it('a long local part: at most 12 mask characters drawn, the length says the rest; the hidden part never appears', () => {
    const local = `zz${'q'.repeat(60)}`;
    const m = maskAddress({ channel: 'email', address: `${local}@example.com` });
    assert.equal(m.masked, `zz${'•'.repeat(12)}@example.com`);
    assert.equal(m.length, 62);
    assert.ok(!maskedAddressLine(m).includes('q'));
  });

  it('an e-mail address without @ (never accepted at enrolment) is masked whole, never shown as a domain', () => {
    const m = maskAddress({ channel: 'email', address: 'secretmailbox.example.org' });
    assert.ok(!m.masked.includes('mailbox') && !m.masked.includes('example'), m.masked);
    assert.equal(m.length, 'secretmailbox.example.org'.length);
    assert.ok(!maskedAddressLine(m).includes('example.org'), maskedAddressLine(m));
  });

  it('a webhook recipient: its first characters and length', () => {
    const m = maskAddress({ channel: 'webhook', address: 'user-8812-secret' });
    assert.deepEqual(m, { channel: 'webhook', masked: `us${'•'.repeat(12)}`, length: 16 });
    assert.equal(maskedAddressLine(m), `webhook recipient us${'•'.repeat(12)} (16 characters)`);
    assert.ok(!maskedAddressLine(m).includes('secret'));
  });
});
