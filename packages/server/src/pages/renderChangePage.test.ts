import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChangePage } from '@custos/kernel';
import { renderChangePage } from './changePageRoutes.js';
import type { PageContext } from './renderDocument.js';

// The change page's policy difference (changePageRoutes.ts policyDiffSection): every value escaped by
// html.ts, every list entry shown. The kernel only ever puts validated values there (addresses,
// integers, fixed words); this attacks the renderer alone, with text that would be markup.

const CTX: PageContext = { brandName: 'Custos', lang: 'en', nonce: 'bm9uY2Vub25jZW5vbmNlMQ==' };
const EVIL = '<script>alert(1)</script>';

function page(over: Partial<ChangePage>): ChangePage {
  return {
    id: '0'.repeat(32),
    walletName: 'w',
    kind: 'policy.loosen',
    description: 'Loosen the wallet’s policy (limits or allowed destinations)',
    state: 'requested',
    createdAt: 0,
    expiresAt: 1,
    effectiveAt: null,
    decidedAt: null,
    action: 'confirm',
    consent: { required: 'present', kinds: ['totp'] },
    ownerCapability: 'O'.repeat(43),
    ...over,
  };
}

describe('the change page: the policy difference', () => {
  it('escapes every value (label, old, new, list entries) and shows every entry of a long list', () => {
    const added = Array.from({ length: 300 }, (_, i) => `${EVIL}${i}`);
    const body = renderChangePage(CTX, {
      page: page({ policyDiff: [{ field: `f${EVIL}`, label: EVIL, from: EVIL, to: EVIL, added, removed: [EVIL], looser: true }] }),
      formToken: 'a'.repeat(64),
    });
    assert.equal(body.includes('<script>alert'), false, 'no markup from the values');
    assert.ok(body.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    for (let i = 0; i < 300; i += 1) assert.ok(body.includes(`&lt;script&gt;alert(1)&lt;/script&gt;${i}</code>`), `entry ${i}`);
    assert.match(body, /300 added, 1 removed/);
  });

  it('says "waiting for admin approval" only while the quorum has not approved', () => {
    const waiting = renderChangePage(CTX, { page: page({ state: 'pending', action: 'cancel', adminApproval: 'waiting' }), formToken: 'a'.repeat(64) });
    assert.match(waiting, /data-admin-approval="waiting">It is waiting for admin approval/);
    const approved = renderChangePage(CTX, { page: page({ state: 'pending', action: 'cancel', adminApproval: 'approved' }), formToken: 'a'.repeat(64) });
    assert.match(approved, /data-admin-approval="approved"/);
    assert.equal(/waiting for admin approval/.test(approved), false);
    const none = renderChangePage(CTX, { page: page({}), formToken: 'a'.repeat(64) });
    assert.equal(/admin-approval/.test(none), false);
  });

  it('links every state of the page to the wallet’s owner page ("not me": its open changes, its activity, the freeze)', () => {
    for (const over of [{}, { state: 'pending' as const, action: 'cancel' as const }, { state: 'applied' as const, action: null }]) {
      const body = renderChangePage(CTX, { page: page(over), formToken: 'a'.repeat(64) });
      assert.match(body, /<p class="aside" id="not-me">Not you\? <a href="\.\.\/owner\/O{43}">/, JSON.stringify(over));
    }
  });
});
