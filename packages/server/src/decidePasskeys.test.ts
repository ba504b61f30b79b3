// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CustosError } from '@custos/kernel';
import { decidePasskeys, type PasskeyDecision } from './decidePasskeys.js';

const url = (text: string) => new URL(text);

function refusal(decision: PasskeyDecision): CustosError {
  assert.equal(decision.kind, 'refused', JSON.stringify(decision));
  return (decision as { error: CustosError }).error;
}

describe('decidePasskeys: the passkey settings from the public URL and the stored rpIDs', () => {
  it('a host name: rpID exactly the host (no port, no parent domain), origin exactly the origin, rpName the brand', () => {
    assert.deepEqual(decidePasskeys(url('https://custos.example.com'), [], 'Acme'), {
      kind: 'on',
      settings: { rpId: 'custos.example.com', origin: 'https://custos.example.com', rpName: 'Acme' },
    });
    assert.deepEqual(decidePasskeys(url('https://Pay.Custos.Example:8443/'), ['pay.custos.example'], 'Custos'), {
      kind: 'on',
      settings: { rpId: 'pay.custos.example', origin: 'https://pay.custos.example:8443', rpName: 'Custos' },
    });
    // the default public URL: localhost over plain http is a secure context, no warning
    assert.deepEqual(decidePasskeys(url('http://localhost:8420'), ['localhost', 'localhost'], 'Custos'), {
      kind: 'on',
      settings: { rpId: 'localhost', origin: 'http://localhost:8420', rpName: 'Custos' },
    });
    assert.deepEqual(decidePasskeys(url('http://wallet.localhost:8420'), [], 'Custos'), {
      kind: 'on',
      settings: { rpId: 'wallet.localhost', origin: 'http://wallet.localhost:8420', rpName: 'Custos' },
    });
  });

  it('plain http on another host: on, with a warning that passkeys need https', () => {
    const decision = decidePasskeys(url('http://custos.internal:8420'), [], 'Custos');
    assert.equal(decision.kind, 'on');
    assert.deepEqual((decision as { settings: unknown }).settings, { rpId: 'custos.internal', origin: 'http://custos.internal:8420', rpName: 'Custos' });
    assert.match((decision as { warning?: string }).warning ?? '', /^passkeys need https: .*secure context.*http:\/\/custos\.internal:8420/);
  });

  it('an IP address (v4 or v6): off, with the reason and what to do', () => {
    for (const text of ['http://127.0.0.1:8420', 'https://203.0.113.7', 'http://[::1]:8420', 'https://[2001:db8::1]:8443']) {
      const decision = decidePasskeys(url(text), [], 'Custos');
      assert.equal(decision.kind, 'off', text);
      const { message } = decision as { message: string };
      assert.match(
        message,
        /^passkeys are off: the public URL .* is an IP address, and browsers refuse passkeys \(WebAuthn\) on IP addresses; use a host name such as localhost/,
      );
      assert.ok(message.includes(url(text).origin), message);
    }
  });

  it('an IP address while the store holds passkeys: the start is refused, naming both', () => {
    const error = refusal(decidePasskeys(url('http://127.0.0.1:8420'), ['localhost'], 'Custos'));
    assert.equal(error.code, 'passkey_rp_id_changed');
    assert.match(
      error.message,
      /^refusing to start: --public-url http:\/\/127\.0\.0\.1:8420 is an IP address, but the store holds passkeys registered for localhost: .*stop working/,
    );
    assert.deepEqual(error.details, { field: 'public-url', storedRpIds: ['localhost'] });
    assert.equal(refusal(decidePasskeys(url('http://[::1]:8420'), ['localhost'], 'Custos')).code, 'passkey_rp_id_changed');
  });

  it('another host than the stored passkeys’: refused, naming both and saying they would stop working', () => {
    const error = refusal(decidePasskeys(url('https://new.example.com'), ['old.example.com'], 'Custos'));
    assert.equal(error.code, 'passkey_rp_id_changed');
    assert.match(
      error.message,
      /^refusing to start: the store holds passkeys registered for old\.example\.com, but --public-url https:\/\/new\.example\.com has the host new\.example\.com: those passkeys would stop working \(browsers bind a passkey to the host it was registered on\)/,
    );
    // a parent or a sub domain is another host too (no parent-domain rpID)
    assert.equal(refusal(decidePasskeys(url('https://example.com'), ['pay.example.com'], 'Custos')).code, 'passkey_rp_id_changed');
    assert.equal(refusal(decidePasskeys(url('https://pay.example.com'), ['example.com'], 'Custos')).code, 'passkey_rp_id_changed');
    // one foreign rpID among matching ones is enough, and is the one named
    const mixed = refusal(decidePasskeys(url('https://pay.example.com'), ['pay.example.com', 'old.example.com'], 'Custos'));
    assert.match(mixed.message, /registered for old\.example\.com, but/);
    assert.deepEqual(mixed.details.storedRpIds, ['old.example.com', 'pay.example.com']);
    // the port is not part of the rpID: moving the port keeps the passkeys
    assert.equal(decidePasskeys(url('http://localhost:9999'), ['localhost'], 'Custos').kind, 'on');
  });

  it('a public URL not known before the port is bound (port 0, no --public-url): off, or refused with stored passkeys', () => {
    const off = decidePasskeys(undefined, [], 'Custos');
    assert.equal(off.kind, 'off');
    assert.match((off as { message: string }).message, /^passkeys are off: .*port 0.*give --public-url$/);
    assert.equal(refusal(decidePasskeys(undefined, ['localhost'], 'Custos')).code, 'passkey_rp_id_changed');
  });
});
