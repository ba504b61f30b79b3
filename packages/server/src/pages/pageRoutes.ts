import { type ApprovalDecision, type ApprovalPage, CustosError, ERROR_CODES, isCustosError, type Kernel } from '@custos/kernel';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parsePublicUrl } from '../checkHostAndOrigin.js';
import { errorBody, toCustosError } from '../errorHandler.js';
import { ASSET_HEADERS, readPageAssets } from './pageAssets.js';
import {
  deviceCookieName,
  deviceCookieValues,
  FORM_BODY_LIMIT,
  formCookieHeader,
  formCookieValues,
  newFormCookieValue,
  PROOF_FORM_BODY_LIMIT,
  parsePostedForm,
  parseProof,
} from './pageForms.js';
import { newNonce, type PagePowers, pageHeaders } from './pageHeaders.js';
import { enrollmentPageRoutes } from './enrollmentPageRoutes.js';
import { ownerPageRoutes } from './ownerPageRoutes.js';
import { changePageRoutes, setOwnerDeviceCookie } from './changePageRoutes.js';
import { adminPageRoutes } from './adminPageRoutes.js';
import { fullyShown, offersPasskey, renderApprovalPage, renderDecisionPage, renderNoticePage } from './renderApprovalPage.js';
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

/**
 * How a failure outside a page's own decision is answered, on whichever listener serves the pages:
 * logged (as an error only when something failed, not for sealed or busy), its Retry-After kept,
 * and the notice page that says it — sealed, busy, a form too large, not a form, a bad request, or
 * a failure. Nothing was decided in any of them.
 */
export function failureNotice(request: FastifyRequest, reply: FastifyReply, error: unknown): { custos: CustosError; notice: Notice } {
  const custos = toCustosError(error);
  if (custos.status >= 500 && custos.code !== 'sealed' && custos.code !== 'overloaded')
    request.log.error({ err: custos, errorCode: custos.code }, `page failed: ${custos.code}`);
  else request.log.info({ errorCode: custos.code }, `page refused: ${custos.code}`);
  const retryAfter = custos.details.retryAfterSeconds;
  if (typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
  return { custos, notice: noticeOf(custos) };
}

function noticeOf(custos: CustosError): Notice {
  switch (custos.code) {
    case 'sealed':
      return SEALED;
    case 'overloaded':
      return { status: 503, title: 'Busy', text: ['The signer is busy. Nothing was decided. Try again in a moment.'] };
    case 'body_too_large':
      return { status: 413, title: 'Form too large', text: ['The form sent was too large. Nothing was decided.'] };
    case 'unsupported_media_type':
      return { status: 415, title: 'Not a form', text: ['Only this page’s own form is accepted here. Nothing was decided.'] };
    default:
      if (custos.status < 500) return { status: 400, title: 'Bad request', text: ['The request was not understood. Nothing was decided.'] };
      return { status: custos.status, title: 'Something went wrong', text: ['The signer could not do this now. Nothing was decided.'] };
  }
}

/** The route a page's script asks for an approval's challenge by (assets/passkey.js): it answers JSON. */
const CHALLENGE_ROUTE = '/approve/:capability/challenge';

/** Refusals of a posted decision, in plain words (the approval page is shown again below them). */
function refusalText(error: CustosError): string {
  switch (error.code) {
    case 'passkey_invalid':
      return 'The passkey’s answer did not check out for this request. Nothing was decided. Press “Approve with passkey” and use this wallet’s passkey.';
    case 'passkey_user_not_verified':
      return 'The passkey did not confirm that it was you (PIN, fingerprint or face). Nothing was decided. Try again and confirm on your device.';
    case 'passkey_counter_invalid':
      return 'This passkey’s use counter went backwards: the passkey may have been copied. Nothing was decided. Tell the operator of this signer.';
    case 'challenge_required':
      return error.details.field === 'signature'
        ? 'That signature answers an earlier challenge, or none was shown. Nothing was decided. Show a new challenge and sign it with the card.'
        : 'The passkey answered an earlier attempt, or none was asked for. Nothing was decided. Press “Approve with passkey” again.';
    case 'passkeys_unavailable':
      return 'Passkeys are not available on this signer. Nothing was decided.';
    case 'factor_required':
      return 'This wallet has no factor of that kind to approve with. Nothing was decided.';
    case 'code_invalid':
      return error.details.triesLeft !== undefined
        ? `Wrong code. Nothing was decided. Check the code in the message you received (${String(error.details.triesLeft)} tries left).`
        : 'Wrong code. Nothing was decided. Check the code in your authenticator app and try again.';
    case 'code_expired':
      return 'The code in your message has expired. Nothing was decided. Press “Send a new code”.';
    case 'code_tries_exhausted':
      return 'Too many wrong codes for this request: it can no longer be approved with a code. Nothing was decided.';
    case 'delivery_limited':
      return 'No new code was sent: too many messages were sent for this request or this wallet. Use the code you already received, or try later.';
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
      return 'This wallet needs a passkey to approve (or a hardware key added on this signer’s page): a code, or a card the app added, is not enough. Nothing was decided.';
    case 'hwkey_invalid':
      return 'The card’s signature does not check out for this request’s challenge and this wallet’s card. Nothing was decided. Show a new challenge and sign it with the card.';
    case 'hwkey_signature_high_s':
      return 'The signature has a high s value, which a card does not make: it was altered. Nothing was decided.';
    case 'hwkey_challenge_rate_limited':
      return 'Too many challenges were asked for this wallet: wait a few minutes, then show a new one. Nothing was decided.';
    case 'invalid_input': {
      const field = String(error.details.field ?? '');
      if (field === 'decision' || field === 'kind') return 'The form was incomplete. Nothing was decided.';
      if (field.startsWith('proof')) return 'The passkey’s answer could not be read. Nothing was decided. Press “Approve with passkey” again.';
      return 'The code must be the 6 digits shown by your authenticator app. Nothing was decided.';
    }
    case 'wallet_frozen':
      return 'This wallet is frozen: nothing can be approved or signed for it until it is unfrozen. Nothing was decided. You can still reject the request.';
    case 'policy_limit_exceeded':
      return 'This wallet’s limits do not allow this request now (its spending or signature limit for the period is reached). Nothing was decided.';
    case 'policy_destination_not_allowed':
      return 'This wallet’s policy does not allow sending to this destination. Nothing was decided.';
    case 'policy_operation_not_allowed':
      return 'This wallet’s policy does not allow this kind of operation. Nothing was decided.';
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

/**
 * A card refused as too weak on the approval page: this browser did not send the card's device
 * cookie (or the challenge was not issued to it), so its answer counts only as relayed.
 */
const HWKEY_OTHER_BROWSER =
  'On this wallet, the hardware key approves only in the browser it was added in: this one is not it (or the challenge was not shown here). Nothing was decided. Open the link in that browser; if it is lost (cookies cleared, a new device), ask the service to reset the card.';

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
  'passkey_invalid',
  'passkey_user_not_verified',
  'passkey_counter_invalid',
  'challenge_required',
  'passkeys_unavailable',
  'hwkey_invalid',
  'hwkey_signature_high_s',
  'hwkey_challenge_rate_limited',
  'code_expired',
  'code_tries_exhausted',
  'delivery_limited',
  'wallet_frozen',
  'policy_limit_exceeded',
  'policy_destination_not_allowed',
  'policy_operation_not_allowed',
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
  const assets = readPageAssets();
  const passkeyScripts = [assets.webauthn.path, assets.passkey.path];

  /** Sends a page with a fresh nonce and the page headers (its CSP lets the passkey scripts run only where `powers` say). */
  function sendPage(reply: FastifyReply, status: number, render: (ctx: PageContext) => string, powers: PagePowers = {}): FastifyReply {
    const nonce = newNonce();
    const body = render({ brandName, lang, nonce, passkeyScripts });
    return reply.status(status).headers(pageHeaders(nonce, powers)).send(body);
  }
  const sendNotice = (reply: FastifyReply, notice: Notice) => sendPage(reply, notice.status, (ctx) => renderNoticePage(ctx, notice));

  // Only forms are read here (the API's JSON parser is not inherited), bounded to 4 KiB.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT }, (_request, body, done) => {
    done(null, body);
  });

  // Failures on a page are pages: sealed, overloaded, a body too large or not a form. The
  // challenge route's are JSON, for the script that asked.
  app.setErrorHandler((error, request, reply) => {
    const { custos, notice } = failureNotice(request, reply, error);
    if (request.routeOptions.url === CHALLENGE_ROUTE) return sendJson(reply, custos.status, errorBody(custos));
    return sendNotice(reply, notice);
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
  function formTokenFor(
    request: FastifyRequest,
    reply: FastifyReply,
    capability: string,
    path: '/approve/' | '/enroll/' | '/owner/' | '/changes/' | '/admin/' = '/approve/',
  ): string {
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

  // The passkey step's scripts: the kernel's own files, under names that change with their content.
  for (const asset of [assets.webauthn, assets.passkey])
    app.get(asset.path, { schema: { hide: true } }, async (_request, reply) => reply.headers(ASSET_HEADERS).send(asset.body));

  enrollmentPageRoutes(app, {
    kernel,
    sendPage,
    sendNotice,
    capabilityOf,
    originAllowed,
    formTokenFor: (request, reply, capability) => formTokenFor(request, reply, capability, '/enroll/'),
    secureCookie,
    formChecks: (request, capability) => {
      const { csrf } = parsePostedForm(request.body);
      return csrf !== undefined && formCookieValues(request.headers.cookie).some((value) => kernel.checkPageFormToken(capability, value, csrf));
    },
  });

  // The wallet owner's page ("this was not me" and activity, docs/freeze.md).
  ownerPageRoutes(app, {
    kernel,
    sendPage,
    sendNotice,
    capabilityOf,
    originAllowed,
    formTokenFor: (request, reply, capability) => formTokenFor(request, reply, capability, '/owner/'),
    secureCookie,
    formChecks: (request, capability) => {
      const { csrf } = parsePostedForm(request.body);
      return csrf !== undefined && formCookieValues(request.headers.cookie).some((value) => kernel.checkPageFormToken(capability, value, csrf));
    },
  });

  // Issue 13: the page of a timelocked change (confirm, cancel).
  changePageRoutes(app, {
    kernel,
    sendPage,
    sendNotice,
    capabilityOf,
    originAllowed,
    formTokenFor: (request, reply, capability) => formTokenFor(request, reply, capability, '/changes/'),
    secureCookie,
    formChecks: (request, capability) => {
      const { csrf } = parsePostedForm(request.body);
      return csrf !== undefined && formCookieValues(request.headers.cookie).some((value) => kernel.checkPageFormToken(capability, value, csrf));
    },
  });

  // Issue 13 point 4: the admin pages (admin passkey enrolment, login, proposals; docs/quorum.md).
  adminPageRoutes(app, {
    kernel,
    sendPage,
    sendNotice,
    capabilityOf,
    originAllowed,
    formTokenFor: (request, reply, capability) => formTokenFor(request, reply, capability, '/admin/'),
    secureCookie,
    formChecks: (request, capability) => {
      const { csrf } = parsePostedForm(request.body);
      return csrf !== undefined && formCookieValues(request.headers.cookie).some((value) => kernel.checkPageFormToken(capability, value, csrf));
    },
  });

  /** The approval page (again, with a refusal above it after a post); with the passkey scripts when it offers the passkey step. */
  function showApproval(
    request: FastifyRequest,
    reply: FastifyReply,
    capability: string,
    status: number,
    page: ApprovalPage,
    refusal?: { text: string; code?: string },
    hwkeyChallenge?: { digest: string; subpath: string; expiresAt: number },
  ): FastifyReply {
    const formToken = page.approval.state === 'pending' ? formTokenFor(request, reply, capability) : '';
    return sendPage(
      reply,
      status,
      (ctx) =>
        renderApprovalPage(ctx, {
          page,
          formToken,
          tokens: tokenList,
          ...(refusal === undefined ? {} : { refusal: refusal.text }),
          ...(refusal?.code === undefined ? {} : { refusalCode: refusal.code }),
          ...(hwkeyChallenge === undefined ? {} : { hwkeyChallenge }),
        }),
      offersPasskey(page, tokenList) ? { scripts: true, connect: true } : {},
    );
  }

  app.get('/approve/*', { schema: { hide: true } }, async (request, reply) => {
    const capability = capabilityOf(request);
    if (capability === undefined) return sendNotice(reply, NOT_FOUND);
    const page = await openPage(capability);
    if (page === undefined) return sendNotice(reply, NOT_FOUND);
    return showApproval(request, reply, capability, 200, page);
  });

  /**
   * `POST /approve/<capability>/challenge` (form fields `csrf`, `kind=passkey`), from the page's own
   * script: the kernel's challenge for this approval (kernel.issueApprovalChallenge) as JSON
   * `{ options, expiresAt }` — the options for the browser's passkey dialog. The same checks as a
   * decision (the signer's Origin, this browser's token for this page) before anything is looked
   * up; refusals are JSON `{ error: { code, … } }`. It decides nothing: the answer comes back with
   * the decision form.
   */
  app.post(CHALLENGE_ROUTE, { schema: { hide: true }, bodyLimit: FORM_BODY_LIMIT }, async (request, reply) => {
    const segment = (request.params as Record<string, unknown>).capability;
    if (typeof segment !== 'string' || !CAPABILITY.test(segment))
      return sendJson(reply, 404, errorBody(new CustosError('approval_not_found', 'no approval at this address', { details: { field: 'capability' } })));
    const capability = segment;
    if (!originAllowed(request))
      return sendJson(reply, 403, errorBody(new CustosError('forbidden_origin', 'not sent from this signer’s own page', { details: { field: 'origin' } })));
    const form = parsePostedForm(request.body);
    const { csrf } = form;
    if (csrf === undefined || !formCookieValues(request.headers.cookie).some((value) => kernel.checkPageFormToken(capability, value, csrf)))
      return sendJson(
        reply,
        403,
        errorBody(new CustosError('forbidden_origin', 'not sent with this browser’s token for this page', { details: { field: 'csrf' } })),
      );
    try {
      const { options, expiresAt } = await kernel.issueApprovalChallenge(capability, { kind: form.kind });
      return sendJson(reply, 200, { options, expiresAt });
    } catch (error) {
      if (!isCustosError(error)) throw error;
      request.log.info({ errorCode: error.code }, `challenge refused: ${error.code}`);
      const retryAfter = error.details.retryAfterSeconds;
      if (typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
      return sendJson(reply, error.status, errorBody(error));
    }
  });

  /** Issues a hardware-key challenge for the approval (rate-limited per wallet) and shows the page with it; a refusal is shown on the page. */
  async function showHwkeyChallenge(request: FastifyRequest, reply: FastifyReply, capability: string): Promise<FastifyReply> {
    const shown = await openPage(capability);
    if (shown === undefined) return sendNotice(reply, NOT_FOUND);
    if (!fullyShown(shown, tokenList))
      return showApproval(request, reply, capability, 403, shown, {
        text: 'This request cannot be approved on this page: part of it could not be shown. Nothing was decided.',
      });
    try {
      // Issued to this browser (`via: page`) only with the card's device cookie; else as a relay's,
      // refused up front (consent_too_weak) where a relayed answer cannot meet the requirement.
      const { options } = await kernel.issueApprovalChallenge(capability, {
        kind: 'hwkey',
        deviceTokens: deviceCookieValues(request.headers.cookie, deviceCookieName(shown.approval.walletName, secureCookie)),
      });
      const challenge = options as { digest: string; subpath: string; expiresAt: number };
      return showApproval(request, reply, capability, 200, shown, undefined, challenge);
    } catch (error) {
      if (!isCustosError(error)) throw error;
      if (error.code === 'approval_not_found') return sendNotice(reply, NOT_FOUND);
      if (!REFUSALS.has(error.code)) throw error;
      const retryAfter = error.details.retryAfterSeconds;
      if (typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
      const page = (await openPage(capability)) ?? shown;
      const text = error.code === 'consent_too_weak' && !apiEnrolledCard(page) ? HWKEY_OTHER_BROWSER : refusalText(error);
      return showApproval(request, reply, capability, ERROR_CODES[error.code].status, page, { text, code: error.code });
    }
  }

  app.post('/approve/*', { schema: { hide: true }, bodyLimit: PROOF_FORM_BODY_LIMIT }, async (request, reply) => {
    const capability = capabilityOf(request);
    if (capability === undefined) return sendNotice(reply, NOT_FOUND);
    // A form from another origin, or without this browser's token for this page, decides nothing.
    if (!originAllowed(request)) return sendNotice(reply, FORBIDDEN);
    const form = parsePostedForm(request.body);
    const cookies = formCookieValues(request.headers.cookie);
    const { csrf } = form;
    if (csrf === undefined || !cookies.some((value) => kernel.checkPageFormToken(capability, value, csrf))) return sendNotice(reply, FORBIDDEN);
    // The hardware-key step: a new challenge for the card, shown on the page again (the digest, the subpath, the signature field).
    if (form.decision === 'hwkey-challenge') return showHwkeyChallenge(request, reply, capability);
    if (form.decision === 'resend') {
      // A new delivered code (the page's button): never resets a count; limited by the kernel.
      try {
        await kernel.resendApprovalCode({ capability });
        const page = await openPage(capability);
        if (page === undefined) return sendNotice(reply, NOT_FOUND);
        return showApproval(request, reply, capability, 200, page, { text: 'A new code was sent. The earlier code no longer works.', code: 'resent' });
      } catch (error) {
        if (!isCustosError(error)) throw error;
        if (error.code === 'approval_not_found') return sendNotice(reply, NOT_FOUND);
        if (!REFUSALS.has(error.code)) throw error;
        const page = await openPage(capability);
        if (page === undefined) return sendNotice(reply, NOT_FOUND);
        return showApproval(request, reply, capability, ERROR_CODES[error.code].status, page, { text: refusalText(error), code: error.code });
      }
    }
    if (form.decision !== 'approve' && form.decision !== 'reject')
      return sendNotice(reply, { status: 400, title: 'Bad request', text: ['The form was incomplete. Nothing was decided.'] });
    let device: string[] = [];
    if (form.decision === 'approve') {
      // What the page could not show in full is not approved from it, even by a form posted anyway.
      const shown = await openPage(capability);
      if (shown === undefined) return sendNotice(reply, NOT_FOUND);
      if (!fullyShown(shown, tokenList))
        return showApproval(request, reply, capability, 403, shown, {
          text: 'This request cannot be approved on this page: part of it could not be shown. Nothing was decided.',
        });
      device = deviceCookieValues(request.headers.cookie, deviceCookieName(shown.approval.walletName, secureCookie));
    }
    try {
      const decided = await kernel.decideApproval(capability, decisionOf(form), device);
      // Approved with a factor on this page: this browser is an owner device from now on (kernel/ownerDevice.ts).
      if (decided.state === 'approved' || decided.state === 'consumed') await setOwnerDeviceCookie(kernel, reply, decided.walletName, secureCookie);
      return sendPage(reply, 200, (ctx) => renderDecisionPage(ctx, decided, tokenList));
    } catch (error) {
      if (!isCustosError(error)) throw error;
      if (error.code === 'approval_not_found') return sendNotice(reply, NOT_FOUND);
      if (!REFUSALS.has(error.code)) throw error;
      const page = await openPage(capability);
      if (page === undefined) return sendNotice(reply, NOT_FOUND);
      const retryAfter = error.details.retryAfterSeconds;
      if (typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
      const text = error.code === 'consent_too_weak' && form.kind === 'hwkey' && !apiEnrolledCard(page) ? HWKEY_OTHER_BROWSER : refusalText(error);
      return showApproval(request, reply, capability, ERROR_CODES[error.code].status, page, { text, code: error.code });
    }
  });
}

/**
 * The kernel's decision from a posted form: reject; approve with a code (the code form, no `kind`);
 * or approve with a passkey (`kind=passkey`, its answer as JSON in `proof`, parsed and bounded here,
 * checked by the kernel). Throws invalid_input naming `kind` or `proof`.
 */
function decisionOf(form: ReturnType<typeof parsePostedForm>): ApprovalDecision {
  if (form.decision === 'reject') return { decision: 'reject' };
  if (form.kind === undefined || form.kind === 'totp') return { decision: 'approve', kind: 'totp', proof: form.code ?? '' };
  if (form.kind === 'passkey') return { decision: 'approve', kind: 'passkey', proof: parseProof(form.proof) };
  if (form.kind === 'hwkey') return { decision: 'approve', kind: 'hwkey', proof: (form.signature ?? '').trim() };
  if (form.kind === 'oob') return { decision: 'approve', kind: 'oob', proof: form.code ?? '' };
  throw new CustosError('invalid_input', 'kind: expected totp, passkey, hwkey or oob', { details: { field: 'kind' } });
}

/** Whether the wallet's card was enrolled by the app (its answers are `present` in any browser). */
function apiEnrolledCard(page: ApprovalPage): boolean {
  return page.factors.some((f) => f.kind === 'hwkey' && f.enrolledVia === 'api');
}

/** A JSON answer to the page's script: never cached, never sniffed. */
function sendJson(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply
    .status(status)
    .headers({ 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
    .send(JSON.stringify(body));
}
