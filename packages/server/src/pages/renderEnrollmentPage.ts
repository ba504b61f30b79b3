import type { EnrollmentLinkState, EnrollmentPage, OobShown } from '@custos/kernel';
import { type Html, html, showText } from './html.js';
import { APP_TEXT_LABEL, formatTime, refusalAlert } from './renderApprovalPage.js';
import { type PageContext, renderDocument } from './renderDocument.js';

/** What the TOTP factor shows on the page: the otpauth URI and its QR code (kernel totpFactor). */
interface TotpShown {
  otpauthUri: string;
  qrSvg: string;
}

function totpShown(shown: unknown): TotpShown | undefined {
  if (typeof shown !== 'object' || shown === null) return undefined;
  const { otpauthUri, qrSvg } = shown as Record<string, unknown>;
  return typeof otpauthUri === 'string' && typeof qrSvg === 'string' ? { otpauthUri, qrSvg } : undefined;
}

/** What the passkey factor shows on the page: the registration options (kernel passkeyFactor, for startRegistration). */
function passkeyShown(shown: unknown): { optionsJSON: object } | undefined {
  if (typeof shown !== 'object' || shown === null) return undefined;
  const { optionsJSON } = shown as Record<string, unknown>;
  return typeof optionsJSON === 'object' && optionsJSON !== null ? { optionsJSON } : undefined;
}

/** The consent the wallet's passkey must give to the new factor (a wallet that has a passkey), when the page asks for it. */
function passkeyConsent(page: EnrollmentPage): { options: object } | undefined {
  const consent = page.consent;
  return consent?.kind === 'passkey' && typeof consent.options === 'object' && consent.options !== null ? { options: consent.options } : undefined;
}

/**
 * Whether the page offers a passkey step — a pending passkey link, or a pending link whose new
 * factor needs the consent of the wallet's passkey: it then loads the passkey scripts.
 */
export function offersPasskeyEnrollment(page: EnrollmentPage): boolean {
  if (page.state !== 'pending') return false;
  if (page.kind === 'passkey') return passkeyShown(page.shown) !== undefined;
  if (page.kind === 'hwkey') return hwkeyDigest(page.shown) !== undefined && passkeyConsent(page) !== undefined;
  if (page.kind === 'oob') return (oobShown(page.shown)?.sent ?? null) !== null && passkeyConsent(page) !== undefined;
  return totpShown(page.shown) !== undefined && passkeyConsent(page) !== undefined;
}

/** The consent options in the step's `data-consent` (only when the wallet has a passkey). */
function consentAttribute(page: EnrollmentPage): Html | '' {
  const consent = passkeyConsent(page);
  return consent === undefined ? '' : html` data-consent="${JSON.stringify(consent.options)}"`;
}

/** The paragraph that says the wallet's passkey must confirm the new factor. */
const CONSENT_TEXT =
  'This wallet already has a passkey: adding a factor needs its confirmation. Your browser asks for that passkey first (with your PIN, fingerprint or face).';

/** The base32 secret of an otpauth URI, in groups of four for reading and typing (`ABCD EFGH …`); undefined when it has none. */
export function manualEntrySecret(otpauthUri: string): string | undefined {
  let secret: string | null;
  try {
    secret = new URL(otpauthUri).searchParams.get('secret');
  } catch {
    return undefined;
  }
  if (secret === null || !/^[A-Z2-7]+=*$/i.test(secret)) return undefined;
  return (
    secret
      .replace(/=+$/, '')
      .toUpperCase()
      .match(/.{1,4}/g) ?? []
  ).join(' ');
}

/** What a link that is no longer pending means, in plain words. */
export function enrollmentStateText(state: Exclude<EnrollmentLinkState, 'pending'>): string {
  const texts: Record<Exclude<EnrollmentLinkState, 'pending'>, string> = {
    completed: 'This link was already used: the factor it enrolled is active. The link cannot be used again.',
    expired: 'This link has expired. Ask the app for a new one.',
    cancelled: 'This link was replaced by a newer one. Use the newest link the app gave you, or ask for a new one.',
    failed: 'Too many wrong codes were typed on this link: it can no longer be used. Ask the app for a new one.',
  };
  return texts[state];
}

function walletBox(walletName: string): Html {
  return html`<section class="apptext" aria-labelledby="apptext-title">
<h2 id="apptext-title">${APP_TEXT_LABEL}</h2>
<dl><dt>Wallet name</dt><dd>${showText(walletName)}</dd></dl>
</section>`;
}

export interface EnrollmentPageInput {
  page: EnrollmentPage;
  /** The CSRF token of this page's form in this browser (kernel.pageFormToken). */
  formToken: string;
  /** Why the last code posted was refused, shown above everything. */
  refusal?: string;
  /** The kernel's code for that refusal (`data-code` on the alert). */
  refusalCode?: string;
}

/**
 * The enrolment page: while pending, the new TOTP secret as a QR code (an image from the kernel's
 * SVG, as a data: URL the page's CSP allows) and as text for manual entry, and the Activate form;
 * otherwise only what happened to the link — never the secret. The wallet name from the app is in
 * the app-text box. A pure function of its input.
 */
export function renderEnrollmentPage(ctx: PageContext, { page, formToken, refusal, refusalCode }: EnrollmentPageInput): string {
  const alert = refusalAlert(refusal, refusalCode);
  if (page.kind === 'passkey') return renderPasskeyEnrollment(ctx, page, formToken, alert);
  if (page.kind === 'hwkey') return renderHwkeyEnrollment(ctx, page, formToken, alert);
  if (page.kind === 'oob') return renderOobEnrollment(ctx, page, formToken, alert);
  const shown = page.state === 'pending' ? totpShown(page.shown) : undefined;
  if (page.state !== 'pending' || shown === undefined)
    return renderDocument(
      ctx,
      'Enrolment link',
      html`${alert}
<h1>Set up your authenticator app</h1>
<p class="state bad" role="status">${page.state === 'pending' ? 'This link cannot be shown now. Ask the app for a new one.' : enrollmentStateText(page.state)}</p>
${walletBox(page.walletName)}`,
    );
  const secret = manualEntrySecret(shown.otpauthUri);
  const qr = `data:image/svg+xml;base64,${Buffer.from(shown.qrSvg, 'utf8').toString('base64')}`;
  const consent = passkeyConsent(page) !== undefined;
  return renderDocument(
    ctx,
    'Set up your authenticator app',
    html`${alert}
<h1>Set up your authenticator app</h1>
<p>${
      consent
        ? 'This adds an authenticator app to your wallet, beside its passkey (signing still needs the passkey’s approval on this signer’s page). Only you should see this page.'
        : 'This adds a second factor to your wallet: from now on, signing needs a code from your authenticator app. Only you should see this page.'
    }</p>
${delayNote(page)}
${walletBox(page.walletName)}
<h2>1. Scan this code with your authenticator app</h2>
<p><img class="qr" src="${qr}" width="240" height="240" alt="QR code of the new authenticator secret (the same secret is written below)"></p>
<p>Or type this key into the app by hand (time-based, 6 digits, 30 seconds):</p>
<p class="mono secret" aria-label="Secret key">${secret ?? 'unavailable: scan the QR code'}</p>
<h2>2. Type the code the app now shows</h2>
${currentAddressStep(page, formToken)}
${
  consent
    ? html`<section id="passkey-step" class="passkey" data-mode="consent" data-state="loading"${consentAttribute(page)} aria-label="Confirm with this wallet’s passkey">
<p>${CONSENT_TEXT}</p>
<form method="post" id="passkey-form">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="consent" value="">
${codeField(page.expiresAt, page.consent !== undefined)}
<button type="button" id="passkey-confirm" class="approve" disabled>Confirm with passkey and activate</button>
<p id="passkey-status" class="status" role="status" aria-live="polite"></p>
</form>
<noscript><p class="state bad">Confirming with this wallet’s passkey needs JavaScript, which is off in this browser. Turn it on for this page, or open the link in another browser.</p></noscript>
</section>`
    : html`<form method="post">
<input type="hidden" name="csrf" value="${formToken}">
${codeField(page.expiresAt, page.consent !== undefined)}
${totpConsentField(page)}
<button type="submit" class="approve">Activate</button>
</form>`
}`,
    { scripts: consent },
  );
}

/** The current address's code is asked for by its own form (`#oob-current`, decision `change-code`), beside the page's form. */
function currentAddressStep(page: EnrollmentPage, formToken: string): Html | '' {
  if (page.consent?.kind !== 'oob' || page.kind === 'oob') return '';
  return html`<section id="oob-change" aria-label="Allow the new factor from your current address">
<p>This wallet receives signing codes at an address. Adding a factor needs a code sent to that address: ask for it here, and type it below.</p>
<form method="post" id="oob-current">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="change-code">
<button type="submit">Send a code to my current address</button>
</form>
</section>`;
}

/**
 * A wallet that has a factor: the new one is a timelocked change (issue 13), so the page says it
 * does not take effect at once (`#pending-note`); the page after the post says when it does.
 */
function delayNote(page: EnrollmentPage): Html | '' {
  if (page.consent === undefined) return '';
  return html`<p id="pending-note" class="state">This wallet already has a factor, so this one is not active at once: once you confirm, it takes effect only after this signer’s delay (the next page says at what time), announced to you and cancellable until then. Until it takes effect the wallet is protected as before.</p>`;
}

/**
 * A TOTP-only wallet (page.consent kind `totp`): a code from its current authenticator app confirms
 * the new factor (`currentCode`), typed here on the signer's page.
 */
function totpConsentField(page: EnrollmentPage): Html | '' {
  // A wallet whose consent is a code sent to its current address (a new factor, not a new address: the oob page has its own).
  if (page.consent?.kind === 'oob' && page.kind !== 'oob')
    return html`<label for="currentCode">Code sent to your current address for signing codes (it confirms adding this factor)</label>
<input id="currentCode" name="currentCode" type="text" inputmode="numeric" autocomplete="off" pattern="[0-9]{8}" minlength="8" maxlength="8" required>`;
  if (page.consent?.kind !== 'totp') return '';
  return html`<label for="currentCode">Code from the authenticator app this wallet already uses (it confirms adding this factor)</label>
<input id="currentCode" name="currentCode" type="text" inputmode="numeric" autocomplete="off" pattern="[0-9]{6}" minlength="6" maxlength="6" required>`;
}

function codeField(expiresAt: number, pending = false): Html {
  return html`<label for="code">Code from your authenticator app</label>
<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" minlength="6" maxlength="6" required aria-describedby="code-help">
<p id="code-help" class="aside">6 digits. ${pending ? 'Once this code is accepted, the factor takes effect after the delay (the next page says when).' : 'The factor is active only once this code is accepted.'} Use this link before ${formatTime(expiresAt)}.</p>`;
}

/**
 * The passkey enrolment page: while pending, the "Create a passkey" step (it needs JavaScript: the
 * browser's passkey API has no form); otherwise only what happened to the link.
 *
 * For scripts and browser tests: `#passkey-step` (`data-mode="create"`, the registration options
 * in `data-options`), whose `data-state` is `loading` as served, then, set by assets/passkey.js:
 * `ready`, `working`, `submitting`, `error` or `unsupported`; `#passkey-create`, the button
 * (disabled until the script is ready); `#passkey-status`, the live region; `#passkey-form`, the
 * form the script posts (`csrf`, `proof`). A refusal after a post is `p[role=alert]` with `data-code`.
 *
 * When the wallet already has a passkey (page.consent), that passkey confirms the new factor: the
 * step also has `data-consent` (the request options) and the form a `consent` field; the script
 * asks for the wallet's passkey first, then creates the new one. On a TOTP link the same holds for
 * the code form: `#passkey-step` with `data-mode="consent"`, the code field, and the button
 * `#passkey-confirm` instead of a plain submit.
 */
function renderPasskeyEnrollment(ctx: PageContext, page: EnrollmentPage, formToken: string, alert: Html | ''): string {
  const shown = page.state === 'pending' ? passkeyShown(page.shown) : undefined;
  if (page.state !== 'pending' || shown === undefined)
    return renderDocument(
      ctx,
      'Enrolment link',
      html`${alert}
<h1>Create a passkey</h1>
<p class="state bad" role="status">${page.state === 'pending' ? 'This link cannot be shown now. Ask the app for a new one.' : enrollmentStateText(page.state)}</p>
${walletBox(page.walletName)}`,
    );
  return renderDocument(
    ctx,
    'Create a passkey',
    html`${alert}
<h1>Create a passkey</h1>
<p>This adds a passkey to your wallet: ${page.consent === undefined ? 'from now on' : 'once it takes effect'}, every signature needs your approval on this signer’s page, with this passkey (your device asks for your PIN, fingerprint or face). Only you should see this page.</p>
${delayNote(page)}
${walletBox(page.walletName)}
${currentAddressStep(page, formToken)}
<section id="passkey-step" class="passkey" data-mode="create" data-state="loading" data-options="${JSON.stringify(shown.optionsJSON)}"${consentAttribute(page)} aria-labelledby="passkey-title">
<h2 id="passkey-title">Create the passkey on this device</h2>
${passkeyConsent(page) === undefined ? '' : html`<p>${CONSENT_TEXT}</p>`}
<form method="post" id="passkey-form">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="proof" value="">
${passkeyConsent(page) === undefined ? '' : html`<input type="hidden" name="consent" value="">`}
${totpConsentField(page)}
<p class="aside">Your browser asks where to keep the passkey: this device, a phone or a security key. Use this link before ${formatTime(page.expiresAt)}.</p>
<button type="button" id="passkey-create" class="approve" disabled>Create a passkey</button>
<p id="passkey-status" class="status" role="status" aria-live="polite"></p>
</form>
<noscript><p class="state bad">Creating a passkey needs JavaScript, which is off in this browser. Turn it on for this page, or open the link in another browser. (A link for an authenticator app works without JavaScript.)</p></noscript>
</section>`,
    { scripts: true },
  );
}

/** The enrolment challenge the card signs (hex), when the page shows one. */
function hwkeyDigest(shown: unknown): string | undefined {
  const digest = (shown as { digest?: unknown } | null)?.digest;
  return typeof digest === 'string' && /^[0-9a-f]{64}$/.test(digest) ? digest : undefined;
}

/**
 * The hardware-key enrolment page (no JavaScript): the owner pastes the card's account xpub and a
 * subpath (or a bare public key), signs the challenge shown with the card at that subpath, and
 * pastes the signature; the card is active once the kernel checked it. For tests: `#hwkey-digest`
 * holds the challenge, `#hwkey-form` the fields `xpub`, `subpath`, `publicKey`, `signature`.
 */
function renderHwkeyEnrollment(ctx: PageContext, page: EnrollmentPage, formToken: string, alert: Html | ''): string {
  const digest = page.state === 'pending' ? hwkeyDigest(page.shown) : undefined;
  if (page.state !== 'pending' || digest === undefined)
    return renderDocument(
      ctx,
      'Enrolment link',
      html`${alert}
<h1>Add a hardware key</h1>
<p class="state bad" role="status">${page.state === 'pending' ? 'This link cannot be shown now. Ask the app for a new one.' : enrollmentStateText(page.state)}</p>
${walletBox(page.walletName)}`,
    );
  const consent = passkeyConsent(page) !== undefined;
  return renderDocument(
    ctx,
    'Add a hardware key',
    html`${alert}
<h1>Add a hardware key</h1>
<p>${
      consent
        ? 'This adds a hardware key (a TAPSIGNER-style card) to your wallet, beside its passkey: either then approves a signature on this signer’s page. Only you should see this page.'
        : 'This adds a hardware key (a TAPSIGNER-style card) to your wallet: from now on, every signature needs your approval on this signer’s page, signed by this card. Only you should see this page.'
    }</p>
<p class="state bad">Use a card that holds no funds: its key is a Bitcoin key, and this signer asks it to sign challenges.</p>
${delayNote(page)}
${walletBox(page.walletName)}
${currentAddressStep(page, formToken)}
${
  consent
    ? html`<section id="passkey-step" class="passkey" data-mode="consent" data-state="loading"${consentAttribute(page)} aria-label="Confirm with this wallet’s passkey">
<p>${CONSENT_TEXT}</p>`
    : ''
}
<form method="post" id="${consent ? 'passkey-form' : 'hwkey-form'}">
<input type="hidden" name="csrf" value="${formToken}">
${consent ? html`<input type="hidden" name="consent" value="">` : ''}
<label for="xpub">The card’s account xpub (from its <span class="mono">xpub</span> command)</label>
<input id="xpub" name="xpub" type="text" autocomplete="off" spellcheck="false" maxlength="200">
<label for="subpath">Subpath below the xpub (at most 2 steps, not hardened, e.g. 0/0)</label>
<input id="subpath" name="subpath" type="text" autocomplete="off" spellcheck="false" maxlength="40">
<label for="publicKey">Or, instead of an xpub: the card’s public key (66 hex digits)</label>
<input id="publicKey" name="publicKey" type="text" autocomplete="off" spellcheck="false" maxlength="66">
<p>Sign this challenge with the card, at the subpath above (the card signs the 32 bytes as they are):</p>
<p id="hwkey-digest" class="mono">${digest}</p>
<label for="signature">The card’s signature (64 bytes r‖s, or 65 with a header byte, in hex)</label>
<input id="signature" name="signature" type="text" autocomplete="off" spellcheck="false" maxlength="140" required>
${totpConsentField(page)}
<p class="aside">Use this link before ${formatTime(page.expiresAt)}.</p>
${
  consent
    ? html`<button type="button" id="passkey-confirm" class="approve" disabled>Confirm with passkey and add the card</button>
<p id="passkey-status" class="status" role="status" aria-live="polite"></p>
</form>
<noscript><p class="state bad">Confirming with this wallet’s passkey needs JavaScript, which is off in this browser. Turn it on for this page, or open the link in another browser.</p></noscript>
</section>`
    : html`<button type="submit" class="approve">Check the signature and add the card</button>
</form>`
}`,
    { scripts: consent },
  );
}

const CHANNEL_LABELS: Record<string, string> = { email: 'E-mail address', webhook: 'Your account id with the service’s messaging (push)' };

function oobShown(shown: unknown): OobShown | undefined {
  if (typeof shown !== 'object' || shown === null) return undefined;
  const { channels, sent } = shown as Partial<OobShown>;
  return Array.isArray(channels) ? { channels, sent: sent ?? null } : undefined;
}

/**
 * The delivery-address page: step 1, the address (the channels this signer delivers on); step 2,
 * once a code was sent there, the code typed back. The address is never shown again (it is sealed).
 */
function renderOobEnrollment(ctx: PageContext, page: EnrollmentPage, formToken: string, alert: Html | string): string {
  const shown = page.state === 'pending' ? oobShown(page.shown) : undefined;
  if (page.state !== 'pending' || shown === undefined)
    return renderDocument(
      ctx,
      'Enrolment link',
      html`${alert}
<h1>Receive signing codes</h1>
<p class="state bad" role="status">${page.state === 'pending' ? 'This link cannot be shown now. Ask the app for a new one.' : enrollmentStateText(page.state)}</p>
${walletBox(page.walletName)}`,
    );
  const [first] = shown.channels;
  // A change of address on a wallet without a passkey: a code sent to the CURRENT address consents.
  const change = page.consent?.kind === 'oob';
  // A wallet that has a passkey: the passkey confirms the new (or changed) address, as on the other links.
  const passkey = passkeyConsent(page) !== undefined;
  return renderDocument(
    ctx,
    'Receive signing codes',
    html`${alert}
<h1>${change ? 'Change the address for signing codes' : 'Receive signing codes'}</h1>
<p>This signer will send you each request to sign from this wallet, with a one-time code that approves that request only, on its own page. Only you should see this page.</p>
${delayNote(page)}
${walletBox(page.walletName)}
${
  change
    ? html`<section id="oob-change" aria-label="Allow the change from your current address">
<p>This wallet already receives codes at an address. Changing it needs a code sent to that current address: ask for it here, and type it below with the code sent to the new address.</p>
<form method="post" id="oob-current">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="change-code">
<button type="submit">Send a code to my current address</button>
</form>
</section>`
    : ''
}
<h2>1. Where should the codes go?</h2>
<form method="post" id="oob-address">
<input type="hidden" name="csrf" value="${formToken}">
${
  shown.channels.length > 1
    ? html`<label for="channel">Channel</label>
<select id="channel" name="channel">${shown.channels.map((c) => html`<option value="${c}">${CHANNEL_LABELS[c] ?? c}</option>`)}</select>`
    : html`<input type="hidden" name="channel" value="${first ?? 'email'}">`
}
<label for="address">${shown.channels.length > 1 ? 'Address' : (CHANNEL_LABELS[first ?? 'email'] ?? 'Address')}</label>
<input id="address" name="address" type="text" autocomplete="email" maxlength="254" required>
<button type="submit">${shown.sent === null ? 'Send me a code' : 'Send a new code'}</button>
</form>
${
  shown.sent === null
    ? ''
    : html`<h2>2. Type the code you received</h2>
<p class="state ok" role="status">A code was sent (${CHANNEL_LABELS[shown.sent.channel] ?? shown.sent.channel}). It is valid until ${formatTime(shown.sent.expiresAt)}.</p>
${
  passkey
    ? html`<section id="passkey-step" class="passkey" data-mode="consent" data-state="loading"${consentAttribute(page)} aria-label="Confirm with this wallet’s passkey">
<p>${CONSENT_TEXT}</p>`
    : ''
}
<form method="post" id="${passkey ? 'passkey-form' : 'oob-confirm'}">
<input type="hidden" name="csrf" value="${formToken}">
${passkey ? html`<input type="hidden" name="consent" value="">` : ''}
<label for="code">Code from the message</label>
<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{8}" minlength="8" maxlength="8" required>
${
  change
    ? html`<label for="currentCode">Code sent to your current address</label>
<input id="currentCode" name="currentCode" type="text" inputmode="numeric" autocomplete="off" pattern="[0-9]{8}" minlength="8" maxlength="8" required>`
    : ''
}
${totpConsentField(page)}
<p class="aside">8 digits. The address is used only once this code is accepted${page.consent === undefined ? '' : ' and the change has taken effect'}.</p>
${
  passkey
    ? html`<button type="button" id="passkey-confirm" class="approve" disabled>Confirm with passkey</button>
<p id="passkey-status" class="status" role="status" aria-live="polite"></p>
</form>
<noscript><p class="state bad">Confirming with this wallet’s passkey needs JavaScript, which is off in this browser. Turn it on for this page, or open the link in another browser.</p></noscript>
</section>`
    : html`<button type="submit" class="approve">Confirm</button>
</form>`
}`
}`,
    { scripts: passkey && shown.sent !== null },
  );
}

/** The page after the factor was activated. */
/**
 * The wallet's recovery codes, shown once (only in the answer that enrolled its first factor):
 * `#recovery-codes`, one `li` per code. What they do is said where they are shown (docs/freeze.md).
 */
export function recoveryCodesBox(codes: readonly string[] | undefined, ownerCapability?: string): Html | '' {
  if (codes === undefined || codes.length === 0) return '';
  return html`<section id="recovery-codes" aria-labelledby="recovery-title">
<h2 id="recovery-title">Your recovery codes</h2>
<p><strong>Write these down now and keep them apart from your devices: they are shown only this once.</strong> Each works once. With one of them you can cancel a change to this wallet’s protection that you did not ask for, even when your factor is locked or lost.</p>
<ol class="mono">${codes.map((code) => html`<li>${code}</li>`)}</ol>
${ownerPageLink(ownerCapability)}
</section>`;
}

/**
 * The wallet's owner page (`#not-me`, a capability like the codes: keep it with them): its activity,
 * the changes to its protection waiting to take effect (cancel them there with any factor or a
 * recovery code) and "this was not me" (freeze). Relative to `/enroll/<capability>`.
 */
function ownerPageLink(ownerCapability: string | undefined): Html | '' {
  if (ownerCapability === undefined) return '';
  return html`<p id="not-me">Keep this link with the codes, it is your wallet’s own page: <a href="../owner/${ownerCapability}">see its activity and any change to its protection waiting to take effect — cancel it there, or freeze the wallet if something was not you</a>.</p>`;
}

export function renderEnrolledPage(ctx: PageContext, page: EnrollmentPage): string {
  // Issue 13: on a wallet that has a factor, the new factor or address waits out the timelock's delay.
  if (page.effectiveAt !== undefined)
    return renderDocument(
      ctx,
      'Change requested',
      html`<h1>Change requested</h1>
<p class="state ok" role="status">This wallet already has a factor, so the change takes effect only after a delay: at <time datetime="${new Date(page.effectiveAt).toISOString()}">${new Date(page.effectiveAt).toISOString().replace('.000Z', ' UTC').replace('T', ' ')}</time>. Until then the wallet is protected as before.</p>
${walletBox(page.walletName)}
<p>If you did not ask for this, cancel it with the link the signer sent to your current address, or on your wallet’s own page. You can close this page.</p>
${ownerPageLink(page.ownerCapability)}`,
    );
  if (page.kind === 'oob')
    return renderDocument(
      ctx,
      'Signing codes active',
      html`<h1>Signing codes active</h1>
<p class="state ok" role="status">This address now receives each request to sign from this wallet, with its one-time code: approve it on this signer’s page only.</p>
${walletBox(page.walletName)}
${recoveryCodesBox(page.recoveryCodes, page.ownerCapability)}
<p>You can close this page.</p>`,
    );
  if (page.kind === 'hwkey')
    return renderDocument(
      ctx,
      'Hardware key active',
      html`<h1>Hardware key active</h1>
<p class="state ok" role="status">The hardware key is active for this wallet: signing now needs your approval on this signer’s page, signed by the card.</p>
${walletBox(page.walletName)}
${recoveryCodesBox(page.recoveryCodes, page.ownerCapability)}
<p id="hwkey-browser">Approve with the card <strong>in this browser</strong>: it now remembers the card, and an approval signed by the card in another browser does not count as yours. To approve elsewhere, add the card again there.</p>
<p>Keep the card: without it this wallet cannot sign. You can close this page.</p>`,
    );
  if (page.kind === 'passkey')
    return renderDocument(
      ctx,
      'Passkey active',
      html`<h1>Passkey active</h1>
<p class="state ok" role="status">The passkey is active for this wallet: signing now needs your approval with it, on this signer’s page.</p>
${walletBox(page.walletName)}
${recoveryCodesBox(page.recoveryCodes, page.ownerCapability)}
<p>Keep the device (or the account it syncs passkeys to) that holds the passkey: without it this wallet cannot sign. You can close this page.</p>`,
    );
  return renderDocument(
    ctx,
    'Authenticator active',
    html`<h1>Authenticator active</h1>
<p class="state ok" role="status">TOTP is active for this wallet: signing now needs a code from your authenticator app.</p>
${walletBox(page.walletName)}
${recoveryCodesBox(page.recoveryCodes, page.ownerCapability)}
<p>Keep the authenticator app: without it this wallet cannot sign. You can close this page.</p>`,
  );
}
