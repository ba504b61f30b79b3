import { CustosError, ERROR_CODES, type ErrorCode } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';

/** The error reference's CSP: no script, no style, nothing from anywhere. */
const ERRORS_PAGE_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * `GET /docs/errors` (issue 15 point 7): every error code the signer can answer, with its HTTP status
 * and one line, each under the anchor its error bodies' `docs` URL names (errorDocsUrl) — the anchor of
 * its section of docs/errors.md, where the when / retry / what to do are written. Plain HTML, no script.
 */
export async function docsPage(app: FastifyInstance): Promise<void> {
  const sections = (Object.keys(ERROR_CODES) as ErrorCode[])
    .map((code) => {
      const anchor = new CustosError(code, '').docsPath.split('#')[1] ?? '';
      const { status, title } = ERROR_CODES[code];
      return `<section id="${anchor}"><h2><code>${code}</code> — HTTP ${status}</h2><p>${escapeHtml(title)}</p><p>In the Custos repository: <code>docs/errors.md#${anchor}</code>.</p></section>`;
    })
    .join('\n');
  const html = `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Custos error codes</title></head><body>\n<h1>Custos error codes</h1>\n<p>Every error body is <code>{ "error": { "code", "message", "details", "docs" } }</code>; <code>docs</code> links here. The API reference: <a href="/docs/">/docs/</a>.</p>\n${sections}\n</body></html>\n`;
  app.get('/docs/errors', { schema: { hide: true } }, async (_request, reply) =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', ERRORS_PAGE_CSP)
      .header('x-content-type-options', 'nosniff')
      .send(html),
  );
}
