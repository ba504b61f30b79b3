import { type CustosError, ERROR_CODES, isCustosError, type Kernel } from '@custos/kernel';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parsePublicUrl } from '../checkHostAndOrigin.js';
import { toCustosError } from '../errorHandler.js';
import { FORM_BODY_LIMIT, formCookieHeader, formCookieValues, newFormCookieValue, parsePostedForm } from './pageForms.js';
import { newNonce, pageHeaders } from './pageHeaders.js';
import { enrollmentPageRoutes } from './enrollmentPageRoutes.js';
import { fullyShown, renderApprovalPage, renderDecisionPage, renderNoticePage } from './renderApprovalPage.js';
import type { PageContext } from './renderDocument.js';
import { EMPTY_TOKEN_LIST, type TokenList } from './tokenList.js';

/** What the operator configures about the pages (custos serve). */
export interface PageOptions {
  /** The brand the pages show (default "Custos"). */
  brandName?: string;
  /** The pages' language tag (default "en"). */
  lang?: string;
  /** The operator's token list (--token-list FILE): token amounts shown in their unit. */
  tokenList?: TokenList;
}

export interface PageRoutesOptions extends PageOptions {
  kernel: Kernel;
  /** The URL the owner reaches the pages by (--public-url): its origin is the only Origin a form post may carry. */
  publicUrl?: string;
}

/** An approval page's capability: 32 random bytes, base64url. Any other path segment is simply not found. */
const CAPABILITY = /^[A-Za-z0-9_-]{43}$/;

export type Notice = { status: number; title: string; text: string[]; tone?: 'ok' | 'bad' };

const NOT_FOUND: Notice = {
  status: 404,
  title: 'Page not found',
  text: [
    'There is no signing request at this address.',
    'Check that the link was copied whole. A request that was never made and one that is gone look the same here.',
  ],
};
const SEALED: Notice = {
  status: 503,
  title: 'The signer is sealed',
  text: ['The signer is sealed: it can neither show nor decide requests until its operators unseal it.', 'Nothing was decided. Try again later.'],
};
const FORBIDDEN: Notice = {
  status: 403,
  title: 'Form refused',
  text: [
    'This form was not sent from this signer’s own page in this browser, so it was refused. Nothing was decided.',
    'Open the link you were given again and decide there.',
  ],
};

/** Refusals of a posted decision, in plain words (the approval page is shown again below them). */
function refusalText(error: CustosError): string {
  switch (error.code) {
    case 'code_invalid':
      return 'Wrong code. Nothing was decided. Check the code in your authenticator app and try again.';
    case 'code_reused':
      return 'That code was already used. Nothing was decided. Wait for the next code and try again.';
    case 'code_required':
      return 'Type the code from your authenticator app to approve. Nothing was decided.';
    case 'factor_throttled': {
      const seconds = error.details.retryAfterSeconds;
      const wait = typeof seconds === 'number' ? ` Try again in ${Math.ceil(seconds / 60)} minute${seconds > 60 ? 's' : ''}.` : ' Try again later.';
      return `Too many wrong codes: approving with a code is locked for a while. Nothing was decided.${wait}`;
    }
    case 'consent_too_weak':
      return 'This wallet needs a passkey to approve: a code is not enough. Nothing was decided.';
    case 'invalid_input':
      return error.details.field === 'decision'
        ? 'The form was incomplete. Nothing was decided.'
        : 'The code must be the 6 digits shown by your authenticator app. Nothing was decided.';
    case 'approval_expired':
      return 'This request has expired: it can no longer be decided.';
    case 'approval_rejected':
    case 'approval_cancelled':
    case 'approval_decided':
    case 'approval_pending':
      return 'This request was already decided: it cannot be decided again.';
    default:
      return `The decision was refused (${error.code}). Nothing was decided.`;
  }
}

/** Codes a decision may be refused with while the page itself is fine: the page is shown again, with the reason. */
const REFUSALS = new Set<string>([
  'code_invalid',
  'code_reused',
  'code_required',
  'factor_throttled',
  'consent_too_weak',
  'invalid_input',
  'approval_expired',
  'approval_rejected',
  'approval_cancelled',
  'approval_decided',
  'approval_pending',
  'factor_required',
]);

/**
 * The kernel's own pages (issue 11): `GET /approve/<capability>` shows an approval, `POST` with a
 * form decides it. No API key: the unguessable capability in the URL is the authority, and the
 * kernel answers an unknown one exactly as a malformed one (404). A GET never changes anything.
 */
export async function pageRoutes(
  app: FastifyInstance,
  { kernel, publicUrl, brandName = 'Custos', lang = 'en', tokenList = EMPTY_TOKEN_LIST }: PageRoutesOptions,
): Promise<void> {
  const publicOrigin = publicUrl === undefined ? undefined : parsePublicUrl(publicUrl);
  const secureCookie = publicOrigin?.protocol === 'https:';

  /** Sends a page with a fresh nonce and the page headers. */
  function sendPage(reply: FastifyReply, status: number, render: (ctx: PageContext) => string): FastifyReply {
    const nonce = newNonce();
    const body = render({ brandName, lang, nonce });
    return reply.status(status).headers(pageHeaders(nonce)).send(body);
  }
  const sendNotice = (reply: FastifyReply, notice: Notice) => sendPage(reply, notice.status, (ctx) => renderNoticePage(ctx, notice));

  // Only forms are read here (the API's JSON parser is not inherited), bounded to 4 KiB.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT }, (_request, body, done) => {
    done(null, body);
  });

  // Failures on a page are pages: sealed, overloaded, a body too large or not a form.
  app.setErrorHandler((error, request, reply) => {
    const custos = toCustosError(error);
    if (custos.status >= 500 && custos.code !== 'sealed' && custos.code !== 'overloaded')
      request.log.error({ err: custos, errorCode: custos.code }, `page failed: ${custos.code}`);
    else request.log.info({ errorCode: custos.code }, `page refused: ${custos.code}`);
    const retryAfter = custos.details.retryAfterSeconds;
    if (typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
    switch (custos.code) {
      case 'sealed':
        return sendNotice(reply, SEALED);
      case 'overloaded':
        return sendNotice(reply, { status: 503, title: 'Busy', text: ['The signer is busy. Nothing was decided. Try again in a moment.'] });
      case 'body_too_large':
        return sendNotice(reply, { status: 413, title: 'Form too large', text: ['The form sent was too large. Nothing was decided.'] });
      case 'unsupported_media_type':
        return sendNotice(reply, { status: 415, title: 'Not a form', text: ['Only this page’s own form is accepted here. Nothing was decided.'] });
      default:
        if (custos.status < 500)
          return sendNotice(reply, { status: 400, title: 'Bad request', text: ['The request was not understood. Nothing was decided.'] });
        return sendNotice(reply, { status: custos.status, title: 'Something went wrong', text: ['The signer could not do this now. Nothing was decided.'] });
    }
  });

  /** The capability in the path, or undefined when the path is not one. */
  function capabilityOf(request: FastifyRequest): string | undefined {
    const segment = (request.params as Record<string, unknown>)['*'];
    return typeof segment === 'string' && CAPABILITY.test(segment) ? segment : undefined;
  }

  /** Opens the approval page; undefined for an unknown (or malformed) capability. */
  async function openPage(capability: string) {
    try {
      return await kernel.openApprovalPage(capability);
    } catch (error) {
      if (isCustosError(error) && (error.code === 'approval_not_found' || error.code === 'invalid_input')) return undefined;
      throw error;
    }
  }

  /** The form token of this page in this browser; sets the cookie (for the pages under `path`) when the browser has none. */
  function formTokenFor(request: FastifyRequest, reply: FastifyReply, capability: string, path: '/approve/' | '/enroll/' = '/approve/'): string {
    let value = formCookieValues(request.headers.cookie)[0];
    if (value === undefined) {
      value = newFormCookieValue();
      void reply.header('set-cookie', formCookieHeader(value, { secure: secureCookie, path }));
    }
    return kernel.pageFormToken(capability, value);
  }

  /**
   * Whether a form post comes from this signer's own page, as the browser says: `Sec-Fetch-Site`
   * (sent by every current browser) must be `same-origin`, and an `Origin` other than `null` must
   * be the public URL's (or, without one, in development, the request's own). `Origin: null` is
   * what a page under `Referrer-Policy: no-referrer` sends with its own posts — and what a sandboxed
   * frame of another site sends too, so it passes only with `Sec-Fetch-Site: same-origin`. A post
   * with neither header (not a current browser) passes this check; the cookie and its token (below)
   * still decide.
   */
  function originAllowed(request: FastifyRequest): boolean {
    const site = request.headers['sec-fetch-site'];
    const origin = request.headers.origin;
    if (site !== undefined && site !== 'same-origin') return false;
    if (origin === undefined) return true;
    if (origin === 'null') return site === 'same-origin';
    const expected = publicOrigin?.origin ?? `${request.protocol}://${request.host}`.toLowerCase();
    return origin.toLowerCase() === expected;
  }

  enrollmentPageRoutes(app, {
    kernel,
    sendPage,
    sendNotice,
    capabilityOf,
    originAllowed,
    formTokenFor: (request, reply, capability) => formTokenFor(request, reply, capability, '/enroll/'),
    formChecks: (request, capability) => {
      const { csrf } = parsePostedForm(request.body);
      return csrf !== undefined && formCookieValues(request.headers.cookie).some((value) => kernel.checkPageFormToken(capability, value, csrf));
    },
  });

  app.get('/approve/*', { schema: { hide: true } }, async (request, reply) => {
    const capability = capabilityOf(request);
    if (capability === undefined) return sendNotice(reply, NOT_FOUND);
    const page = await openPage(capability);
    if (page === undefined) return sendNotice(reply, NOT_FOUND);
    const formToken = page.approval.state === 'pending' ? formTokenFor(request, reply, capability) : '';
    return sendPage(reply, 200, (ctx) => renderApprovalPage(ctx, { page, formToken, tokens: tokenList }));
  });

  app.post('/approve/*', { schema: { hide: true }, bodyLimit: FORM_BODY_LIMIT }, async (request, reply) => {
    const capability = capabilityOf(request);
    if (capability === undefined) return sendNotice(reply, NOT_FOUND);
    // A form from another origin, or without this browser's token for this page, decides nothing.
    if (!originAllowed(request)) return sendNotice(reply, FORBIDDEN);
    const form = parsePostedForm(request.body);
    const cookies = formCookieValues(request.headers.cookie);
    const { csrf } = form;
    if (csrf === undefined || !cookies.some((value) => kernel.checkPageFormToken(capability, value, csrf))) return sendNotice(reply, FORBIDDEN);
    if (form.decision !== 'approve' && form.decision !== 'reject')
      return sendNotice(reply, { status: 400, title: 'Bad request', text: ['The form was incomplete. Nothing was decided.'] });
    if (form.decision === 'approve') {
      // What the page could not show in full is not approved from it, even by a form posted anyway.
      const shown = await openPage(capability);
      if (shown === undefined) return sendNotice(reply, NOT_FOUND);
      if (!fullyShown(shown, tokenList)) {
        const formToken = shown.approval.state === 'pending' ? formTokenFor(request, reply, capability) : '';
        return sendPage(reply, 403, (ctx) =>
          renderApprovalPage(ctx, {
            page: shown,
            formToken,
            tokens: tokenList,
            refusal: 'This request cannot be approved on this page: part of it could not be shown. Nothing was decided.',
          }),
        );
      }
    }
    try {
      const decided = await kernel.decideApproval(
        capability,
        form.decision === 'approve' ? { decision: 'approve', kind: 'totp', proof: form.code ?? '' } : { decision: 'reject' },
      );
      return sendPage(reply, 200, (ctx) => renderDecisionPage(ctx, decided, tokenList));
    } catch (error) {
      if (!isCustosError(error)) throw error;
      if (error.code === 'approval_not_found') return sendNotice(reply, NOT_FOUND);
      if (!REFUSALS.has(error.code)) throw error;
      const page = await openPage(capability);
      if (page === undefined) return sendNotice(reply, NOT_FOUND);
      const formToken = page.approval.state === 'pending' ? formTokenFor(request, reply, capability) : '';
      const retryAfter = error.details.retryAfterSeconds;
      if (typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
      return sendPage(reply, ERROR_CODES[error.code].status, (ctx) =>
        renderApprovalPage(ctx, { page, formToken, tokens: tokenList, refusal: refusalText(error) }),
      );
    }
  });
}
