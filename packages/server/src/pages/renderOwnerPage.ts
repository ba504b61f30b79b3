import type { ActivityEntry, OwnerPage, OwnerPageChange } from '@custos/kernel';
import { cardStep } from './cardStep.js';
import { adminApprovalNote, policyDiffSection } from './changePageRoutes.js';
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
 * `form.not-me`; `p[role=alert]` after a post. The wallet's open changes: `#open-changes`, one
 * `li.change` per change (`data-change-id`, `data-state`), each with its cancel forms
 * (`decision=cancel-change`, `change=<id>`, `kind` totp / hwkey / passkey / recovery); the passkey's
 * step (`#passkey-step`, one a page) goes to the change `passkeyChange` names, the others link to it;
 * a change row that fails its MAC is one `li.change.unreadable` (`data-state="unreadable"`), no field of it shown.
 */
export interface OwnerPageInput {
  page: OwnerPage;
  formToken: string;
  /** A line above the page after a post (e.g. "Frozen"). */
  notice?: string;
  /** A refused step, above the page (`data-code` the kernel's error code). */
  refusal?: { text: string; code: string };
  /** The open change whose cancel the passkey step answers (the page's `?change=`), else the first that has one. */
  passkeyChange?: string;
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
  'change.request': 'Change of protection requested',
  'change.confirm': 'Change of protection confirmed',
  'change.cancel': 'Change of protection cancelled',
  'change.apply': 'Change of protection applied',
  'change.code': 'Code sent for a change of protection',
  'change.quorum': 'Change of protection approved by the administrators',
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

/** The open change whose cancel the page's passkey step answers (one step a page; the unfreeze's comes first), or undefined. */
export function passkeyCancelOf(page: OwnerPage, wanted: string | undefined): OwnerPageChange | undefined {
  if (offersPasskeyUnfreeze(page)) return undefined;
  const offering = page.changes.filter((c) => c.cancel.passkey !== undefined);
  return offering.find((c) => c.id === wanted) ?? offering[0];
}

/** Whether the owner page loads the passkey scripts: the unfreeze's step, or a change's cancel. */
export function ownerPageScripts(page: OwnerPage, passkeyChange: string | undefined): boolean {
  return offersPasskeyUnfreeze(page) || passkeyCancelOf(page, passkeyChange) !== undefined;
}

function cancelHidden(formToken: string, change: OwnerPageChange, kind: string): Html {
  return html`<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="cancel-change">
<input type="hidden" name="change" value="${change.id}">
<input type="hidden" name="kind" value="${kind}">`;
}

/** What cancels one change here: any current factor of the wallet (the same rules as the change's own page), or a recovery code. */
function cancelSteps(change: OwnerPageChange, formToken: string, passkeyHere: boolean): Html {
  const kinds = change.cancel.kinds;
  const totp = kinds.includes('totp')
    ? html`<form method="post" class="cancel-change" data-kind="totp">${cancelHidden(formToken, change, 'totp')}
<label for="code-${change.id}">Code from your authenticator app</label>
<input id="code-${change.id}" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" minlength="6" maxlength="6" required>
<button type="submit" class="reject">Cancel this change</button>
</form>`
    : '';
  const passkey =
    change.cancel.passkey === undefined
      ? ''
      : passkeyHere
        ? html`<section id="passkey-step" class="passkey" data-mode="answer" data-state="loading" data-options="${JSON.stringify(change.cancel.passkey)}" aria-labelledby="passkey-title">
<h3 id="passkey-title">Cancel with your passkey</h3>
<form method="post" id="passkey-form">${cancelHidden(formToken, change, 'passkey')}
<input type="hidden" name="proof" value="">
<button type="button" id="passkey-approve" class="reject" disabled>Cancel with passkey</button>
<p id="passkey-status" class="status" role="status" aria-live="polite"></p>
</form>
<noscript><p class="state bad">The passkey step needs JavaScript, which is off in this browser.</p></noscript>
</section>`
        : html`<p><a class="passkey-link" href="?change=${change.id}">Cancel this change with your passkey</a></p>`;
  const card =
    change.cancel.card === undefined
      ? ''
      : cardStep({
          id: `hwkey-cancel-${change.id}`,
          title: 'Cancel with your hardware key',
          where: 'With the card of this wallet,',
          card: change.cancel.card,
          formToken,
          decision: 'cancel-change',
          button: 'Cancel with the card',
          buttonClass: 'reject',
          hidden: { change: change.id },
        });
  const mail = kinds.includes('oob') ? html`<p>Or cancel it with the link in the message the signer sent to your address.</p>` : '';
  return html`${passkey}${totp}${card}${mail}<details class="recovery-step"><summary>Lost your factor? Cancel with a recovery code</summary>
<form method="post" class="cancel-change" data-kind="recovery">${cancelHidden(formToken, change, 'recovery')}
<label for="recovery-${change.id}">One of the recovery codes shown when you enrolled</label>
<input id="recovery-${change.id}" name="code" type="text" autocomplete="off" autocapitalize="none" spellcheck="false" maxlength="32" required>
<button type="submit" class="reject">Cancel this change</button>
</form></details>`;
}

/** One open change: what it does (a policy loosening field by field), when, whether the admins must approve it too, and its cancel. */
function changeItem(change: OwnerPageChange, formToken: string, passkeyHere: boolean): Html {
  const when =
    change.state === 'pending'
      ? html`Takes effect at ${formatTime(change.effectiveAt ?? change.expiresAt)} unless you cancel it.`
      : html`Requested: waiting for the owner’s confirmation until ${formatTime(change.expiresAt)}.`;
  return html`<li class="change" data-change-id="${change.id}" data-state="${change.state}"><p><b>${change.description}</b></p>
${policyDiffSection(change)}${adminApprovalNote(change)}<p>${when}</p>
${cancelSteps(change, formToken, passkeyHere)}</li>`;
}

/** An open change whose row fails its integrity check: none of its fields is shown (they are not the kernel's); it is never applied. */
function unreadableItem(): Html {
  return html`<li class="change unreadable" data-state="unreadable"><p><b>A change that cannot be read (integrity check failed)</b></p>
<p>Its record in the signer’s database was altered, so nothing of it is shown and it will not take effect while it cannot be read. If you did not expect this, freeze the wallet above and tell the signer’s operators.</p></li>`;
}

function openChanges(page: OwnerPage, formToken: string, passkeyChange: string | undefined): Html | '' {
  if (page.changes.length === 0 && page.unreadableChanges === 0) return '';
  const passkeyFor = passkeyCancelOf(page, passkeyChange)?.id;
  const unreadable = Array.from({ length: page.unreadableChanges }, unreadableItem);
  return html`<section aria-labelledby="open-changes-title">
<h2 id="open-changes-title">Changes to your wallet’s protection waiting to take effect</h2>
<p>If you did not ask for one of these, cancel it: any of your wallet’s factors, or one of its recovery codes, cancels it.</p>
<ul id="open-changes" class="factors">${page.changes.map((change) => changeItem(change, formToken, change.id === passkeyFor))}${unreadable}</ul>
</section>`;
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

export function renderOwnerPage(ctx: PageContext, { page, formToken, notice, refusal, passkeyChange }: OwnerPageInput): string {
  const frozen = page.frozenAt !== null;
  const scripts = ownerPageScripts(page, passkeyChange);
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
${openChanges(page, formToken, passkeyChange)}
<h2>Recent signatures, approvals and changes</h2>
${
  page.activity.length === 0
    ? html`<p id="activity">Nothing yet.</p>`
    : html`<ul id="activity" class="factors">${page.activity.map((entry) => activityItem(entry, formToken, frozen))}</ul>`
}`,
    { scripts },
  );
}
