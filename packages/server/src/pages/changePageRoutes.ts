import { type ChangePage, type CustosError, isCustosError, type Kernel } from '@custos/kernel';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { cardStep } from './cardStep.js';
import { type Html, html, showText } from './html.js';
import { deviceCookieName, deviceCookieValues, ownerDeviceCookieHeaders, ownerDeviceCookieValues, PROOF_FORM_BODY_LIMIT, parseProof } from './pageForms.js';
import { answerPostedStep, onlyField } from './pagePost.js';
import type { PagePowers } from './pageHeaders.js';
import type { Notice } from './pageRoutes.js';
import type { PageContext } from './renderDocument.js';
import { renderDocument } from './renderDocument.js';
import { APP_TEXT_LABEL, formatTime, notMeLink, refusalAlert } from './renderApprovalPage.js';

/** What the change page takes from pageRoutes: its page helpers, form token and checks. */
export interface ChangePageDeps {
  kernel: Kernel;
  sendPage(reply: FastifyReply, status: number, render: (ctx: PageContext) => string, powers?: PagePowers): FastifyReply;
  sendNotice(reply: FastifyReply, notice: Notice): FastifyReply;
  capabilityOf(request: FastifyRequest): string | undefined;
  originAllowed(request: FastifyRequest): boolean;
  formTokenFor(request: FastifyRequest, reply: FastifyReply, capability: string): string;
  formChecks(request: FastifyRequest, capability: string): boolean;
  /** Whether cookies are set Secure (the public URL is https). */
  secureCookie: boolean;
}

/**
 * Sets a new owner-device cookie of `walletName` (kernel/ownerDevice.ts) on `reply`: called only after
 * the owner proved a factor on this signer's page (a confirm, a cancel, an unfreeze, an approval, an
 * enrolment), so that the owner's later cancels are counted on a budget the backend cannot reach.
 */
export async function setOwnerDeviceCookie(kernel: Kernel, reply: FastifyReply, walletName: string, secure: boolean): Promise<void> {
  const device = await kernel.issueOwnerDeviceToken(walletName);
  if (device !== undefined) void reply.header('set-cookie', ownerDeviceCookieHeaders(walletName, device, { secure }));
}

const NOT_FOUND: Notice = {
  status: 404,
  title: 'Page not found',
  text: ['There is no change of a wallet’s protection at this address.', 'Check that the link was copied whole.'],
};
const FORBIDDEN: Notice = {
  status: 403,
  title: 'Form refused',
  text: ['This form was not sent from this signer’s own page in this browser, so it was refused. Nothing was decided.'],
};

/** Refusals the page shows above itself (the change is fine, the answer was not). */
export const CHANGE_REFUSALS = new Set<string>([
  'code_invalid',
  'code_reused',
  'code_required',
  'code_expired',
  'code_tries_exhausted',
  'challenge_required',
  'invalid_input',
  'factor_required',
  'factor_throttled',
  'consent_too_weak',
  'delivery_limited',
  'change_expired',
  'change_not_pending',
  'change_cancel_throttled',
  'passkey_invalid',
  'passkey_user_not_verified',
  'passkey_counter_invalid',
  'recovery_code_invalid',
  'recovery_code_throttled',
  'hwkey_invalid',
  'hwkey_signature_high_s',
]);

export function changeRefusalText(error: CustosError): string {
  switch (error.code) {
    case 'code_invalid':
      return 'Wrong code. Nothing was decided. Check the code and type it again.';
    case 'code_reused':
      return 'That code was used already. Wait for the next one. Nothing was decided.';
    case 'change_cancel_throttled':
      return error.details.budget === 'device'
        ? 'Too many wrong codes were typed in this browser. Cancel with a recovery code, or through the link the signer sent to your address.'
        : 'Too many wrong codes were typed on this page. Cancel through the link the signer sent to your address, or in the browser where you last used your factor on this signer’s pages.';
    case 'change_expired':
      return 'This change was not confirmed in time. Nothing was changed.';
    case 'change_not_pending':
      return 'This change was already decided. Nothing more can be done on this page.';
    case 'recovery_code_invalid':
      return 'That is not one of this wallet’s unused recovery codes. Nothing was decided.';
    case 'recovery_code_throttled':
      return 'Too many wrong recovery codes for this wallet: wait a while, or cancel with your factor. Nothing was decided.';
    case 'passkey_invalid':
      return 'The passkey’s answer did not check out for this change. Nothing was decided. Press the passkey button again.';
    case 'factor_throttled':
      return 'Too many wrong codes: your factor is locked for now. Confirming waits; cancelling never does.';
    default:
      return `The answer was refused (${error.code}). Nothing was decided.`;
  }
}

/** The factor kind the page's code field answers with: a code from the authenticator app, else a delivered code. */
function codeKind(page: ChangePage): 'totp' | 'oob' | undefined {
  const kinds = page.consent?.kinds ?? [];
  return kinds.includes('totp') ? 'totp' : kinds.includes('oob') ? 'oob' : undefined;
}

/**
 * The change page (issue 13, docs/timelock.md): `GET /changes/<capability>` shows a timelocked change
 * of a wallet's protection; a POST confirms it (requested: a code of the wallet's strongest factor)
 * or cancels it (pending: any current factor, or — on the link the signer delivered by e-mail — the
 * link itself). A GET never changes anything; a POST needs this browser's form token and the
 * signer's Origin, as on the other pages.
 */
export function renderChangePage(
  ctx: PageContext,
  { page, formToken, refusal, refusalCode }: { page: ChangePage; formToken: string; refusal?: string; refusalCode?: string },
): string {
  const alert = refusalAlert(refusal, refusalCode);
  // "Not me": the wallet's owner page lists its open changes (cancellable there) and freezes it.
  const box = html`<section class="apptext" aria-labelledby="apptext-title">
<h2 id="apptext-title">${APP_TEXT_LABEL}</h2>
<dl><dt>Wallet name</dt><dd>${showText(page.walletName)}</dd></dl>
</section>${notMeLink(page.ownerCapability)}`;
  const what = html`<p><b>${page.description}</b></p>${policyDiffSection(page)}${adminApprovalNote(page)}`;
  if (page.action === null)
    return renderDocument(
      ctx,
      'Change of protection',
      html`${alert}<h1>Change of your wallet’s protection</h1>${what}<p class="state" role="status" data-state="${page.state}">This change is ${page.state}.</p>${box}`,
    );
  const kind = codeKind(page);
  const sendCode: Html | '' =
    kind === 'oob'
      ? html`<form method="post"><input type="hidden" name="csrf" value="${formToken}"><input type="hidden" name="decision" value="send-code"><button type="submit">Send me a code</button></form>`
      : '';
  const passkey = passkeyStep(page, formToken);
  const card = cardChangeStep(page, formToken);
  const codeForm = (decision: 'confirm' | 'cancel', label: string): Html | '' =>
    kind === undefined
      ? passkey === '' && card === ''
        ? html`<p class="state bad">This wallet’s factor cannot answer on this page. Use the link the signer sent to your address.</p>`
        : html`${passkey}${card}`
      : html`${passkey}${card}<form method="post" id="${decision}-form">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="${decision}">
<input type="hidden" name="kind" value="${kind}">
<label for="code">${kind === 'totp' ? 'Code from your authenticator app' : 'Code sent to your address'}</label>
<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6,8}" minlength="6" maxlength="8" required>
<button type="submit" class="${decision === 'confirm' ? 'approve' : 'reject'}">${label}</button>
</form>${sendCode}`;
  if (page.action === 'confirm')
    return renderDocument(
      ctx,
      'Confirm a change of protection',
      html`${alert}<h1>Confirm a change of your wallet’s protection</h1>${what}
<p>Only confirm if you asked for this. It takes effect after a delay, during which you can still cancel it. Confirm before ${formatTime(page.expiresAt)}.</p>${box}${codeForm('confirm', 'Confirm the change')}`,
      { scripts: offersChangePasskey(page) },
    );
  const cancelForm = page.consent?.byLink
    ? html`<form method="post" id="cancel-form"><input type="hidden" name="csrf" value="${formToken}"><input type="hidden" name="decision" value="cancel"><button type="submit" class="reject">Cancel the change</button></form>`
    : html`${codeForm('cancel', 'Cancel the change')}${recoveryForm(formToken)}`;
  return renderDocument(
    ctx,
    'Cancel a change of protection',
    html`${alert}<h1>A change of your wallet’s protection is pending</h1>${what}
<p>It takes effect at ${formatTime(page.effectiveAt ?? page.expiresAt)}. If you did not ask for it, cancel it now.</p>${box}${cancelForm}`,
    { scripts: offersChangePasskey(page) },
  );
}

/**
 * The card's step (no JavaScript): the card signs this change's digest for this step
 * (`#hwkey-change-digest`) at its subpath, and the signature is posted (`#hwkey-change-form`,
 * `kind=hwkey`, `signature`). Confirming counts only from the browser the card was enrolled in.
 */
function cardChangeStep(page: ChangePage, formToken: string): Html | '' {
  const card = page.consent?.card;
  if (page.action === null || page.consent?.byLink === true || card === undefined) return '';
  const confirm = page.action === 'confirm';
  return cardStep({
    id: 'hwkey-change',
    title: confirm ? 'Confirm with your hardware key' : 'Cancel with your hardware key',
    where: confirm ? 'In the browser where you added the card to this wallet,' : 'With the card of this wallet,',
    card,
    formToken,
    decision: page.action,
    button: confirm ? 'Confirm with the card' : 'Cancel with the card',
    buttonClass: confirm ? 'approve' : 'reject',
  });
}

/**
 * A `policy.loosen`'s difference, field by field (old → new), as the kernel computed it from the
 * policies it stored — never the backend's words. Every line and every list entry is shown (a long
 * allowlist is a long list, never cut); a line that allows more than before is marked.
 */
export function policyDiffSection(page: Pick<ChangePage, 'policyDiff'>): Html | '' {
  const diff = page.policyDiff;
  if (diff === undefined) return '';
  if (diff.length === 0) return html`<p id="policy-diff" data-lines="0">No field of the policy in force changes.</p>`;
  const rows = diff.map((entry) => {
    const list = (sign: string, cls: string, items: readonly string[] | undefined) =>
      items === undefined || items.length === 0
        ? ''
        : html`<ul class="${cls}">${items.map((item) => html`<li><span aria-hidden="true">${sign}</span> <code>${item}</code></li>`)}</ul>`;
    const heading = `${entry.added?.length ?? 0} added, ${entry.removed?.length ?? 0} removed`;
    const lists = entry.added === undefined ? '' : html`<p>${heading}</p>${list('+', 'added', entry.added)}${list('−', 'removed', entry.removed)}`;
    return html`<tr data-field="${entry.field}" data-looser="${entry.looser ? 'true' : 'false'}">
<th scope="row">${entry.label}${entry.looser ? html` <b class="bad">(looser)</b>` : ''}</th>
<td class="from">${entry.from}</td><td class="to">${entry.to}${lists}</td></tr>`;
  });
  return html`<section id="policy-diff" aria-labelledby="policy-diff-title" data-lines="${diff.length}">
<h2 id="policy-diff-title">What changes in your wallet’s policy</h2>
<p>Computed by the signer from the policy in force and the one this change gives.</p>
<table><thead><tr><th scope="col">Rule</th><th scope="col">Now</th><th scope="col">After the change</th></tr></thead>
<tbody>${rows}</tbody></table>
</section>`;
}

/** A TOTP-only wallet's change also needs the admin quorum: the page says so, and whether it still waits. */
export function adminApprovalNote(page: Pick<ChangePage, 'adminApproval' | 'state'>): Html | '' {
  if (page.adminApproval === undefined || page.state === 'applied' || page.state === 'cancelled' || page.state === 'expired') return '';
  if (page.adminApproval === 'approved')
    return html`<p id="admin-approval" class="state" data-admin-approval="approved">The signer’s administrators (an admin quorum) approved this change.</p>`;
  const when = page.state === 'requested' ? 'After you confirm, it is also waiting for admin approval' : 'It is waiting for admin approval';
  return html`<p id="admin-approval" class="state" data-admin-approval="waiting">${when}: this wallet has no delivery address and no passkey, so an admin quorum of the signer must approve the change too before it takes effect.</p>`;
}

/** Whether the page offers the wallet's passkey (and so loads the passkey scripts). */
export function offersChangePasskey(page: ChangePage): boolean {
  return page.action !== null && page.consent?.byLink !== true && page.consent?.passkey !== undefined;
}

/**
 * The passkey step (assets/passkey.js, mode `answer`): the options of this change and step are in
 * `data-options`; the script answers them with the wallet's passkey and posts `#passkey-form`
 * (`kind=passkey`, the answer as JSON in `proof`).
 */
function passkeyStep(page: ChangePage, formToken: string): Html | '' {
  if (!offersChangePasskey(page)) return '';
  const decision = page.action as 'confirm' | 'cancel';
  return html`<section id="passkey-step" class="passkey" data-mode="answer" data-state="loading" data-options="${JSON.stringify(page.consent?.passkey)}" aria-labelledby="passkey-title">
<h3 id="passkey-title">${decision === 'confirm' ? 'Confirm with your passkey' : 'Cancel with your passkey'}</h3>
<form method="post" id="passkey-form">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="${decision}">
<input type="hidden" name="kind" value="passkey">
<input type="hidden" name="proof" value="">
<button type="button" id="passkey-approve" class="${decision === 'confirm' ? 'approve' : 'reject'}" disabled>${decision === 'confirm' ? 'Confirm with passkey' : 'Cancel with passkey'}</button>
<p id="passkey-status" class="status" role="status" aria-live="polite"></p>
</form>
<noscript><p class="state bad">The passkey step needs JavaScript, which is off in this browser.</p></noscript>
</section>`;
}

/** A cancel with one of the wallet's recovery codes (kind `recovery`: it only cancels; its own throttle). */
function recoveryForm(formToken: string): Html {
  return html`<details id="recovery-step"><summary>Lost your factor? Cancel with a recovery code</summary>
<form method="post" id="recovery-form">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="cancel">
<input type="hidden" name="kind" value="recovery">
<label for="recovery-code">One of the recovery codes shown when you enrolled</label>
<input id="recovery-code" name="code" type="text" autocomplete="off" autocapitalize="none" spellcheck="false" maxlength="32" required>
<button type="submit" class="reject">Cancel the change</button>
</form></details>`;
}

export function changePageRoutes(app: FastifyInstance, deps: ChangePageDeps): void {
  const { kernel, sendPage, sendNotice, capabilityOf } = deps;

  async function openPage(capability: string): Promise<ChangePage | undefined> {
    try {
      return await kernel.openChangePage(capability);
    } catch (error) {
      if (isCustosError(error) && error.code === 'change_not_found') return undefined;
      throw error;
    }
  }

  async function showPage(request: FastifyRequest, reply: FastifyReply, capability: string, status: number, refused?: CustosError) {
    const page = await openPage(capability);
    if (page === undefined) return sendNotice(reply, NOT_FOUND);
    const formToken = page.action === null ? '' : deps.formTokenFor(request, reply, capability);
    const refusal = refused === undefined ? {} : { refusal: changeRefusalText(refused), refusalCode: refused.code };
    return sendPage(reply, status, (ctx) => renderChangePage(ctx, { page, formToken, ...refusal }), { scripts: offersChangePasskey(page) });
  }

  /** The wallet's card device cookies this request carries (the enrolment page sets one with Path=/changes/). */
  async function changeDeviceTokens(request: FastifyRequest, capability: string): Promise<string[]> {
    const page = await openPage(capability);
    return page === undefined ? [] : deviceCookieValues(request.headers.cookie, deviceCookieName(page.walletName, deps.secureCookie));
  }

  app.get('/changes/*', { schema: { hide: true } }, async (request, reply) => {
    const capability = capabilityOf(request);
    if (capability === undefined) return sendNotice(reply, NOT_FOUND);
    return showPage(request, reply, capability, 200);
  });

  app.post('/changes/*', { schema: { hide: true }, bodyLimit: PROOF_FORM_BODY_LIMIT }, async (request, reply) => {
    const capability = capabilityOf(request);
    if (capability === undefined) return sendNotice(reply, NOT_FOUND);
    if (!deps.originAllowed(request) || !deps.formChecks(request, capability)) return sendNotice(reply, FORBIDDEN);
    const decision = onlyField(request.body, 'decision');
    const code = onlyField(request.body, 'code');
    const kind = onlyField(request.body, 'kind');
    return answerPostedStep(
      async () => {
        // A passkey's answer is JSON in `proof` (parsed and bounded); a card's is its `signature`; a
        // code (or a recovery code) is `code`.
        const signature = onlyField(request.body, 'signature');
        const proof = kind === 'passkey' ? parseProof(onlyField(request.body, 'proof')) : kind === 'hwkey' ? { signature: signature ?? '' } : code;
        const answer = { ...(kind === undefined ? {} : { kind }), ...(proof === undefined ? {} : { proof }) };
        // This browser's owner-device cookies (Path=/changes/): a cancel, or a cancel's code, counts on the device's own budget.
        const shown = await openPage(capability);
        const owned = shown === undefined ? [] : ownerDeviceCookieValues(request.headers.cookie, shown.walletName, deps.secureCookie);
        if (decision === 'send-code') await kernel.sendChangeCode(capability, owned);
        else if (decision === 'confirm' || decision === 'cancel') {
          const decided =
            decision === 'confirm'
              ? // A card's answer counts as posted on the page only with the device cookie of the browser it was enrolled in (Path=/changes/).
                await kernel.confirmChange(capability, kind === 'hwkey' ? { ...answer, deviceTokens: await changeDeviceTokens(request, capability) } : answer)
              : await kernel.cancelChange(capability, { ...answer, deviceTokens: owned });
          // The owner answered on this page: this browser is an owner device from now on.
          await setOwnerDeviceCookie(kernel, reply, decided.walletName, deps.secureCookie);
        } else return showPage(request, reply, capability, 400);
        return await showPage(request, reply, capability, 200);
      },
      {
        notFoundCode: 'change_not_found',
        refusals: CHANGE_REFUSALS,
        notFound: () => sendNotice(reply, NOT_FOUND),
        refused: (status, error) => showPage(request, reply, capability, status, error),
      },
    );
  });
}
