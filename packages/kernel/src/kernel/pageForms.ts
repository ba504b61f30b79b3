import type { KernelContext } from './context.js';

/**
 * The CSRF token of the kernel's page forms (approval and enrolment pages): a MAC under the
 * barrier over the page's capability and a random value the browser holds in a cookie
 * (SameSite=Strict) — so a token works on every replica of the signer and survives a restart,
 * only for that page and that browser, and a site that makes the owner's browser post a form
 * can neither read the cookie nor compute the token.
 */
const PAGE_FORM_LABEL = 'custos.page-form.v1';
const encoder = new TextEncoder();

function formBytes(capability: string, browserNonce: string): Uint8Array {
  return encoder.encode(`${capability}\0${browserNonce}`);
}

/** The token a page form carries for `capability` in the browser holding `browserNonce`. Throws `sealed` while sealed. */
export function pageFormToken(ctx: KernelContext, capability: string, browserNonce: string): string {
  return ctx.requireBarrier().macRecord(PAGE_FORM_LABEL, formBytes(capability, browserNonce));
}

/** Whether `token` is the form token of `capability` and `browserNonce` (constant-time). Throws `sealed` while sealed. */
export function checkPageFormToken(ctx: KernelContext, capability: string, browserNonce: string, token: string): boolean {
  return ctx.requireBarrier().verifyRecordMac(PAGE_FORM_LABEL, formBytes(capability, browserNonce), token);
}
