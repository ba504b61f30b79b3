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
  webauthn: 'Passkey',
  hwkey: 'Hardware key',
  oob: 'One-time code sent by Custos',
};

/** What a decided (or lapsed) approval's state means, in plain words; `ok` for the tone of the box. */
export function stateText(view: Pick<ApprovalView, 'state' | 'decidedAt' | 'expiresAt'>): { text: string; ok: boolean } {
  const at = view.decidedAt === null ? '' : ` on ${formatTime(view.decidedAt)}`;
  const texts: Record<ApprovalState, { text: string; ok: boolean }> = {
    pending: { text: `Waiting for your decision, until ${formatTime(view.expiresAt)}.`, ok: true },
    approved: { text: `Approved${at}. The app can now have exactly this operation signed, once.`, ok: true },
    consumed: { text: `Approved${at}, and the operation has been signed.`, ok: true },
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
}

/**
 * The approval page: what will be signed (large, from the kernel's summary), the warnings, the
 * app's text in a box of its own, the wallet's factors, and — only while pending — the Approve
 * (TOTP code, where `present` suffices) and Reject forms. A pure function of its input.
 */
export function renderApprovalPage(ctx: PageContext, { page, formToken, tokens, refusal }: ApprovalPageInput): string {
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
  return renderDocument(
    ctx,
    pending ? 'Approve this request?' : 'Signing request',
    html`${refusal === undefined ? '' : html`<p class="state bad" role="alert">${refusal}</p>`}
<h1>${op.headline}</h1>
${pending ? '' : html`<p class="state ${state.ok ? 'ok' : 'bad'}" role="status">${state.text}</p>`}
${warnings.length > 0 ? html`<ul class="warnings" aria-label="Warnings">${warnings.map((w) => html`<li>${w}</li>`)}</ul>` : ''}
<dl class="summary">
${op.rows.map((row) => html`<dt>${row.label}</dt><dd>${row.value}</dd>`)}
<dt>Key index</dt><dd>${approval.keyIndex}</dd>
${pending ? html`<dt>Decide before</dt><dd>${formatTime(approval.expiresAt)}</dd>` : ''}
</dl>
${appTextHtml}
<h2>This wallet’s second factors</h2>
${factors.length === 0 ? html`<p>None.</p>` : html`<ul class="factors">${factors.map(factorItem)}</ul>`}
${pending ? renderForms(formToken, approval.requiredStrength, hasTotp, op.incomplete === true) : ''}`,
  );
}

function renderForms(formToken: string, requiredStrength: 'present' | 'bound', hasTotp: boolean, incomplete: boolean): Html {
  const approve = incomplete
    ? html`<p>This request cannot be approved on this page: part of it could not be shown.</p>`
    : requiredStrength === 'bound'
      ? html`<p>This wallet needs a passkey to approve. Approving with a passkey is not available on this page yet: reject the request, or leave it to expire.</p>`
      : hasTotp
        ? html`<form method="post">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="approve">
<label for="code">Code from your authenticator app</label>
<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" minlength="6" maxlength="6" required aria-describedby="code-help">
<p id="code-help" class="aside">6 digits. Approve only if everything above is what you asked for.</p>
<button type="submit" class="approve">Approve</button>
</form>`
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
