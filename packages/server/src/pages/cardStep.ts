import { type Html, html } from './html.js';

/**
 * A card's step on a page (no JavaScript): the card signs `digest` (hex, the 32 bytes as they are)
 * at its subpath, and its signature is posted with `decision` and `kind=hwkey`. Used by the owner
 * page (unfreeze) and the change page (confirm, cancel); `id` prefixes the section, digest and form
 * ids (`#<id>`, `#<id>-digest`, `#<id>-form`).
 */
export function cardStep(options: {
  id: string;
  title: string;
  /** The sentence before "sign this with the card…", e.g. "In the browser where you added the card to this wallet,". */
  where: string;
  card: { digest: string; subpath: string };
  formToken: string;
  decision: string;
  button: string;
  buttonClass: 'approve' | 'reject';
  /** More hidden fields of the form (the owner page's `change`). */
  hidden?: Record<string, string>;
}): Html {
  const { id, title, where, card, formToken, decision, button, buttonClass, hidden = {} } = options;
  return html`<section id="${id}" aria-labelledby="${id}-title">
<h3 id="${id}-title">${title}</h3>
<p>${where} sign this with the card${card.subpath === '' ? '' : html` at subpath <span class="mono">${card.subpath}</span>`} (the card signs the 32 bytes as they are):</p>
<p id="${id}-digest" class="mono">${card.digest}</p>
<form method="post" id="${id}-form">
<input type="hidden" name="csrf" value="${formToken}">
<input type="hidden" name="decision" value="${decision}">
<input type="hidden" name="kind" value="hwkey">${Object.entries(hidden).map(
    ([name, value]) => html`
<input type="hidden" name="${name}" value="${value}">`,
  )}
<label for="${id}-signature">The card’s signature (64 bytes r‖s, or 65 with a header byte, in hex)</label>
<input id="${id}-signature" name="signature" type="text" autocomplete="off" spellcheck="false" maxlength="140" required>
<button type="submit" class="${buttonClass}">${button}</button>
</form>
</section>`;
}
