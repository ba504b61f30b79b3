// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EnrollmentLinkState, EnrollmentPage } from '@custos/kernel';
import { manualEntrySecret, renderEnrolledPage, renderEnrollmentPage } from './renderEnrollmentPage.js';

const CTX = { brandName: 'Custos', lang: 'en', nonce: 'bm9uY2Vub25jZW5vbmNlMQ==' };
const TOKEN = 'f'.repeat(64);
const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const URI = `otpauth://totp/Custos:alice?secret=${SECRET}&issuer=Custos&algorithm=SHA1&digits=6&period=30`;
const SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 29 29"><path d="M0 0h7v7H0z"/></svg>';
const T = Date.UTC(2026, 11, 6, 19, 30, 0);

function pageOf(state: EnrollmentLinkState, walletName = 'alice'): EnrollmentPage {
  return { walletName, kind: 'totp', state, expiresAt: T, shown: state === 'pending' ? { otpauthUri: URI, qrSvg: SVG } : null };
}

describe('enrolment page rendering', () => {
  it('manualEntrySecret: the base32 key in groups of four; nothing for a URI without one', () => {
    assert.equal(manualEntrySecret(URI), 'JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP');
    assert.equal(manualEntrySecret('otpauth://totp/x?secret=abcde2345=='), 'ABCD E234 5');
    assert.equal(manualEntrySecret('otpauth://totp/x?issuer=y'), undefined);
    assert.equal(manualEntrySecret('otpauth://totp/x?secret=<b>'), undefined);
    assert.equal(manualEntrySecret('not a uri'), undefined);
  });

  it('pending: the wallet name escaped in the app-text box, the QR code as a data: image, the key, the Activate form', () => {
    const out = renderEnrollmentPage(CTX, { page: pageOf('pending', 'a<img src=x onerror=alert(1)>\u202E'), formToken: TOKEN });
    assert.ok(out.includes('<dd>a&lt;img src=x onerror=alert(1)&gt;<span class="cp">⟨U+202E⟩</span></dd>'));
    assert.ok(!out.includes('<img src=x'));
    assert.ok(out.includes(`<img class="qr" src="data:image/svg+xml;base64,${Buffer.from(SVG).toString('base64')}"`));
    assert.ok(!out.includes('<svg'), 'the SVG is not inlined as markup');
    assert.ok(out.includes('JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP'));
    assert.ok(out.includes(`<input type="hidden" name="csrf" value="${TOKEN}">`));
    assert.match(out, /<label for="code">Code from your authenticator app<\/label>/);
    assert.match(out, /<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code"[^>]* required/);
    assert.match(out, /<button type="submit" class="approve">Activate<\/button>/);
    assert.match(out, /before 2026-12-06 19:30 UTC/);
  });

  it('a refusal is shown above the page', () => {
    const out = renderEnrollmentPage(CTX, { page: pageOf('pending'), formToken: TOKEN, refusal: 'Wrong code. Nothing was enrolled.' });
    assert.match(out, /<p class="state bad" role="alert">Wrong code\. Nothing was enrolled\.<\/p>/);
  });

  const states: Array<[EnrollmentLinkState, RegExp]> = [
    ['completed', /already used: the factor it enrolled is active/],
    ['expired', /This link has expired/],
    ['cancelled', /replaced by a newer one/],
    ['failed', /Too many wrong codes/],
  ];
  for (const [state, text] of states)
    it(`${state}: what happened, no secret, no QR code, no form`, () => {
      // even if a secret were passed for a link that is not pending, it is not shown
      const out = renderEnrollmentPage(CTX, { page: { ...pageOf(state), shown: { otpauthUri: URI, qrSvg: SVG } }, formToken: TOKEN });
      assert.match(out, text);
      assert.ok(!out.includes('JBSW') && !out.includes('class="qr"') && !out.includes('<form') && !out.includes(TOKEN));
      assert.ok(out.includes('<dd>alice</dd>'));
    });

  it('the page after activation: TOTP is active for the wallet', () => {
    const out = renderEnrolledPage(CTX, { ...pageOf('completed', 'bob <x>'), shown: null });
    assert.match(out, /TOTP is active for this wallet/);
    assert.ok(out.includes('<dd>bob &lt;x&gt;</dd>'));
    assert.ok(!out.includes('<form'));
  });
});

describe('enrolment page rendering: passkey', () => {
  const SCRIPTS = ['/assets/webauthn-0123456789abcdef.js', '/assets/passkey-fedcba9876543210.js'];
  const PK_CTX = { ...CTX, passkeyScripts: SCRIPTS };
  const OPTIONS = {
    challenge: 'Y2hhbGxlbmdlY2hhbGxlbmdlY2hhbGxlbmdlMTIzNDU',
    rp: { name: 'Custos', id: 'localhost' },
    user: { id: 'dXNlcg', name: 'alice "<b>&\'', displayName: '' },
    pubKeyCredParams: [{ alg: -7, type: 'public-key' }],
    authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
  };
  function passkeyPage(state: EnrollmentLinkState, walletName = 'alice'): EnrollmentPage {
    return { walletName, kind: 'passkey', state, expiresAt: T, shown: state === 'pending' ? { optionsJSON: OPTIONS } : null };
  }
  const scriptTags = (out: string) => [...out.matchAll(/<script\b[^>]*>/gi)].map((m) => m[0]);
  const decodeAttribute = (s: string) =>
    s.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');

  it('pending: the Create-a-passkey step with its ids, the options in data-options (escaped), the form, the scripts with the nonce', () => {
    const out = renderEnrollmentPage(PK_CTX, { page: passkeyPage('pending', 'a<b>'), formToken: TOKEN });
    assert.match(out, /<h1>Create a passkey<\/h1>/);
    assert.match(out, /<button type="button" id="passkey-create" class="approve" disabled>Create a passkey<\/button>/);
    assert.match(out, /<p id="passkey-status" class="status" role="status" aria-live="polite"><\/p>/);
    const step = /<section id="passkey-step" class="passkey" data-mode="create" data-state="loading" data-options="([^"]*)"/.exec(out);
    assert.ok(step?.[1] !== undefined, 'the step');
    assert.ok(!step[1].includes('<'), 'the options are escaped in the attribute');
    assert.deepEqual(JSON.parse(decodeAttribute(step[1])), OPTIONS);
    assert.ok(out.includes(`<input type="hidden" name="csrf" value="${TOKEN}">`));
    assert.ok(out.includes('<input type="hidden" name="proof" value="">'));
    assert.ok(!out.includes('name="code"') && !out.includes('class="qr"'));
    assert.deepEqual(
      scriptTags(out),
      SCRIPTS.map((src) => `<script nonce="${CTX.nonce}" src="${src}" defer>`),
    );
    assert.ok(!/<script[^>]*>[^<]/.test(out), 'no inline script body');
    assert.match(out, /<noscript><p class="state bad">Creating a passkey needs JavaScript[^<]*authenticator app works without JavaScript/);
    assert.ok(out.includes('<dd>a&lt;b&gt;</dd>'), 'the wallet name in the app-text box');
  });

  for (const state of ['completed', 'expired', 'cancelled', 'failed'] as const)
    it(`passkey link ${state}: what happened, no step, no script`, () => {
      const out = renderEnrollmentPage(PK_CTX, { page: { ...passkeyPage(state), shown: { optionsJSON: OPTIONS } }, formToken: TOKEN });
      assert.deepEqual(scriptTags(out), []);
      assert.ok(!out.includes('passkey-create') && !out.includes('<form') && !out.includes(TOKEN));
    });

  it('a TOTP link loads no script', () => {
    assert.deepEqual(scriptTags(renderEnrollmentPage(PK_CTX, { page: pageOf('pending'), formToken: TOKEN })), []);
  });

  it('a refusal carries the kernel’s code; the page after activation says the passkey is active', () => {
    const out = renderEnrollmentPage(PK_CTX, { page: passkeyPage('pending'), formToken: TOKEN, refusal: 'No.', refusalCode: 'passkey_invalid' });
    assert.match(out, /<p class="state bad" data-code="passkey_invalid" role="alert">No\.<\/p>/);
    const done = renderEnrolledPage(PK_CTX, { ...passkeyPage('completed'), shown: null });
    assert.match(done, /<h1>Passkey active<\/h1>/);
    assert.match(done, /The passkey is active for this wallet/);
    assert.deepEqual(scriptTags(done), []);
  });
});

describe('enrolment page rendering: the consent of the wallet’s passkey', () => {
  const SCRIPTS = ['/assets/webauthn-0123456789abcdef.js', '/assets/passkey-fedcba9876543210.js'];
  const PK_CTX = { ...CTX, passkeyScripts: SCRIPTS };
  const CONSENT = { challenge: 'Y29uc2VudA', allowCredentials: [{ id: 'Y3JlZA', type: 'public-key' }], userVerification: 'required', rpId: 'localhost' };
  const scriptTags = (out: string) => [...out.matchAll(/<script\b[^>]*>/gi)].map((m) => m[0]);
  const decodeAttribute = (s: string) =>
    s.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
  const consentOf = (out: string) => JSON.parse(decodeAttribute(/data-consent="([^"]*)"/.exec(out)?.[1] ?? 'null'));

  it('a TOTP link for a wallet with a passkey: the code form becomes the consent step (code field, consent field, #passkey-confirm), with the scripts', () => {
    const out = renderEnrollmentPage(PK_CTX, { page: { ...pageOf('pending'), consent: { kind: 'passkey', options: CONSENT } }, formToken: TOKEN });
    assert.match(out, /<section id="passkey-step" class="passkey" data-mode="consent" data-state="loading" data-consent="/);
    assert.deepEqual(consentOf(out), CONSENT);
    const form = /<form method="post" id="passkey-form">([\s\S]*?)<\/form>/.exec(out)?.[1] ?? '';
    assert.ok(form.includes(`<input type="hidden" name="csrf" value="${TOKEN}">`));
    assert.ok(form.includes('<input type="hidden" name="consent" value="">'));
    assert.match(form, /<input id="code" name="code" type="text"[^>]* required/);
    assert.match(form, /<button type="button" id="passkey-confirm" class="approve" disabled>Confirm with passkey and activate<\/button>/);
    assert.ok(!out.includes('<button type="submit"'), 'no plain submit that would post without the consent');
    assert.ok(out.includes('class="qr"'), 'the QR code still');
    assert.match(out, /already has a passkey: adding a factor needs its confirmation/);
    assert.deepEqual(
      scriptTags(out),
      SCRIPTS.map((src) => `<script nonce="${CTX.nonce}" src="${src}" defer>`),
    );
    assert.match(out, /<noscript><p class="state bad">Confirming with this wallet’s passkey needs JavaScript/);
  });

  it('a passkey link for a wallet with a passkey: data-consent and a consent field beside proof', () => {
    const page: EnrollmentPage = {
      walletName: 'alice',
      kind: 'passkey',
      state: 'pending',
      expiresAt: T,
      shown: { optionsJSON: { challenge: 'bmV3' } },
      consent: { kind: 'passkey', options: CONSENT },
    };
    const out = renderEnrollmentPage(PK_CTX, { page, formToken: TOKEN });
    assert.match(out, /data-mode="create"/);
    assert.deepEqual(consentOf(out), CONSENT);
    assert.ok(out.includes('<input type="hidden" name="proof" value="">') && out.includes('<input type="hidden" name="consent" value="">'));
    // without consent: neither
    const { consent: _consent, ...withoutConsent } = page;
    const plain = renderEnrollmentPage(PK_CTX, { page: withoutConsent, formToken: TOKEN });
    assert.ok(!plain.includes('data-consent') && !plain.includes('name="consent"'));
  });

  it('a TOTP link without consent: the plain form, no script', () => {
    const out = renderEnrollmentPage(PK_CTX, { page: pageOf('pending'), formToken: TOKEN });
    assert.ok(!out.includes('passkey-step') && !out.includes('name="consent"'));
    assert.match(out, /<button type="submit" class="approve">Activate<\/button>/);
    assert.deepEqual(scriptTags(out), []);
  });
});

describe('enrolment page rendering: the owner page link', () => {
  it('the owner page link (#not-me) stands in the recovery codes box, and on a queued change’s page; never without a capability', () => {
    const owner = 'O'.repeat(43);
    const codes = ['aaaa-bbbb-cccc', 'dddd-eeee-ffff'];
    for (const kind of ['totp', 'passkey', 'oob', 'hwkey'] as const) {
      const out = renderEnrolledPage(CTX, { ...pageOf('completed'), kind, shown: null, recoveryCodes: codes, ownerCapability: owner });
      const box = /<section id="recovery-codes"[\s\S]*?<\/section>/.exec(out)?.[0] ?? '';
      assert.match(box, /<p id="not-me">[^<]*<a href="\.\.\/owner\/O{43}">/, kind);
    }
    const queued = renderEnrolledPage(CTX, { ...pageOf('completed'), kind: 'passkey', shown: null, effectiveAt: T, ownerCapability: owner });
    assert.match(queued, /<p id="not-me">[^<]*<a href="\.\.\/owner\/O{43}">/);
    const none = renderEnrolledPage(CTX, { ...pageOf('completed'), shown: null, recoveryCodes: codes });
    assert.equal(none.includes('not-me'), false);
  });
});
