/**
 * HTML for the kernel's pages, escaped by construction: the `html` template escapes every value
 * interpolated into it unless that value is itself `Html` (made by `html`, `showText` or
 * `joinHtml`). No other way to put a string into a page exists, so text from an app can only reach
 * a page escaped.
 */
export class Html {
  readonly #text: string;
  constructor(text: string) {
    this.#text = text;
  }
  toString(): string {
    return this.#text;
  }
}

/** What may be interpolated: escaped strings and numbers, Html as is, arrays of them, nothing for null/undefined/false. */
export type HtmlValue = Html | string | number | bigint | null | undefined | false | readonly HtmlValue[];

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text escaped for an element's content or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

function render(value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Html) return value.toString();
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/** The template tag of every page fragment. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new Html(out);
}

export function joinHtml(parts: readonly HtmlValue[], separator: HtmlValue = ''): Html {
  return new Html(parts.map(render).join(render(separator)));
}

/**
 * Characters that change how text reads without being seen: every control (C0 but the line feed,
 * DEL, C1), every format character (the bidirectional marks, embeddings, overrides and isolates,
 * zero-width characters, the soft hyphen, tag characters, the interlinear annotation characters),
 * the line and paragraph separators, every default-ignorable code point (variation selectors,
 * Hangul fillers, U+034F, U+180E…) and lone surrogates.
 */
const INVISIBLE = /(?!\n)[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\uD800-\uDFFF]/gu;

/** `⟨U+202E⟩` for one such character. */
export function codePointLabel(char: string): string {
  return `⟨U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}⟩`;
}

/**
 * Text from an app, escaped, with every invisible or reordering character (see INVISIBLE) shown as
 * its code point, e.g. `⟨U+202E⟩`, so that it can neither hide nor reorder what is around it.
 */
export function showText(text: string): Html {
  let out = '';
  let last = 0;
  for (const m of text.matchAll(INVISIBLE)) {
    out += escapeHtml(text.slice(last, m.index));
    out += `<span class="cp">${escapeHtml(codePointLabel(m[0]))}</span>`;
    last = m.index + m[0].length;
  }
  return new Html(out + escapeHtml(text.slice(last)));
}

/** Whether `text` holds a character that showText makes visible. */
export function hasInvisible(text: string): boolean {
  INVISIBLE.lastIndex = 0;
  const found = INVISIBLE.test(text);
  INVISIBLE.lastIndex = 0;
  return found;
}
