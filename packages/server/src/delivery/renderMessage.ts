import type { DeliveryMessage } from '@custos/kernel';

/** A message as both channels carry it: a subject, plain text, HTML, and the fields a webhook receiver reads. */
export interface RenderedMessage {
  subject: string;
  text: string;
  html: string;
  /** The webhook body's fields (the code among them: the receiver shows it to the owner). */
  fields: Record<string, unknown>;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/**
 * The lines after a change's first line: a `policy.loosen`'s difference, field by field, as the kernel
 * wrote it (kernel/policyDiff.ts) — every line, never cut; control characters replaced, so that no
 * line can pass for another part of the message.
 */
function detailLines(summaryText: string | undefined): string[] {
  return (summaryText ?? '')
    .split('\n')
    .slice(1)
    .map((line) => line.replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, '?'));
}

function detailText(lines: readonly string[]): string {
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

function detailHtml(lines: readonly string[]): string {
  return lines.length === 0 ? '' : `<pre style="white-space:pre-wrap">${escapeHtml(lines.join('\n'))}</pre>`;
}

function minutesLeft(expiresAt: number, now: number): number {
  return Math.max(1, Math.round((expiresAt - now) / 60_000));
}

/**
 * What a delivered message says. An approval's: the one-line summary, the approval page's link (only
 * shown on GET; the page acts on POST), and the 8-digit code to type on that page — never to give to
 * anyone, including the service that asked. An address check's: the code to type on the enrolment page.
 * A lock notice: that the codes are locked, and why.
 */
export function renderMessage(message: DeliveryMessage, options: { publicUrl: string; now: number }): RenderedMessage {
  return withOwnerLink(renderBody(message, options), message, options.publicUrl);
}

/** The owner page's address ("this was not me" and activity, docs/freeze.md). */
export function ownerPageUrl(publicUrl: string, ownerCapability: string): string {
  return `${publicUrl}/owner/${ownerCapability}`;
}

/**
 * Every message ends with the wallet owner's "this was not me" link: its page shows the wallet's
 * recent activity on GET and freezes the wallet only on a POST from that page (a mail scanner that
 * opens links freezes nothing).
 */
function withOwnerLink(rendered: RenderedMessage, message: DeliveryMessage, publicUrl: string): RenderedMessage {
  if (message.ownerCapability === undefined) return rendered;
  const link = ownerPageUrl(publicUrl, message.ownerCapability);
  return {
    subject: rendered.subject,
    text: `${rendered.text}
Not you? See your wallet's recent activity, or freeze it: ${link}
`,
    html: `${rendered.html}<p>Not you? <a href="${escapeHtml(link)}">See your wallet's recent activity, or freeze it</a>.</p>`,
    fields: { ...rendered.fields, notMeUrl: link },
  };
}

function renderBody(message: DeliveryMessage, { publicUrl, now }: { publicUrl: string; now: number }): RenderedMessage {
  const base = { type: `custos.oob.${message.kind}`, id: message.id, walletName: message.walletName, recipient: message.address };
  if (message.kind === 'quorum') {
    // An announcement to an admin (kernel/quorum/proposals.ts): no code, no link; the text says what was proposed or applied.
    const text = `${message.summaryText ?? ''}\nIf you did not expect this, check the audit log and the admin set (custos admin list).\n`;
    return {
      subject: `Custos admin quorum: ${((message.summaryText ?? '').split(/[:\n]/)[0] ?? '').slice(0, 120)}`,
      text,
      html: `<p>${escapeHtml(text).replace(/\n/g, '<br>')}</p>`,
      fields: { ...base, summary: message.summaryText ?? '' },
    };
  }
  if (message.kind === 'locked') {
    const text =
      'Too many wrong codes were typed for your wallet: its delivered codes are locked for 24 hours.\n' +
      'If this was not you, someone is trying to approve operations in your name.\n';
    return { subject: 'Your signing codes are locked', text, html: `<p>${escapeHtml(text).replace(/\n/g, '<br>')}</p>`, fields: { ...base } };
  }
  if (message.kind === 'changed') {
    const text =
      'The address that receives your signing codes was changed: codes now go to the new address, not to this one.\n' +
      'If this was not you, contact the service that holds your wallet at once.\n';
    return { subject: 'Your address for signing codes was changed', text, html: `<p>${escapeHtml(text).replace(/\n/g, '<br>')}</p>`, fields: { ...base } };
  }
  if (message.kind === 'timelock') return renderTimelockNotice(message, base, publicUrl);
  const code = message.code ?? '';
  const minutes = minutesLeft(message.expiresAt, now);
  if (message.kind === 'change' && message.summaryText !== undefined) {
    // A timelocked change's consent (or cancel) code, sent to the wallet's address (kernel/pendingChanges.ts).
    const what = message.summaryText.split('\n')[0] ?? '';
    const detail = detailLines(message.summaryText);
    const text = `Someone asked for a change of your wallet’s protection: ${what}\n${detailText(detail)}Your code for it: ${code}\nType it on the signer’s change page only if you asked for this. It is valid for ${minutes} minutes. Never give it to anyone.\n`;
    return {
      subject: 'A code for a change of your wallet’s protection',
      text,
      html: `<p>Someone asked for a change of your wallet’s protection: <b>${escapeHtml(what)}</b></p>${detailHtml(detail)}<p>Your code for it:</p><p style="font-size:1.5em"><b>${code}</b></p><p>Type it on the signer’s change page only if you asked for this. It is valid for ${minutes} minutes. Never give it to anyone.</p>`,
      fields: { ...base, code, expiresAt: message.expiresAt, change: what, ...(detail.length === 0 ? {} : { changeDetail: detail }) },
    };
  }
  if (message.kind === 'change') {
    const text = `Someone asked to change the address that receives your signing codes. Your code to allow it: ${code}\nType it on the enrolment page only if you asked for the change. It is valid for ${minutes} minutes. Never give it to anyone.\n`;
    return {
      subject: 'Allow a change of your address for signing codes',
      text,
      html: `<p>Someone asked to change the address that receives your signing codes. Your code to allow it:</p><p style="font-size:1.5em"><b>${code}</b></p><p>Type it on the enrolment page only if you asked for the change. It is valid for ${minutes} minutes. Never give it to anyone.</p>`,
      fields: { ...base, code, expiresAt: message.expiresAt },
    };
  }
  if (message.kind === 'unfreeze') {
    const text = `Your code to unfreeze your wallet: ${code}\nType it on your wallet's page only if you froze the wallet yourself and want it to sign again. It is valid for ${minutes} minutes. Never give it to anyone.\n`;
    return {
      subject: 'Unfreeze your wallet',
      text,
      html: `<p>Your code to unfreeze your wallet:</p><p style="font-size:1.5em"><b>${code}</b></p><p>Type it on your wallet's page only if you froze the wallet yourself and want it to sign again. It is valid for ${minutes} minutes. Never give it to anyone.</p>`,
      fields: { ...base, code, expiresAt: message.expiresAt },
    };
  }
  if (message.kind === 'verify') {
    const text = `Your code to confirm this address: ${code}\nType it on the enrolment page. It is valid for ${minutes} minutes. Never give it to anyone.\n`;
    return {
      subject: 'Confirm your address for signing codes',
      text,
      html: `<p>Your code to confirm this address:</p><p style="font-size:1.5em"><b>${code}</b></p><p>Type it on the enrolment page. It is valid for ${minutes} minutes. Never give it to anyone.</p>`,
      fields: { ...base, code, expiresAt: message.expiresAt },
    };
  }
  const summary = (message.summaryText ?? '').split('\n')[0] ?? '';
  const link = message.capability === undefined ? undefined : `${publicUrl}/approve/${message.capability}`;
  const text =
    `Approve: ${summary}\n\n` +
    (link === undefined ? '' : `Open the approval page: ${link}\n`) +
    `Your code: ${code} (valid for ${minutes} minutes)\n` +
    'Type the code only on that page, after checking what you approve. Never give it to anyone.\n';
  const html =
    `<p>Approve: <b>${escapeHtml(summary)}</b></p>` +
    (link === undefined ? '' : `<p><a href="${escapeHtml(link)}">Open the approval page</a></p>`) +
    `<p>Your code: <b style="font-size:1.5em">${code}</b> (valid for ${minutes} minutes)</p>` +
    '<p>Type the code only on that page, after checking what you approve. Never give it to anyone.</p>';
  return {
    subject: `Approve: ${summary.slice(0, 120)}`,
    text,
    html,
    fields: {
      ...base,
      approvalId: message.approvalId,
      summaryText: message.summaryText ?? '',
      ...(link === undefined ? {} : { approveUrl: link }),
      code,
      expiresAt: message.expiresAt,
    },
  };
}

/**
 * A notice about a timelocked change (kernel/pendingChanges.ts): what the change is, when it takes
 * effect, and the link that cancels it (only shown on GET; the page cancels on POST). No code.
 */
function renderTimelockNotice(message: DeliveryMessage, base: Record<string, unknown>, publicUrl: string): RenderedMessage {
  const change = message.change;
  const what = (message.summaryText ?? '').split('\n')[0] ?? '';
  const when = change?.effectiveAt === null || change?.effectiveAt === undefined ? '' : new Date(change.effectiveAt).toISOString().replace('.000Z', 'Z');
  const link = message.capability === undefined ? undefined : `${publicUrl}/changes/${message.capability}`;
  const event = change?.event ?? 'announced';
  const heads: Record<string, [string, string]> = {
    announced: ['A change of your wallet’s protection was requested', `It takes effect at ${when} unless you cancel it.`],
    reminder: ['Reminder: a change of your wallet’s protection takes effect soon', `It takes effect at ${when} unless you cancel it.`],
    applied: ['A change of your wallet’s protection took effect', 'It was requested and announced earlier, and was not cancelled.'],
    cancelled: ['A change of your wallet’s protection was cancelled', 'Nothing was changed.'],
    failed: ['A change of your wallet’s protection was not made', 'It no longer fitted your wallet, so nothing was changed.'],
    held: [
      'A change of your wallet’s protection is on hold',
      'Its time has come, but your wallet’s records failed their integrity check, so it was not made: it is never made while they cannot be checked. It stays pending and is tried again, and the signer’s operators were told.',
    ],
  };
  const [subject, line] = heads[event] ?? (heads.announced as [string, string]);
  const open = event === 'announced' || event === 'reminder';
  const detail = detailLines(message.summaryText);
  const text =
    `${subject}: ${what}\n${detailText(detail)}${line}\n` +
    (open && link !== undefined ? `If this was not you, cancel it here: ${link}\n` : '') +
    'If this was not you, contact the service that holds your wallet at once.\n';
  const html =
    `<p>${escapeHtml(subject)}: <b>${escapeHtml(what)}</b></p>${detailHtml(detail)}<p>${escapeHtml(line)}</p>` +
    (open && link !== undefined ? `<p>If this was not you: <a href="${escapeHtml(link)}">cancel the change</a></p>` : '') +
    '<p>If this was not you, contact the service that holds your wallet at once.</p>';
  return {
    subject,
    text,
    html,
    fields: {
      ...base,
      event,
      change: what,
      ...(detail.length === 0 ? {} : { changeDetail: detail }),
      changeKind: change?.changeKind ?? null,
      effectiveAt: change?.effectiveAt ?? null,
      ...(open && link !== undefined ? { cancelUrl: link } : {}),
    },
  };
}
