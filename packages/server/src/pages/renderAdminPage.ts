import type { AdminEnrollmentPage, AdminNoticeList, AdminPageDraft, ProposalView } from '@custos/kernel';
import { type Html, html, showText } from './html.js';
import { formatTime } from './renderApprovalPage.js';
import { type PageContext, renderDocument } from './renderDocument.js';

/**
 * The admin pages (issue 13 point 4; docs/quorum.md "The admin page"): the admin enrolment page
 * (`/admin/enroll/<capability>`), the passkey login (`/admin/`), the list of proposals and one
 * proposal in full with its "Approve" step. The passkey steps are assets/passkey.js's: `create` on
 * the enrolment page, `answer` (its `data-options` the kernel's) on the login and the proposal page;
 * the script only runs the browser's ceremony and posts `#passkey-form`: the kernel decides.
 * Structure the tests rely on: `#admin-enrolled` (`data-admin` the candidate's id), `#proposal`
 * (`data-id`, `data-state`), `#proposal-payload` (the payload as indented JSON, every invisible or
 * control character shown as its code point), `#approvals` (`li` per approval, `data-admin`),
 * `#proposals` (`li` per proposal), `#notices` (`li` per notice, newest first: `data-seq`, `data-event`,
 * the full text in its `pre`), `#untold-admins` (admins without an address), `p[role=alert]`
 * (`data-code`) after a refused post.
 */

function refusalLine(refusal: { text: string; code: string } | undefined): Html | string {
  return refusal === undefined ? '' : html`<p role="alert" class="state bad" data-code="${refusal.code}">${refusal.text}</p>\n`;
}

function answerStep(options: unknown, title: string, button: string, hidden: Record<string, string>, action?: string): Html {
  return html`<section id="passkey-step" class="passkey" data-mode="answer" data-state="loading" data-options="${JSON.stringify(options)}" aria-labelledby="passkey-title">
<h2 id="passkey-title">${title}</h2>
<form method="post" id="passkey-form"${action === undefined ? '' : html` action="${action}"`}>
${Object.entries(hidden).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">\n`)}<input type="hidden" name="proof" value="">
<button type="button" id="passkey-approve" class="approve" disabled>${button}</button>
<p id="passkey-status" class="status" role="status" aria-live="polite"></p>
</form>
<noscript><p class="state bad">Passkeys need JavaScript, which is off in this browser.</p></noscript>
</section>`;
}

/** The enrolment page: the passkey step while pending, else what became of the link. */
export function renderAdminEnrollmentPage(
  ctx: PageContext,
  input: { page: AdminEnrollmentPage; formToken: string; refusal?: { text: string; code: string } },
): string {
  const { page, formToken } = input;
  const body =
    page.state === 'pending'
      ? html`<h1>Register your admin passkey</h1>
${refusalLine(input.refusal)}<p>This link registers a passkey for <b>${showText(page.name === '' ? 'a new admin' : page.name)}</b> of this signer’s admin quorum. It works once, until ${formatTime(page.expiresAt)}.</p>
<p class="aside">Registering does not make you an admin: the admins add your passkey to the admin set (custos admin bootstrap, or a quorum.set proposal they approve).</p>
<section id="passkey-step" class="passkey" data-mode="create" data-state="loading" data-options="${JSON.stringify(page.optionsJSON)}" aria-labelledby="passkey-title">
<h2 id="passkey-title">Create your passkey</h2>
<form method="post" id="passkey-form">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="proof" value="">
<button type="button" id="passkey-create" class="approve" disabled>Create a passkey</button>
<p id="passkey-status" class="status" role="status" aria-live="polite"></p>
</form>
<noscript><p class="state bad">Passkeys need JavaScript, which is off in this browser.</p></noscript>
</section>`
      : html`<h1>Admin enrolment link</h1>
${refusalLine(input.refusal)}<p class="state bad">${page.state === 'used' ? 'This link was used already: nothing more can be registered with it.' : 'This link has expired: nothing was registered. Ask the operators for a new one.'}</p>`;
  return renderDocument(ctx, 'Admin passkey', body, { scripts: page.state === 'pending' });
}

/** After the registration: the candidate's id, to give to the admins. */
export function renderAdminEnrolledPage(ctx: PageContext, done: { adminId: string; name: string }): string {
  return renderDocument(
    ctx,
    'Admin passkey registered',
    html`<h1>Passkey registered</h1>
<p id="admin-enrolled" class="state ok" data-admin="${done.adminId}">Your passkey is registered as a candidate admin${done.name === '' ? '' : html` (${showText(done.name)})`}.</p>
<p>Its admin id: <span class="mono">${done.adminId}</span></p>
<p>Give this id to the admins. You become an admin only once they add it to the admin set; until then this passkey can approve nothing.</p>`,
  );
}

/** The login: a passkey admin of the set in force answers the kernel's time-stamped challenge. */
export function renderAdminLoginPage(
  ctx: PageContext,
  input: { optionsJSON: unknown; issuedAt: number; nonce: string; formToken: string; refusal?: { text: string; code: string } },
): string {
  return renderDocument(
    ctx,
    'Admin sign-in',
    html`<h1>Admin sign-in</h1>
${refusalLine(input.refusal)}<p>Sign in with your admin passkey to read the admin quorum’s proposals. Approving a proposal asks your passkey again, for that proposal.</p>
${answerStep(input.optionsJSON, 'Sign in with your passkey', 'Sign in with passkey', { csrf: input.formToken, issuedAt: String(input.issuedAt), nonce: input.nonce }, '/admin/login')}
<form method="get" action="/admin/" id="admin-id-form">
<p class="aside">Your passkey is not offered? (One registered before passkeys had to be discoverable.) Enter your admin id, then sign in.</p>
<label for="admin-id">Admin id</label> <input id="admin-id" name="admin" class="mono" size="70" pattern="pk:[0-9a-f]{64}" autocomplete="username"> <button type="submit">Use this admin id</button>
</form>`,
    { scripts: true },
  );
}

/** The proposals, newest first, each a link to its page. */
/**
 * The notices every admin was told (freezes, proposals), newest first, each in full (an e-mail is cut
 * at 1000 characters and points here); a set with admins told nothing (no address) is said first.
 */
function noticesSection(list: AdminNoticeList): Html {
  const untold =
    list.untoldAdmins.length === 0
      ? ''
      : html`<p role="alert" class="state bad" id="untold-admins" data-count="${String(list.untoldAdmins.length)}">${String(list.untoldAdmins.length)} admin(s) of the set in force have no e-mail address and are told nothing of freezes and proposals: ${showText(list.untoldAdmins.map((a) => `${a.slice(0, 16)}…`).join(', '))}. Propose a quorum.set that gives every admin an address.</p>\n`;
  const items = list.notices.map(
    (n) =>
      html`<li data-seq="${String(n.seq)}" data-event="${n.event}" data-complete="${n.complete ? 'yes' : 'no'}"><b>${showText(n.event)}</b> · ${formatTime(n.ts)} · ${String(n.told)} told${n.untold === 0 ? '' : html` · ${String(n.untold)} without an address`}<pre class="message">${showText(n.text)}</pre></li>`,
  );
  return html`<h2>Notices to the admins</h2>
${untold}${items.length === 0 ? html`<p>No notices.</p>` : html`<ul id="notices">${items}</ul>`}`;
}

export function renderAdminListPage(ctx: PageContext, input: { adminId: string; proposals: ProposalView[]; notices: AdminNoticeList }): string {
  const items = input.proposals.map(
    (p) =>
      html`<li data-id="${p.id}"><a href="/admin/proposals/${p.id}" class="mono">${p.id}</a> · <b>${showText(p.kind)}</b> · ${p.state} · ${p.approvals.length} of ${p.threshold} approvals · expires ${formatTime(p.expiresAt)}<br><span class="aside">${showText(p.description.slice(0, 300))}</span></li>`,
  );
  return renderDocument(
    ctx,
    'Admin proposals',
    html`<h1>Proposals</h1>
<p class="aside">Signed in as <span class="mono">${input.adminId}</span>.</p>
<p><a href="/admin/propose" id="propose-link">Propose a change</a></p>
${items.length === 0 ? html`<p>No proposals.</p>` : html`<ul id="proposals">${items}</ul>`}
${noticesSection(input.notices)}`,
  );
}

/** What the proposal approves, as the kernel stores it (wallet.change.approve: the change, its policy diff); a mismatch said first. */
function subjectSection(p: ProposalView): Html | string {
  if (p.subject === undefined) return '';
  const text = p.subject.lines.join('\n');
  return html`<h2>What it approves, as stored</h2>
${p.subject.matches ? '' : html`<p role="alert" class="state bad" id="subject-mismatch">This proposal does not match what the signer stores: approving it is refused.</p>\n`}<pre class="message mono" id="proposal-subject" data-matches="${p.subject.matches ? 'yes' : 'no'}">${showText(text)}</pre>`;
}

/**
 * One proposal in full: kind, id, proposer, expiry, state, the approvals so far, the payload as
 * indented JSON with every invisible or control character shown as its code point (JSON already
 * escapes C0 controls; showText marks the rest: C1, bidirectional and other invisible ones), and,
 * while pending, the "Approve" step whose assertion the kernel bound to this proposal's statement.
 */
export function renderAdminProposalPage(
  ctx: PageContext,
  input: {
    proposal: ProposalView;
    payloadHash: string;
    optionsJSON: unknown;
    formToken: string;
    notice?: string;
    refusal?: { text: string; code: string };
  },
): string {
  const p = input.proposal;
  const payload = JSON.stringify(p.payload, null, 2) ?? 'null';
  const approvals = p.approvals.map((a) => html`<li data-admin="${a.admin}"><span class="mono">${a.admin}</span> · ${formatTime(a.createdAt)}</li>`);
  const body = html`<h1>Proposal</h1>
${refusalLine(input.refusal)}${input.notice === undefined ? '' : html`<p role="status" class="state ok">${input.notice}</p>\n`}<dl class="summary" id="proposal" data-id="${p.id}" data-state="${p.state}">
<dt>Kind</dt><dd class="mono">${showText(p.kind)}</dd>
<dt>What it does</dt><dd>${showText(p.description)}</dd>
<dt>Id</dt><dd class="mono">${p.id}</dd>
<dt>Proposed by</dt><dd class="mono">${showText(p.proposer)}</dd>
<dt>Expires</dt><dd>${formatTime(p.expiresAt)}</dd>
<dt>State</dt><dd>${p.state}</dd>
<dt>Approvals</dt><dd>${p.approvals.length} of ${p.threshold} needed (the proposer’s never counts)${approvals.length === 0 ? '' : html`<ul id="approvals">${approvals}</ul>`}</dd>
<dt>Payload hash</dt><dd class="mono">${input.payloadHash}</dd>
</dl>
<h2>Payload, in full</h2>
<pre class="message mono" id="proposal-payload">${showText(payload)}</pre>
${subjectSection(p)}
${
  p.state === 'pending' && input.optionsJSON !== undefined && p.subject?.matches !== false
    ? answerStep(input.optionsJSON, 'Approve with your passkey', 'Approve', { csrf: input.formToken, payloadHash: input.payloadHash })
    : p.subject?.matches === false && p.state === 'pending'
      ? html`<p class="aside">It cannot be approved: what it names is not what the signer stores.</p>`
      : html`<p class="aside">This proposal is ${p.state}: nothing to approve.</p>`
}
<p><a href="/admin/">All proposals</a></p>`;
  return renderDocument(ctx, 'Proposal', body, { scripts: p.state === 'pending' && input.optionsJSON !== undefined && p.subject?.matches !== false });
}

/**
 * The first step of a proposal: its kind (every kind this signer knows), its payload as JSON and its
 * time to live (default 72 h). Posting it only shows the draft (renderAdminDraftPage): nothing is
 * proposed before the passkey step there. Structure: `#propose-form` (`select[name=kind]`,
 * `textarea[name=payload]`, `input[name=ttlHours]`).
 */
export function renderAdminProposeForm(
  ctx: PageContext,
  input: { adminId: string; kinds: string[]; formToken: string; kind?: string; payload?: string; ttlHours?: string; refusal?: { text: string; code: string } },
): string {
  const options = input.kinds.map((k) => html`<option value="${k}"${k === input.kind ? html` selected` : ''}>${k}</option>`);
  return renderDocument(
    ctx,
    'Propose a change',
    html`<h1>Propose a change</h1>
${refusalLine(input.refusal)}<p class="aside">Proposing as <span class="mono">${input.adminId}</span>. The next page shows the change in full before your passkey signs it; other admins must then approve it.</p>
<form method="post" action="/admin/propose/review" id="propose-form">
<input type="hidden" name="csrf" value="${input.formToken}">
<p><label for="kind">Kind</label><br><select id="kind" name="kind">${options}</select></p>
<p><label for="payload">Payload (JSON)</label><br><textarea id="payload" name="payload" class="mono" rows="14" cols="80" required spellcheck="false">${input.payload ?? ''}</textarea></p>
<p><label for="ttlHours">Expires after (hours)</label> <input id="ttlHours" name="ttlHours" inputmode="numeric" pattern="[0-9]{1,3}" size="4" value="${input.ttlHours ?? '72'}"></p>
<p><button type="submit">Review the proposal</button></p>
</form>
<p><a href="/admin/">All proposals</a></p>`,
  );
}

/**
 * The draft in full — kind, what it does, the id and expiry the kernel chose, the payload hash and the
 * payload as indented JSON (every invisible or control character shown as its code point) — and then
 * the passkey step whose assertion (challenge: SHA-256 of the propose statement) proposes it. The
 * form posts the draft's fields back; its token binds them. Structure: `#draft` (`data-id`),
 * `#draft-payload`.
 */
export function renderAdminDraftPage(ctx: PageContext, input: { draft: AdminPageDraft; optionsJSON: unknown; formToken: string }): string {
  const d = input.draft;
  const payload = JSON.stringify(d.payload, null, 2) ?? 'null';
  const body = html`<h1>Review the proposal</h1>
<p>Read it in full: your passkey signs exactly this change (its hash), and nothing is proposed until it does.</p>
<dl class="summary" id="draft" data-id="${d.id}">
<dt>Kind</dt><dd class="mono">${showText(d.kind)}</dd>
<dt>What it does</dt><dd>${showText(d.description)}</dd>
<dt>Id</dt><dd class="mono">${d.id}</dd>
<dt>Proposed by</dt><dd class="mono">${d.proposer}</dd>
<dt>Expires</dt><dd>${formatTime(d.expiresAt)}</dd>
<dt>Payload hash</dt><dd class="mono">${d.payloadHash}</dd>
</dl>
<h2>Payload, in full</h2>
<pre class="message mono" id="draft-payload">${showText(payload)}</pre>
${answerStep(
  input.optionsJSON,
  'Propose with your passkey',
  'Propose',
  { csrf: input.formToken, id: d.id, kind: d.kind, payload: d.payloadText, payloadHash: d.payloadHash, expiresAt: String(d.expiresAt) },
  '/admin/propose',
)}
<p><a href="/admin/propose">Start again</a> · <a href="/admin/">All proposals</a></p>`;
  return renderDocument(ctx, 'Review the proposal', body, { scripts: true });
}
