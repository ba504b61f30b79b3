// store-independent: renders the admin proposal page from a ProposalView; opens no store
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProposalView } from '@custos/kernel';
import { renderAdminProposalPage } from './renderAdminPage.js';

// Issue 13 point 4: the admin page shows a proposal in full, and a payload cannot hide or reorder
// what the admin reads: every control or invisible character is shown as its code point.

const ESC = '\u001b';
const proposal: ProposalView = {
  id: '0123456789abcdef0123456789abcdef',
  kind: 'deployment.settings',
  payload: { policyDefaults: { note: `ok${ESC}[2J\rhidden\u202eevil\u009b\u200b` } },
  payloadHash: 'aa'.repeat(32),
  description: `settings \u202edesc`,
  proposer: 'bb'.repeat(32),
  createdAt: 0,
  expiresAt: 3_600_000,
  state: 'pending',
  decidedAt: null,
  threshold: 2,
  approvals: [{ admin: `pk:${'cd'.repeat(32)}`, createdAt: 1000 }],
  result: null,
};
const ctx = { brandName: 'Custos', lang: 'en', nonce: 'n0nce', passkeyScripts: ['/assets/a.js', '/assets/b.js'] };

describe('the admin proposal page', () => {
  it('shows the payload in full with every control and invisible character as a code point, the approvals, and the approve step', () => {
    const page = renderAdminProposalPage(ctx, { proposal, payloadHash: 'ee'.repeat(32), optionsJSON: { challenge: 'x' }, formToken: 'tok' });
    // no raw control, bidirectional or zero-width character reaches the page
    // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for control characters is the point
    assert.doesNotMatch(page, /[\u001b\u009b\u202e\u200b\r]/);
    const payload = /<pre class="message mono" id="proposal-payload">([\s\S]*?)<\/pre>/.exec(page)?.[1] ?? '';
    // JSON escapes the C0 controls; the rest are shown as code points
    assert.match(payload, /\\u001b\[2J\\rhidden/);
    assert.match(payload, /⟨U\+202E⟩/);
    assert.match(payload, /⟨U\+009B⟩/);
    assert.match(payload, /⟨U\+200B⟩/);
    assert.match(page, /<dd>settings <span class="cp">⟨U\+202E⟩<\/span>desc<\/dd>/);
    assert.match(page, new RegExp(`<li data-admin="pk:${'cd'.repeat(32)}">`));
    assert.match(page, /1 of 2 needed/);
    assert.match(page, /<input type="hidden" name="payloadHash" value="(ee){32}">/);
    assert.match(page, /<input type="hidden" name="csrf" value="tok">/);
    assert.match(page, /data-mode="answer"/);
    assert.match(page, /<script nonce="n0nce" src="\/assets\/a.js" defer>/);
  });

  it('a decided proposal offers no approve step and loads no script', () => {
    const page = renderAdminProposalPage(ctx, {
      proposal: { ...proposal, state: 'applied' },
      payloadHash: 'ee'.repeat(32),
      optionsJSON: undefined,
      formToken: '',
    });
    assert.doesNotMatch(page, /passkey-step/);
    assert.doesNotMatch(page, /<script/);
    assert.match(page, /This proposal is applied: nothing to approve\./);
  });
});
