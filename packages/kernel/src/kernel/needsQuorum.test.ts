// store-independent: a pure decision over factor records, no store
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EnrolledFactor } from '../consent/consent.js';
import { oobFactor } from '../consent/oobFactor.js';
import { totpFactor } from '../consent/totpFactor.js';
import { needsQuorum } from './pendingChanges.js';

// Issue 13 point 2: a wallet with no kernel-delivered channel and no `bound` factor needs an admin
// quorum besides its owner for a timelocked change. A delivery factor the backend may read (an
// untrusted webhook) is no such channel (security review finding).

function record(kind: string, state: object, enrolledVia: 'page' | 'api' = 'page') {
  return { kind, id: kind, version: 1, walletName: 'w', secretEnvelope: null, state, createdAt: 0, enrolledVia, mac: null };
}

describe('needsQuorum', () => {
  const totp: EnrolledFactor = { factor: totpFactor({ issuer: 'Custos' }) as never, record: record('totp', {}, 'api') };
  const codeOf = () => '00000000';

  it('TOTP only: needs a quorum', () => {
    assert.equal(needsQuorum([totp]), true);
  });

  it('TOTP and an e-mail channel (bound): no quorum', () => {
    const email: EnrolledFactor = { factor: oobFactor({ codeOf }) as never, record: record('oob', { channel: 'email' }) };
    assert.equal(needsQuorum([totp, email]), false);
  });

  it('TOTP and a webhook channel: no quorum when the webhook is trusted, a quorum when it is not (the backend could drop the notices)', () => {
    const trusted: EnrolledFactor = { factor: oobFactor({ codeOf, webhookTrusted: true }) as never, record: record('oob', { channel: 'webhook' }) };
    const untrusted: EnrolledFactor = { factor: oobFactor({ codeOf, webhookTrusted: false }) as never, record: record('oob', { channel: 'webhook' }) };
    assert.equal(needsQuorum([totp, trusted]), false);
    assert.equal(needsQuorum([totp, untrusted]), true);
  });
});
