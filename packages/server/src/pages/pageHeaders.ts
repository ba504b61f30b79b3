import { randomBytes } from 'node:crypto';

/** A fresh CSP nonce (128 random bits, base64): one per response, never reused. */
export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

/**
 * The Content-Security-Policy of every page: nothing loads but the inline stylesheet carrying this
 * response's nonce and same-origin or inline images; no script at all (no script-src: default-src
 * 'none' forbids them); forms post only to this origin; no page of any origin may frame it; no
 * `<base>`.
 */
export function contentSecurityPolicy(nonce: string): string {
  return ["default-src 'none'", `style-src 'nonce-${nonce}'`, "img-src 'self' data:", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"].join(
    '; ',
  );
}

/**
 * The headers of every page response (see contentSecurityPolicy). The referrer policy is
 * `no-referrer`: no request the page makes carries its URL (the capability) anywhere. Under it
 * browsers send `Origin: null` with the page's own form posts (Fetch, "serializing a request
 * origin"), so the form check (pageRoutes.ts) reads `Sec-Fetch-Site` to tell them from a post by
 * another site.
 */
export function pageHeaders(nonce: string): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': contentSecurityPolicy(nonce),
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'cache-control': 'no-store',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
  };
}
