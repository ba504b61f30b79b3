import { randomBytes } from 'node:crypto';

/** A fresh CSP nonce (128 random bits, base64): one per response, never reused. */
export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

/** What a page needs beyond its stylesheet and images: its passkey step's scripts, and the approval page's challenge request. */
export interface PagePowers {
  /** The kernel's own scripts (pages/pageAssets.ts), each loaded with this response's nonce. */
  scripts?: boolean;
  /** Requests from the page's script to this origin (the approval page's POST …/challenge). */
  connect?: boolean;
}

/**
 * The Content-Security-Policy of every page: nothing loads but the inline stylesheet carrying this
 * response's nonce and same-origin or inline images; no script at all (no script-src: default-src
 * 'none' forbids them) — except, on a page with a passkey step, the scripts carrying this
 * response's nonce (the kernel's own files: no inline script, no eval) and, on the approval page,
 * its script's requests to this origin; forms post only to this origin; no page of any origin may
 * frame it; no `<base>`.
 */
export function contentSecurityPolicy(nonce: string, { scripts = false, connect = false }: PagePowers = {}): string {
  return [
    "default-src 'none'",
    ...(scripts ? [`script-src 'nonce-${nonce}'`] : []),
    ...(scripts && connect ? ["connect-src 'self'"] : []),
    `style-src 'nonce-${nonce}'`,
    "img-src 'self' data:",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

/**
 * The headers of every page response (see contentSecurityPolicy). The referrer policy is
 * `no-referrer`: no request the page makes carries its URL (the capability) anywhere. Under it
 * browsers send `Origin: null` with the page's own form posts (Fetch, "serializing a request
 * origin"), so the form check (pageRoutes.ts) reads `Sec-Fetch-Site` to tell them from a post by
 * another site.
 */
export function pageHeaders(nonce: string, powers: PagePowers = {}): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': contentSecurityPolicy(nonce, powers),
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'cache-control': 'no-store',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
  };
}
