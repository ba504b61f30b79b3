import type { ApprovalPage, ApprovalPageFactor, ApprovalState, ApprovalView } from '@custos/kernel';
import { describeOperation } from './describeOperation.js';
import { type Html, html, showText } from './html.js';
import { type PageContext, renderDocument } from './renderDocument.js';
import type { TokenList } from './tokenList.js';

/** The label of the box holding everything the app supplied (wallet name, message, typed data). */
export const APP_TEXT_LABEL = 'Text from the app (not verified by Custos)';

/** `2026-12-06 19:40 UTC`. */
export function formatTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

const FACTOR_KINDS: Record<string, string> = {
  totp: 'Authenticator app (TOTP code)',
  passkey: 'Passkey',
  hwkey: 'Hardware key',
  oob: 'One-time code sent by Custos',
};

/** What a decided (or lapsed) approval's state means, in plain words; `ok` for the tone of the box. */
export function stateText(view: Pick<ApprovalView, 'state' | 'decidedAt' | 'expiresAt'> & { operationType?: string }): { text: string; ok: boolean } {
  const at = view.decidedAt === null ? '' : ` on ${formatTime(view.decidedAt)}`;
  const batch = view.operationType === 'batch';
  const texts: Record<ApprovalState, { text: string; ok: boolean }> = {
    pending: { text: `Waiting for your decision, until ${formatTime(view.expiresAt)}.`, ok: true },
    approved: {
      text: batch
        ? `Approved${at}. The app can now have exactly these operations signed, each once, until ${formatTime(view.expiresAt)}.`
        : `Approved${at}. The app can now have exactly this operation signed, once.`,
      ok: true,
    },
    consumed: {
      text: batch ? `Approved${at}, and every operation of the batch has been signed.` : `Approved${at}, and the operation has been signed.`,
      ok: true,
    },
    rejected: { text: `Rejected${at}. Nothing will be signed with this request.`, ok: false },
    expired: { text: `Expired at ${formatTime(view.expiresAt)} without a decision. Nothing will be signed with this request.`, ok: false },
    cancelled: { text: 'Cancelled by the app. Nothing will be signed with this request.', ok: false },
  };
  return texts[view.state];
}

/** How a factor was enrolled, as the approval page says it (the backend that enrolled one may know its secret). */
export const ENROLLED_VIA: Record<ApprovalPageFactor['enrolledVia'], string> = {
  api: 'added by the app (it may know this factor’s secret)',
  page: 'added on this signer’s enrolment page',
};

function factorItem(factor: ApprovalPageFactor): Html {
  // A hardware key is named by the start of its public key; one the app enrolled counts as `present` only, and says so.
  if (factor.kind === 'hwkey')
    return html`<li data-kind="hwkey" data-strength="${factor.strength}">Hardware key <span class="mono">${factor.id.slice(0, 10)}…</span>, enrolled ${formatTime(factor.createdAt)}, ${factor.enrolledVia === 'api' ? 'enrolled by the app — its signature counts only as “present” (the app may have enrolled a key of its own)' : ENROLLED_VIA.page}</li>`;
  // A passkey is named by the start of its credential id (a wallet may have more than one).
  if (factor.kind === 'passkey')
    return html`<li>Passkey <span class="mono">${factor.id.slice(0, 8)}…</span>, registered ${formatTime(factor.createdAt)}, ${ENROLLED_VIA[factor.enrolledVia]}</li>`;
  const kind = FACTOR_KINDS[factor.kind] ?? `Factor of kind ${factor.kind}`;
  const label = factor.label === '' ? '' : html` “${showText(factor.label)}”`;
  return html`<li>${kind}${label}, enrolled ${formatTime(factor.createdAt)}, ${ENROLLED_VIA[factor.enrolledVia]}</li>`;
}

export interface ApprovalPageInput {
  page: ApprovalPage;
  /** The CSRF token of this page's forms in this browser (kernel.pageFormToken). */
  formToken: string;
  tokens: TokenList;
  /** Why the last decision posted was refused (a wrong code, a lock), shown above everything. */
  refusal?: string;
  /** The kernel's code for that refusal (`data-code` on the alert, for scripts and tests). */
  refusalCode?: string;
  /** A hardware-key challenge just issued for this approval: the digest the card signs, at the subpath. */
  hwkeyChallenge?: { digest: string; subpath: string; expiresAt: number };
}

/** The alert above a page after a refused post. */
export function refusalAlert(refusal: string | undefined, code: string | undefined): Html | '' {
  if (refusal === undefined) return '';
  return code === undefined
    ? html`<p class="state bad" role="alert">${refusal}</p>`
    : html`<p class="state bad" data-code="${code}" role="alert">${refusal}</p>`;
}

/**
 * Whether the page offers the passkey step: pending, fully shown, and the wallet has a passkey.
 * The page then loads the passkey scripts (pageRoutes gives it a CSP that lets them run).
 */
export function offersPasskey(page: ApprovalPage, tokens: TokenList): boolean {
  return page.approval.state === 'pending' && page.factors.some((f) => f.kind === 'passkey') && fullyShown(page, tokens);
}

/**
 * The approval page: what will be signed (large, from the kernel's summary), the warnings, the
 * app's text in a box of its own, the wallet's factors, and — only while pending — the Approve
 * (passkey; TOTP code where `present` suffices) and Reject forms. A pure function of its input.
 *
 * For scripts and browser tests, the passkey step (only when the wallet has a passkey) is:
 * - `#passkey-step` (`data-mode="approve"`), whose `data-state` is `loading` as served, then, set
 *   by assets/passkey.js: `ready`, `working` (the browser's passkey dialog is open), `submitting`,
 *   `error` or `unsupported`;
 * - `#passkey-approve`, the "Approve with passkey" button (disabled until the script is ready);
 * - `#passkey-status`, the live region saying what happens or went wrong;
 * - `#passkey-form`, the form the script posts: `csrf`, `decision=approve`, `kind=passkey`, `proof`.
 * A refusal after a post is `p[role=alert]` with `data-code` (the kernel's error code).
 */
export function renderApprovalPage(ctx: PageContext, { page, formToken, tokens, refusal, refusalCode, hwkeyChallenge }: ApprovalPageInput): string {
  const { approval, factors } = page;
  const op = describeOperation(approval.summary, approval.summaryText, tokens);
  const pending = approval.state === 'pending';
  const state = stateText(approval);
  const appText = [{ label: 'Wallet name', value: showText(approval.walletName) }, ...op.appText];
  const appTextHtml = html`<section class="apptext" aria-labelledby="apptext-title">
<h2 id="apptext-title">${APP_TEXT_LABEL}</h2>
<dl>${appText.map((row) => html`<dt>${row.label}</dt><dd>${row.value}</dd>`)}</dl>
</section>`;
  const warnings = [...op.warnings];
  // showText marks each invisible or reordering character it shows
  if (appTextHtml.toString().includes('class="cp"'))
    warnings.push('The text from the app holds invisible or direction-changing characters, shown as ⟨U+…⟩. They can make text read differently than it is.');
  const hasTotp = factors.some((f) => f.kind === 'totp');
  const hasOob = factors.some((f) => f.kind === 'oob');
  const passkey = offersPasskey(page, tokens);
  // The hardware-key step, when the wallet's card gives the strength this approval needs on this page.
  const hwkey = factors.some((f) => f.kind === 'hwkey' && (approval.requiredStrength === 'present' || f.strength === 'bound'));
  return renderDocument(
    ctx,
    pending ? 'Approve this request?' : 'Signing request',
    html`${refusalAlert(refusal, refusalCode)}
<h1>${op.headline}</h1>
${pending ? '' : html`<p class="state ${state.ok ? 'ok' : 'bad'}" role="status">${state.text}</p>`}
${warnings.length > 0 ? html`<ul class="warnings" aria-label="Warnings">${warnings.map((w) => html`<li>${w}</li>`)}</ul>` : ''}
<dl class="summary">
${op.rows.map((row) => html`<dt>${row.label}</dt><dd>${row.value}</dd>`)}
${approval.keyIndex === null ? '' : html`<dt>Key index</dt><dd>${approval.keyIndex}</dd>`}
${pending ? html`<dt>Decide before</dt><dd>${formatTime(approval.expiresAt)}</dd>` : ''}
</dl>
${appTextHtml}
<h2>This wallet’s second factors</h2>
${factors.length === 0 ? html`<p>None.</p>` : html`<ul class="factors">${factors.map(factorItem)}</ul>`}
${pending ? renderForms(formToken, approval.requiredStrength, { hasTotp, hasOob, passkey, hwkey, hwkeyChallenge, incomplete: op.incomplete === true }) : ''}
${notMeLink(page.ownerCapability)}`,
    { scripts: passkey },
  );
}

/** The "this was not me" link to the wallet owner's page (`#not-me`): its GET shows the wallet's activity, only its form freezes. */
export function notMeLink(ownerCapability: string | undefined): Html | '' {
  if (ownerCapability === undefined) return '';
  return html`<p class="aside" id="not-me">Not you? <a href="../owner/${ownerCapability}">See this wallet’s recent activity, or freeze it</a>.</p>`;
}

/** The passkey step (see renderApprovalPage): the button works only with JavaScript, and says so without. */
function passkeyStep(formToken: string): Html {
  return html`<section id="passkey-step" class="passkey" data-mode="approve" data-state="loading" aria-labelledby="passkey-title">
<h3 id="passkey-title">Approve with your passkey</h3>
<form method="post" id="passkey-form">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="approve">
<input type="hidden" name="kind" value="passkey">
<input type="hidden" name="proof" value="">
<p class="aside">Approve only if everything above is what you asked for. Your device asks for your PIN, fingerprint or face.</p>
<button type="button" id="passkey-approve" class="approve" disabled>Approve with passkey</button>
<p id="passkey-status" class="status" role="status" aria-live="polite"></p>
</form>
<noscript><p class="state bad">Approving with a passkey needs JavaScript, which is off in this browser. Turn it on for this page, or open the link in another browser.</p></noscript>
</section>`;
}

/**
 * The hardware-key step (no JavaScript): a form that asks for a new challenge (`decision=hwkey-challenge`);
 * once issued, the digest (`#hwkey-digest`), the subpath (`#hwkey-subpath`) and `#hwkey-form`
 * (`decision=approve`, `kind=hwkey`, `signature`).
 */
function hwkeyStep(formToken: string, challenge: ApprovalPageInput['hwkeyChallenge']): Html {
  const ask = html`<form method="post" id="hwkey-challenge-form">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="hwkey-challenge">
<button type="submit">${challenge === undefined ? 'Show the challenge for my card' : 'Show a new challenge'}</button>
</form>`;
  if (challenge === undefined)
    return html`<section id="hwkey-step" class="hwkey" aria-labelledby="hwkey-title">
<h3 id="hwkey-title">Approve with your hardware key</h3>
<p class="aside">Approve only if everything above is what you asked for. The page then shows a challenge for the card to sign.</p>
${ask}
</section>`;
  return html`<section id="hwkey-step" class="hwkey" aria-labelledby="hwkey-title">
<h3 id="hwkey-title">Approve with your hardware key</h3>
<p>Sign this challenge with the card${challenge.subpath === '' ? '' : html`, at subpath <span id="hwkey-subpath" class="mono">${challenge.subpath}</span>`} (the card signs the 32 bytes as they are), before ${formatTime(challenge.expiresAt)}:</p>
<p id="hwkey-digest" class="mono">${challenge.digest}</p>
<form method="post" id="hwkey-form">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="approve">
<input type="hidden" name="kind" value="hwkey">
<label for="signature">The card’s signature (hex)</label>
<input id="signature" name="signature" type="text" autocomplete="off" spellcheck="false" maxlength="140" required>
<p class="aside">Approve only if everything above is what you asked for. The challenge works once.</p>
<button type="submit" class="approve">Approve with hardware key</button>
</form>
${ask}
</section>`;
}

function renderForms(
  formToken: string,
  requiredStrength: 'present' | 'bound',
  {
    hasTotp,
    hasOob,
    passkey,
    hwkey = false,
    hwkeyChallenge,
    incomplete,
  }: { hasTotp: boolean; hasOob: boolean; passkey: boolean; hwkey?: boolean; hwkeyChallenge?: ApprovalPageInput['hwkeyChallenge']; incomplete: boolean },
): Html {
  // The code the kernel sent to the owner's address (bound to this request): typed only here.
  const oobForm = hasOob
    ? html`<form method="post" id="oob-form">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="approve">
<input type="hidden" name="kind" value="oob">
<label for="oob-code">Code from the message this signer sent you</label>
<input id="oob-code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{8}" minlength="8" maxlength="8" required aria-describedby="oob-help">
<p id="oob-help" class="aside">8 digits, valid for a few minutes, for this request only. Approve only if everything above is what you asked for; never give this code to anyone.</p>
<button type="submit" class="approve">Approve with the code</button>
</form>
<form method="post" id="oob-resend">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="resend">
<button type="submit" class="secondary">Send a new code</button>
</form>`
    : '';
  // A wallet that requires `bound` is not offered the code form: the kernel would refuse a code
  // (consent_too_weak) before checking it.
  const codeForm =
    requiredStrength === 'present' && hasTotp
      ? html`<form method="post">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="approve">
<label for="code">Code from your authenticator app</label>
<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" minlength="6" maxlength="6" required aria-describedby="code-help">
<p id="code-help" class="aside">6 digits. Approve only if everything above is what you asked for.</p>
<button type="submit" class="approve">${passkey ? 'Approve with code' : 'Approve'}</button>
</form>`
      : '';
  const approve = incomplete
    ? html`<p>This request cannot be approved on this page: part of it could not be shown.</p>`
    : passkey || codeForm !== '' || hwkey || oobForm !== ''
      ? html`${passkey ? passkeyStep(formToken) : ''}${hwkey ? hwkeyStep(formToken, hwkeyChallenge) : ''}${oobForm}${codeForm}`
      : requiredStrength === 'bound'
        ? html`<p>This wallet needs a passkey to approve, and has none this page can use: reject the request, or leave it to expire.</p>`
        : html`<p>This wallet has no factor this page can approve with yet: reject the request, or leave it to expire.</p>`;
  return html`<h2>Your decision</h2>
${approve}
<form method="post">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="reject">
<p>Did not ask for this, or something above is not what you expected? Reject it.</p>
<button type="submit" class="reject">Reject</button>
</form>`;
}

/** Whether the approval page can show all of the operation (else it offers no Approve, and an approve posted anyway is refused). */
export function fullyShown(page: ApprovalPage, tokens: TokenList): boolean {
  return describeOperation(page.approval.summary, page.approval.summaryText, tokens).incomplete !== true;
}

/** The page after a decision was taken: its state, and what was decided on. */
export function renderDecisionPage(ctx: PageContext, approval: ApprovalView, tokens: TokenList): string {
  const op = describeOperation(approval.summary, approval.summaryText, tokens);
  const state = stateText(approval);
  return renderDocument(
    ctx,
    approval.state === 'approved' ? 'Approved' : approval.state === 'rejected' ? 'Rejected' : 'Signing request',
    html`<h1>${approval.state === 'approved' ? 'Approved' : approval.state === 'rejected' ? 'Rejected' : 'Signing request'}</h1>
<p class="state ${state.ok ? 'ok' : 'bad'}" role="status">${state.text}</p>
<p>The request: ${op.headline}.</p>
<p>You can close this page.</p>`,
  );
}

/** A page of a few plain sentences: not found, sealed, refused, a wrong code. */
export function renderNoticePage(ctx: PageContext, notice: { title: string; text: readonly string[]; tone?: 'ok' | 'bad' }): string {
  const [first, ...rest] = notice.text;
  return renderDocument(
    ctx,
    notice.title,
    html`<h1>${notice.title}</h1>
${first === undefined ? '' : html`<p class="state ${notice.tone === 'ok' ? 'ok' : 'bad'}" role="status">${first}</p>`}
${rest.map((t) => html`<p>${t}</p>`)}`,
  );
}
