// store-independent: renders the admin proposal page from a ProposalView; opens no store
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AdminPageDraft, ProposalView } from '@custos/kernel';
import { renderAdminDraftPage, renderAdminLoginPage, renderAdminProposalPage, renderAdminProposeForm } from './renderAdminPage.js';

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

describe('proposing on the admin page', () => {
  const draft: AdminPageDraft = {
    id: 'fe'.repeat(16),
    kind: 'deployment.settings',
    payload: { policyDefaults: { note: `ok${ESC}[2J\u202eevil` } },
    payloadText: '{"policyDefaults":{"note":"x"}}',
    payloadHash: 'ab'.repeat(32),
    description: 'settings \u202edesc',
    proposer: `pk:${'cd'.repeat(32)}`,
    expiresAt: 3_600_000,
  };

  it('the draft shows kind, description, hash and the payload in full (invisible characters as code points) before the passkey step, whose form posts the draft back', () => {
    const page = renderAdminDraftPage(ctx, { draft, optionsJSON: { challenge: 'x' }, formToken: 'tok' });
    // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for control characters is the point
    assert.doesNotMatch(page, /[\u001b\u202e]/);
    const step = page.indexOf('id="passkey-step"');
    for (const shown of ['ab'.repeat(32), 'id="draft-payload"', '<dd>settings <span class="cp">⟨U+202E⟩</span>desc</dd>', `data-id="${'fe'.repeat(16)}"`])
      assert.ok(page.indexOf(shown) >= 0 && page.indexOf(shown) < step, `${shown} before the passkey step`);
    assert.match(page, /⟨U\+202E⟩<\/span>evil/);
    assert.match(page, /<form method="post" id="passkey-form" action="\/admin\/propose">/);
    for (const [name, value] of [
      ['csrf', 'tok'],
      ['id', 'fe'.repeat(16)],
      ['kind', 'deployment.settings'],
      ['payload', '{&quot;policyDefaults&quot;:{&quot;note&quot;:&quot;x&quot;}}'],
      ['payloadHash', 'ab'.repeat(32)],
      ['expiresAt', '3600000'],
    ])
      assert.ok(page.includes(`<input type="hidden" name="${name}" value="${value}">`), name);
    assert.match(page, /data-mode="answer"/);
  });

  it('the form lists the kinds and keeps the text typed, escaped', () => {
    const page = renderAdminProposeForm(ctx, {
      adminId: `pk:${'cd'.repeat(32)}`,
      kinds: ['deployment.settings', 'quorum.set'],
      formToken: 'tok',
      kind: 'quorum.set',
      payload: '</textarea><script>alert(1)</script>',
      refusal: { text: 'bad', code: 'invalid_input' },
    });
    assert.match(page, /<option value="quorum\.set" selected>quorum\.set<\/option>/);
    assert.match(page, /<option value="deployment\.settings">/);
    assert.match(page, /&lt;\/textarea&gt;&lt;script&gt;/);
    assert.doesNotMatch(page, /<script/);
    assert.match(page, /data-code="invalid_input"/);
    assert.match(page, /<form method="post" action="\/admin\/propose\/review" id="propose-form">/);
  });

  it('the sign-in page offers typing an admin id (a GET form: it only names that admin’s credential)', () => {
    const page = renderAdminLoginPage(ctx, { optionsJSON: { challenge: 'x', allowCredentials: [] }, issuedAt: 1, nonce: 'n', formToken: 'tok' });
    assert.match(page, /<form method="get" action="\/admin\/" id="admin-id-form">/);
  });
});
