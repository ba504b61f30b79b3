import type { ActivityEntry, OwnerPage } from '@custos/kernel';
import { cardStep } from './cardStep.js';
import { type Html, html, showText } from './html.js';
import { formatTime } from './renderApprovalPage.js';
import { type PageContext, renderDocument } from './renderDocument.js';

/**
 * The wallet owner's page (docs/freeze.md), reached from the "not you?" link of every notification
 * and approval page. Shows the wallet's state and its recent signatures and approvals; its only
 * form freezes the wallet ("this was not me"), and every line of the activity carries one.
 * Structure the tests rely on: `#wallet-state` (`data-frozen` true or false), `#freeze-form`
 * (`csrf`, `decision=freeze`); while frozen `#unfreeze-step` (`#unfreeze-code-form` `decision=unfreeze-code`,
 * `#unfreeze-form` `decision=unfreeze` with `code`); `#activity` with one `li` per record (`data-seq`), each with a
 * `form.not-me`; `p[role=alert]` after a post.
 */
export interface OwnerPageInput {
  page: OwnerPage;
  formToken: string;
  /** A line above the page after a post (e.g. "Frozen"). */
  notice?: string;
  /** A refused step, above the page (`data-code` the kernel's error code). */
  refusal?: { text: string; code: string };
}

const ACTIONS: Record<string, string> = {
  'sign.hash': 'Signed a raw hash',
  'sign.transaction': 'Signed a transaction',
  'sign.message': 'Signed a message',
  'sign.typedData': 'Signed typed data',
  'sign.authorization': 'Signed an EIP-7702 authorization',
  'approval.create': 'Approval requested',
  'approval.approve': 'Approval given',
  'approval.reject': 'Approval rejected',
  'approval.cancel': 'Approval cancelled',
  'approval.expire': 'Approval expired',
  'approval.resend': 'Approval code sent again',
  'wallet.freeze': 'Wallet frozen',
  'wallet.unfreeze': 'Wallet unfrozen',
};

function actionLabel(entry: ActivityEntry): string {
  const label = ACTIONS[entry.action] ?? entry.action;
  if (entry.decision === 'allowed') return label;
  return `${label.replace(/^Signed/, 'Signature')} — refused (${entry.reason ?? 'denied'})`;
}

function freezeForm(formToken: string, id: string | undefined, label: string): Html {
  return html`<form method="post" ${id === undefined ? html`class="not-me"` : html`id="${id}"`}>
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="freeze">
<button type="submit" class="reject">${label}</button>
</form>`;
}

function activityItem(entry: ActivityEntry, formToken: string, frozen: boolean): Html {
  const summary = entry.summaryText === null ? '' : (entry.summaryText.split('\n')[0] ?? '');
  return html`<li data-seq="${entry.seq}"><b>${actionLabel(entry)}</b> · ${formatTime(entry.ts)}${summary === '' ? '' : html`<br><span class="mono">${showText(summary)}</span>`}
${frozen ? '' : freezeForm(formToken, undefined, 'Not me')}</li>`;
}

/** Whether the owner page offers the passkey's unfreeze (and so loads the passkey scripts): a frozen wallet with a passkey. */
export function offersPasskeyUnfreeze(page: OwnerPage): boolean {
  return page.frozenAt !== null && page.factors.includes('passkey');
}

/** The passkey's unfreeze (assets/passkey.js, mode `approve`: it asks /owner/<capability>/challenge and posts `#passkey-form`). */
function passkeyUnfreezeStep(formToken: string): Html {
  return html`<section id="passkey-step" class="passkey" data-mode="approve" data-state="loading" aria-labelledby="passkey-title">
<h3 id="passkey-title">Unfreeze with your passkey</h3>
<form method="post" id="passkey-form">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="unfreeze">
<input type="hidden" name="kind" value="passkey">
<input type="hidden" name="proof" value="">
<button type="button" id="passkey-approve" class="approve" disabled>Unfreeze with passkey</button>
<p id="passkey-status" class="status" role="status" aria-live="polite"></p>
</form>
<noscript><p class="state bad">Unfreezing with a passkey needs JavaScript, which is off in this browser.</p></noscript>
</section>`;
}

/**
 * The card's unfreeze (no JavaScript): the card signs this freeze's digest (`#hwkey-unfreeze-digest`)
 * at its subpath, and the signature is posted (`#hwkey-unfreeze-form`, `decision=unfreeze`,
 * `kind=hwkey`, `signature`). It counts only from the browser the card was enrolled in.
 */
function cardUnfreezeStep(card: NonNullable<OwnerPage['card']>, formToken: string): Html {
  return cardStep({
    id: 'hwkey-unfreeze',
    title: 'Unfreeze with your hardware key',
    where: 'In the browser where you added the card to this wallet,',
    card,
    formToken,
    decision: 'unfreeze',
    button: 'Unfreeze with the card',
    buttonClass: 'approve',
  });
}

/** The owner's unfreeze step: the wallet's passkey, its card, or a delivered code bound to this freeze typed here (`#unfreeze-code-form`, `#unfreeze-form`). */
function unfreezeStep(page: OwnerPage, formToken: string): Html {
  const passkey = page.factors.includes('passkey');
  const card = page.card === undefined ? '' : cardUnfreezeStep(page.card, formToken);
  if (!page.factors.includes('oob') && !passkey && card === '')
    return html`<p id="unfreeze-step">To unfreeze it, ask the operators of this signer: their administrators can unfreeze it together.</p>`;
  if (!page.factors.includes('oob'))
    return html`<section id="unfreeze-step" aria-labelledby="unfreeze-title">
<h2 id="unfreeze-title">Unfreeze</h2>
<p>If you froze the wallet yourself and it is safe again, unfreeze it with this wallet’s ${passkey && card !== '' ? 'passkey or hardware key' : passkey ? 'passkey' : 'hardware key'}.</p>
${passkey ? passkeyUnfreezeStep(formToken) : ''}${card}
</section>`;
  return html`<section id="unfreeze-step" aria-labelledby="unfreeze-title">
<h2 id="unfreeze-title">Unfreeze</h2>
${passkey ? passkeyUnfreezeStep(formToken) : ''}${card}
<p>If you froze the wallet yourself and it is safe again, get a code at your address for signing codes and type it here.</p>
<form method="post" id="unfreeze-code-form">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="unfreeze-code">
<button type="submit">Send me a code</button>
</form>
<form method="post" id="unfreeze-form">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="unfreeze">
<label for="code">The 8-digit code</label>
<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" maxlength="8" required>
<button type="submit" class="approve">Unfreeze the wallet</button>
</form>
</section>`;
}

export function renderOwnerPage(ctx: PageContext, { page, formToken, notice, refusal }: OwnerPageInput): string {
  const frozen = page.frozenAt !== null;
  const scripts = offersPasskeyUnfreeze(page);
  return renderDocument(
    ctx,
    frozen ? 'Wallet frozen' : 'Your wallet',
    html`${notice === undefined ? '' : html`<p class="state ok" role="alert">${notice}</p>`}
${refusal === undefined ? '' : html`<p class="state bad" role="alert" data-code="${refusal.code}">${refusal.text}</p>`}
<h1>${frozen ? 'This wallet is frozen' : 'Your wallet’s recent activity'}</h1>
<dl class="summary"><dt>Wallet name</dt><dd>${showText(page.walletName)}</dd></dl>
<p id="wallet-state" class="state ${frozen ? 'bad' : 'ok'}" role="status" data-frozen="${frozen ? 'true' : 'false'}">${
      frozen
        ? html`Frozen since ${formatTime(page.frozenAt as number)}: nothing can be signed or approved for this wallet until it is unfrozen — by you with this wallet’s passkey or a code delivered to your address for signing codes, or by the signer’s administrators together.`
        : 'Active: signatures need your approval as usual.'
    }</p>
${
  frozen
    ? unfreezeStep(page, formToken)
    : html`<h2>Did you not do something below?</h2>
<p>Freeze the wallet: nothing can be signed for it any more, by anyone, until it is unfrozen. No code is needed to freeze.</p>
${freezeForm(formToken, 'freeze-form', 'This was not me — freeze the wallet')}`
}
<h2>Recent signatures and approvals</h2>
${
  page.activity.length === 0
    ? html`<p id="activity">Nothing yet.</p>`
    : html`<ul id="activity" class="factors">${page.activity.map((entry) => activityItem(entry, formToken, frozen))}</ul>`
}`,
    { scripts },
  );
}
