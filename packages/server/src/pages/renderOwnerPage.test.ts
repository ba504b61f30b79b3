// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OwnerPage, OwnerPageChange } from '@custos/kernel';
import { ownerPageScripts, renderOwnerPage } from './renderOwnerPage.js';

// The owner page's open changes (issue 13 audit A): every cancel form names its change and posts
// `decision=cancel-change`; the one passkey step goes to the change asked for; values are escaped.

const CTX = { brandName: 'Custos', lang: 'en', nonce: 'bm9uY2Vub25jZW5vbmNlMQ==' };
const TOKEN = 'f'.repeat(64);
const EVIL = '<script>alert(1)</script>';

function change(id: string, over: Partial<OwnerPageChange> = {}): OwnerPageChange {
  return {
    id,
    walletName: 'w',
    kind: '2fa.disable',
    description: 'Turn off two-factor protection',
    state: 'pending',
    createdAt: 0,
    expiresAt: 0,
    effectiveAt: 172_800_000,
    decidedAt: null,
    cancel: { kinds: ['totp', 'passkey', 'hwkey'], passkey: { challenge: `c-${id}` }, card: { digest: 'ab'.repeat(32), subpath: '0/1' } },
    ...over,
  };
}

function pageWith(changes: OwnerPageChange[], frozenAt: number | null = null): OwnerPage {
  return { walletName: 'w', frozenAt, factors: ['totp', 'passkey', 'hwkey'], activity: [], changes, unreadableChanges: 0 };
}

/** The forms of the page that post `decision=cancel-change`, with their hidden `change` and `kind`. */
function cancelForms(body: string): { change: string | undefined; kind: string | undefined }[] {
  return [...body.matchAll(/<form method="post"[^>]*>([\s\S]*?)<\/form>/g)]
    .map((m) => m[1] ?? '')
    .filter((f) => f.includes('name="decision" value="cancel-change"'))
    .map((f) => ({ change: /name="change" value="([^"]*)"/.exec(f)?.[1], kind: /name="kind" value="([^"]*)"/.exec(f)?.[1] }));
}

describe('owner page rendering: the open changes', () => {
  it('no open change: no section, no cancel form', () => {
    const body = renderOwnerPage(CTX, { page: pageWith([]), formToken: TOKEN });
    assert.equal(body.includes('open-changes'), false);
    assert.deepEqual(cancelForms(body), []);
  });

  it('every cancel form (code, card, passkey, recovery code) names its change; one passkey step, on the change asked for', () => {
    const a = 'a'.repeat(32);
    const b = 'b'.repeat(32);
    const body = renderOwnerPage(CTX, { page: pageWith([change(a), change(b)]), formToken: TOKEN, passkeyChange: b });
    const forms = cancelForms(body);
    for (const id of [a, b]) {
      const kinds = forms.filter((f) => f.change === id).map((f) => f.kind);
      assert.deepEqual(kinds.sort(), (id === b ? ['hwkey', 'passkey', 'recovery', 'totp'] : ['hwkey', 'recovery', 'totp']).sort(), id);
    }
    assert.equal(body.match(/id="passkey-step"/g)?.length, 1);
    assert.match(body, new RegExp(`data-change-id="${b}"[\\s\\S]*id="passkey-step"`));
    assert.match(body, new RegExp(`<a class="passkey-link" href="\\?change=${a}">`), 'the other change links to its passkey step');
    assert.equal(ownerPageScripts(pageWith([change(a), change(b)]), b), true);
    // Frozen with a passkey: the page's one passkey step is the unfreeze's.
    const frozen = renderOwnerPage(CTX, { page: pageWith([change(a)], 1), formToken: TOKEN });
    assert.equal(frozen.match(/id="passkey-step"/g)?.length, 1);
    assert.match(frozen, /id="passkey-step" class="passkey" data-mode="approve"/);
  });

  it('escapes what a change shows; a policy loosening field by field; waiting for admin approval', () => {
    const id = 'c'.repeat(32);
    const body = renderOwnerPage(CTX, {
      page: pageWith([
        change(id, {
          kind: 'policy.loosen',
          description: EVIL,
          adminApproval: 'waiting',
          policyDiff: [{ field: 'destinations', label: EVIL, from: EVIL, to: EVIL, added: [EVIL], removed: [], looser: true }],
        }),
      ]),
      formToken: TOKEN,
    });
    assert.equal(body.includes('<script>alert'), false);
    assert.match(body, /id="policy-diff"/);
    assert.match(body, /data-admin-approval="waiting"/);
  });
});
