// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { codePointLabel, escapeHtml, Html, hasInvisible, html, joinHtml, showText } from './html.js';

/** Every character showText must make visible (the brief's list and the rest of INVISIBLE). */
const MUST_SHOW = [
  ...Array.from({ length: 0x20 }, (_, i) => i).filter((i) => i !== 0x0a),
  0x7f,
  ...Array.from({ length: 0x20 }, (_, i) => 0x80 + i),
  0x061c,
  0x180e,
  0x200b,
  0x200c,
  0x200d,
  0x200e,
  0x200f,
  0x2028,
  0x2029,
  0x202a,
  0x202b,
  0x202c,
  0x202d,
  0x202e,
  0x2060,
  0x2066,
  0x2067,
  0x2068,
  0x2069,
  0xfeff,
  // default-ignorable and format characters beyond the bidirectional ones (review: hidden text)
  0x00ad,
  0x034f,
  0x115f,
  0x1160,
  0x3164,
  0xffa0,
  0xfe00,
  0xfe0f,
  0xfff9,
  0xe0001,
  0xe0041,
  0xe007f,
  0xe0100,
  0xe01ef,
].map((cp) => String.fromCodePoint(cp));

describe('html: escaped by construction', () => {
  it('escapes the five HTML metacharacters', () => {
    assert.equal(escapeHtml(`<script>alert("x")&'</script>`), '&lt;script&gt;alert(&quot;x&quot;)&amp;&#39;&lt;/script&gt;');
  });

  it('the html template escapes every interpolated string, number and array member, and keeps Html as is', () => {
    const evil = '<img src=x onerror=alert(1)>';
    const out = html`<p title="${evil}">${evil}${[evil, html`<b>ok</b>`]}${42}${null}${undefined}${false}</p>`.toString();
    assert.equal(out, '<p title="&lt;img src=x onerror=alert(1)&gt;">&lt;img src=x onerror=alert(1)&gt;&lt;img src=x onerror=alert(1)&gt;<b>ok</b>42</p>');
    assert.equal(joinHtml(['<a>', html`<br>`], html`|`).toString(), '&lt;a&gt;|<br>');
  });

  it('a quote cannot leave an attribute', () => {
    const out = html`<input value="${'" autofocus onfocus="alert(1)'}">`.toString();
    assert.equal(out, '<input value="&quot; autofocus onfocus=&quot;alert(1)">');
  });
});

describe('showText: control and bidirectional characters shown, never raw', () => {
  it('shows U+202E (right-to-left override) as ⟨U+202E⟩ and escapes markup', () => {
    const out = showText('pay \u202Eevil.exe<script>').toString();
    assert.equal(out, 'pay <span class="cp">⟨U+202E⟩</span>evil.exe&lt;script&gt;');
    assert.ok(!out.includes('\u202E'));
  });

  for (const char of MUST_SHOW) {
    it(`shows ${codePointLabel(char)}`, () => {
      const out = showText(`a${char}b`).toString();
      assert.equal(out, `a<span class="cp">${codePointLabel(char)}</span>b`);
      assert.ok(hasInvisible(`a${char}b`));
    });
  }

  it('keeps line feeds, ordinary non-Latin text and emoji (surrogate pairs) as they are', () => {
    const text = 'line 1\nzeile 2 — שלום مرحبا 日本 👍🏽';
    assert.equal(showText(text).toString(), text);
    assert.equal(hasInvisible(text), false);
  });

  it('shows lone surrogates (high and low)', () => {
    assert.equal(showText('a\uD800b').toString(), 'a<span class="cp">⟨U+D800⟩</span>b');
    assert.equal(showText('a\uDC00b').toString(), 'a<span class="cp">⟨U+DC00⟩</span>b');
  });

  it('property: for any text, the output holds no markup but its own spans and no invisible character', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => {
        const out = showText(text).toString();
        const withoutSpans = out.replaceAll('<span class="cp">', '').replaceAll('</span>', '');
        assert.ok(!/[<>"']/.test(withoutSpans), out);
        assert.equal(hasInvisible(out), false, out);
      }),
      { numRuns: 2000 },
    );
  });

  it('returns Html (so that it is not escaped twice)', () => {
    assert.ok(showText('x') instanceof Html);
    assert.equal(html`${showText('<')}`.toString(), '&lt;');
  });
});
