import { Html, html } from './html.js';

/** What every page takes from the operator's configuration and from its response. */
export interface PageContext {
  /** The name shown as the pages' brand (operator configuration; default "Custos"). */
  brandName: string;
  /** The pages' language (the `lang` attribute; operator configuration; default "en"). */
  lang: string;
  /** This response's CSP nonce (fresh per response): the inline style carries it, and the scripts of a passkey step. */
  nonce: string;
  /**
   * The paths of the passkey step's scripts, in load order (pages/pageAssets.ts:
   * @simplewebauthn/browser's bundle, then assets/passkey.js). Loaded only by a page that shows the step.
   */
  passkeyScripts?: readonly string[];
}

/**
 * One stylesheet, inline under the response's nonce: no third-party asset, readable from a 360 px
 * wide phone up (one column, wrapping long values), system fonts, visible focus.
 */
const STYLE = `
*,*::before,*::after{box-sizing:border-box}
html{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;line-height:1.45;color:#111;background:#f4f4f5;-webkit-text-size-adjust:100%}
body{margin:0;padding:12px}
main{max-width:44rem;margin:0 auto;background:#fff;border:1px solid #d4d4d8;border-radius:8px;padding:16px}
header.brand{max-width:44rem;margin:0 auto 8px;font-weight:600;color:#3f3f46}
h1{font-size:1.6rem;line-height:1.25;margin:0 0 12px}
h2{font-size:1.15rem;margin:20px 0 8px}
dl.summary{margin:0;display:grid;grid-template-columns:1fr;gap:2px 12px}
dl.summary dt{font-size:.9rem;color:#52525b;margin-top:10px}
dl.summary dd{margin:0;font-size:1.15rem;overflow-wrap:anywhere}
@media (min-width:40rem){dl.summary{grid-template-columns:minmax(9rem,auto) 1fr}dl.summary dt{margin-top:0}dl.summary dd{margin-bottom:8px}}
.mono{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:.95em;word-break:break-all}
.secret{word-break:normal;overflow-wrap:anywhere}
.aside{font-size:.85rem;color:#52525b}
.warnings{list-style:none;margin:16px 0;padding:0}
.warnings li{border:2px solid #b91c1c;background:#fef2f2;color:#7f1d1d;border-radius:6px;padding:10px 12px;margin:8px 0;font-weight:600}
.apptext{border:2px dashed #a16207;background:#fffbeb;border-radius:6px;padding:10px 12px;margin:16px 0;unicode-bidi:isolate}
.apptext>h2{margin-top:0;font-size:1rem;color:#713f12}
.apptext dl{margin:0}
.apptext dt{font-weight:600;margin-top:6px}
.apptext dd{margin:0 0 4px;overflow-wrap:anywhere;unicode-bidi:isolate}
.message{display:block;white-space:pre-wrap;max-height:20rem;overflow:auto;background:#fff;border:1px solid #e4e4e7;padding:6px}
dl.typed{margin:0 0 0 12px;padding-left:8px;border-left:2px solid #e4e4e7}
dl.summary dl.item{margin:4px 0 0;padding-left:8px;border-left:2px solid #e4e4e7;display:block}
dl.summary dl.item dt{margin-top:4px;font-size:.85rem}
dl.summary dl.item dd{font-size:1rem;margin:0}
ol.typed{margin:0;padding-left:24px}
.cp{font-family:ui-monospace,monospace;background:#fde68a;color:#713f12;border:1px solid #a16207;border-radius:3px;padding:0 2px;font-size:.85em}
.state{font-size:1.2rem;font-weight:700;padding:10px 12px;border-radius:6px;background:#f4f4f5;border:2px solid #71717a}
.state.ok{background:#f0fdf4;border-color:#15803d;color:#14532d}
.state.bad{background:#fef2f2;border-color:#b91c1c;color:#7f1d1d}
ul.factors{padding-left:20px}
form{margin:16px 0;padding:12px;border:1px solid #d4d4d8;border-radius:6px}
label{display:block;font-weight:600;margin-bottom:6px}
input[type=text]{font-size:1.5rem;letter-spacing:.2em;width:100%;max-width:12rem;padding:8px;border:2px solid #52525b;border-radius:6px}
button{font-size:1.1rem;font-weight:600;padding:10px 18px;border-radius:6px;border:2px solid transparent;margin-top:10px;min-height:44px;cursor:pointer}
button.approve{background:#15803d;color:#fff}
button.reject{background:#fff;color:#b91c1c;border-color:#b91c1c}
button:disabled{opacity:.55;cursor:not-allowed}
.passkey{margin:16px 0;padding:12px;border:2px solid #15803d;border-radius:6px}
.passkey form{margin:0;padding:0;border:0}
.passkey>h2,.passkey>h3{margin-top:0}
.passkey .status{min-height:1.5em;margin:8px 0 0}
.passkey[data-state=error] .status{color:#7f1d1d;font-weight:600}
:focus-visible{outline:3px solid #2563eb;outline-offset:2px}
`;

// The stylesheet is a constant of this file, not input: it goes in as is (it holds no `<`).
const STYLE_HTML = new Html(STYLE);

/**
 * A whole page: doctype, language, viewport, no referrer to other origins, the nonce'd stylesheet,
 * brand and body; with `scripts`, the passkey step's scripts, each with the nonce (deferred, so
 * they run in order once the page is parsed). No inline script, ever.
 */
export function renderDocument(ctx: PageContext, title: string, body: Html, { scripts = false }: { scripts?: boolean } = {}): string {
  const scriptTags = scripts ? (ctx.passkeyScripts ?? []).map((src) => html`<script nonce="${ctx.nonce}" src="${src}" defer></script>\n`) : [];
  return html`<!doctype html>
<html lang="${ctx.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>${title} — ${ctx.brandName}</title>
<style nonce="${ctx.nonce}">${STYLE_HTML}</style>
${scriptTags}</head>
<body>
<header class="brand">${ctx.brandName}</header>
<main>
${body}
</main>
</body>
</html>
`.toString();
}
