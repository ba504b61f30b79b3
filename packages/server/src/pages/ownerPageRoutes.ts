import { CustosError, ERROR_CODES, type ErrorCode, isCustosError, type Kernel, type OwnerPage } from '@custos/kernel';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorBody } from '../errorHandler.js';
import {
  deviceCookieName,
  deviceCookieValues,
  FORM_BODY_LIMIT,
  ownerDeviceCookieValues,
  PROOF_FORM_BODY_LIMIT,
  parsePostedForm,
  parseProof,
} from './pageForms.js';
import type { PagePowers } from './pageHeaders.js';
import type { Notice } from './pageRoutes.js';
import type { PageContext } from './renderDocument.js';
import { CHANGE_REFUSALS, changeRefusalText, setOwnerDeviceCookie } from './changePageRoutes.js';
import { onlyField } from './pagePost.js';
import { ownerPageScripts, renderOwnerPage } from './renderOwnerPage.js';

const CAPABILITY = /^[A-Za-z0-9_-]{43}$/;

function sendJson(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply
    .status(status)
    .headers({ 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
    .send(JSON.stringify(body));
}

/** What the owner page takes from pageRoutes: its page helpers, form token and checks. */
export interface OwnerPageDeps {
  kernel: Kernel;
  sendPage(reply: FastifyReply, status: number, render: (ctx: PageContext) => string, powers?: PagePowers): FastifyReply;
  sendNotice(reply: FastifyReply, notice: Notice): FastifyReply;
  capabilityOf(request: FastifyRequest): string | undefined;
  originAllowed(request: FastifyRequest): boolean;
  /** The form token of this page in this browser (sets the cookie, Path=/owner/, when it has none). */
  formTokenFor(request: FastifyRequest, reply: FastifyReply, capability: string): string;
  /** Whether the posted form carries this browser's token for this page. */
  formChecks(request: FastifyRequest, capability: string): boolean;
  /** Whether cookies are set Secure (the public URL is https). */
  secureCookie: boolean;
}

function ownerNotFound() {
  return new CustosError('owner_page_not_found', 'no wallet owner page matches this address', { details: { field: 'capability' } });
}

const NOT_FOUND: Notice = {
  status: 404,
  title: 'Page not found',
  text: ['There is no wallet page at this address.', 'Check that the link was copied whole, or open it again from a recent message.'],
};
const FORBIDDEN: Notice = {
  status: 403,
  title: 'Form refused',
  text: [
    'This form was not sent from this signer’s own page in this browser, so it was refused. Nothing was changed.',
    'Open the link you were given again and press the button there.',
  ],
};

/** Refusals of an unfreeze step, shown on the page again (the wallet stays frozen). */
const UNFREEZE_REFUSALS = new Set<ErrorCode>([
  'code_invalid',
  'code_required',
  'code_expired',
  'code_reused',
  'code_tries_exhausted',
  'challenge_required',
  'consent_too_weak',
  'factor_required',
  'passkey_invalid',
  'passkey_user_not_verified',
  'passkey_counter_invalid',
  'passkeys_unavailable',
  'factor_throttled',
  'delivery_limited',
  'delivery_unavailable',
  'invalid_input',
  'hwkey_invalid',
  'hwkey_signature_high_s',
]);

function unfreezeRefusal(error: CustosError): string {
  switch (error.code) {
    case 'code_invalid':
      return 'Wrong code. The wallet stays frozen. Type the 8 digits of the message you received.';
    case 'code_expired':
    case 'challenge_required':
    case 'code_reused':
      return 'That code no longer works. The wallet stays frozen. Ask for a new code.';
    case 'factor_required':
      return 'This wallet has no factor that can unfreeze it here: only the signer’s administrators can unfreeze it.';
    case 'passkey_invalid':
    case 'passkey_user_not_verified':
    case 'passkey_counter_invalid':
      return 'The passkey’s answer did not check out. The wallet stays frozen. Press “Unfreeze with passkey” again and confirm on your device.';
    case 'hwkey_invalid':
    case 'hwkey_signature_high_s':
      return 'The card’s signature does not match this freeze’s challenge. The wallet stays frozen. Sign the challenge shown below again, at the subpath shown.';
    case 'consent_too_weak':
      return 'This answer is not strong enough to unfreeze: a card counts only in the browser where it was added to this wallet on this signer’s page. The wallet stays frozen.';
    case 'factor_throttled':
    case 'code_tries_exhausted':
      return 'Too many wrong codes. The wallet stays frozen. Try again later.';
    case 'delivery_limited':
    case 'delivery_unavailable':
      return 'No code can be sent now. The wallet stays frozen. Try again later.';
    default:
      return 'The wallet stays frozen: this could not be done.';
  }
}

/**
 * The wallet owner's page (docs/freeze.md): `GET /owner/<capability>` shows the wallet's state and
 * recent activity and changes nothing (mail scanners open links); `POST` with the page's form
 * (`csrf`, `decision=freeze`) freezes the wallet — "this was not me" — with no factor. The form's
 * Origin and this browser's token for this page are checked first, as on the other pages.
 */
export function ownerPageRoutes(app: FastifyInstance, deps: OwnerPageDeps): void {
  const { kernel, sendPage, sendNotice, capabilityOf } = deps;

  /** The wallet's card device cookies this request carries (the enrolment page sets one with Path=/owner/ too). */
  async function ownerDeviceTokens(request: FastifyRequest, capability: string): Promise<string[]> {
    const page = await openPage(capability);
    return page === undefined ? [] : deviceCookieValues(request.headers.cookie, deviceCookieName(page.walletName, deps.secureCookie));
  }

  async function openPage(capability: string): Promise<OwnerPage | undefined> {
    try {
      return await kernel.openOwnerPage(capability);
    } catch (error) {
      if (isCustosError(error) && error.code === 'owner_page_not_found') return undefined;
      throw error;
    }
  }

  function show(
    request: FastifyRequest,
    reply: FastifyReply,
    capability: string,
    status: number,
    page: OwnerPage,
    notice?: string,
    refusal?: { text: string; code: string },
  ): FastifyReply {
    const formToken = deps.formTokenFor(request, reply, capability);
    // `?change=<id>` (GET): the open change whose cancel the page's one passkey step answers.
    const query = (request.query ?? {}) as Record<string, unknown>;
    const passkeyChange = request.method === 'GET' && typeof query.change === 'string' ? query.change : undefined;
    return sendPage(
      reply,
      status,
      (ctx) =>
        renderOwnerPage(ctx, {
          page,
          formToken,
          ...(notice === undefined ? {} : { notice }),
          ...(refusal === undefined ? {} : { refusal }),
          ...(passkeyChange === undefined ? {} : { passkeyChange }),
        }),
      ownerPageScripts(page, passkeyChange) ? { scripts: true, connect: true } : {},
    );
  }

  app.get('/owner/*', { schema: { hide: true } }, async (request, reply) => {
    const capability = capabilityOf(request);
    if (capability === undefined) return sendNotice(reply, NOT_FOUND);
    const page = await openPage(capability);
    if (page === undefined) return sendNotice(reply, NOT_FOUND);
    return show(request, reply, capability, 200, page);
  });

  /**
   * `POST /owner/<capability>/challenge` (form fields `csrf`, `kind=passkey`), from the page's own
   * script (assets/passkey.js): the options for the passkey's answer to this freeze's challenge, as
   * JSON `{ options, expiresAt }`; the same Origin and token checks as the forms; decides nothing.
   */
  app.post('/owner/:capability/challenge', { schema: { hide: true }, bodyLimit: FORM_BODY_LIMIT }, async (request, reply) => {
    const segment = (request.params as Record<string, unknown>).capability;
    if (typeof segment !== 'string' || !CAPABILITY.test(segment)) return sendJson(reply, 404, errorBody(ownerNotFound()));
    if (!deps.originAllowed(request) || !deps.formChecks(request, segment))
      return sendJson(
        reply,
        403,
        errorBody(new CustosError('forbidden_origin', 'not sent from this signer’s own page in this browser', { details: { field: 'csrf' } })),
      );
    try {
      const { kind } = parsePostedForm(request.body);
      return sendJson(reply, 200, await kernel.unfreezeChallengeOptions(segment, { kind }));
    } catch (error) {
      if (!isCustosError(error)) throw error;
      request.log.info({ errorCode: error.code }, `challenge refused: ${error.code}`);
      return sendJson(reply, error.status, errorBody(error));
    }
  });

  app.post('/owner/*', { schema: { hide: true }, bodyLimit: PROOF_FORM_BODY_LIMIT }, async (request, reply) => {
    const capability = capabilityOf(request);
    if (capability === undefined) return sendNotice(reply, NOT_FOUND);
    // A form from another origin, or without this browser's token for this page, changes nothing.
    if (!deps.originAllowed(request) || !deps.formChecks(request, capability)) return sendNotice(reply, FORBIDDEN);
    const { decision, code, kind, proof, signature } = parsePostedForm(request.body);
    let page: OwnerPage;
    let notice: string;
    try {
      if (decision === 'freeze') {
        page = await kernel.freezeWalletByOwner(capability);
        notice = 'Frozen. Nothing can be signed for this wallet until it is unfrozen.';
      } else if (decision === 'unfreeze-code') {
        page = await kernel.sendUnfreezeCode(capability);
        notice = 'A code was sent to your address for signing codes. Type it below to unfreeze the wallet.';
      } else if (decision === 'unfreeze') {
        page = await kernel.unfreezeWalletByOwner(
          capability,
          kind === 'passkey'
            ? { kind: 'passkey', proof: parseProof(proof) }
            : kind === 'hwkey'
              ? // A card's answer counts only with the device cookie of the browser it was enrolled in (Path=/owner/).
                { kind: 'hwkey', proof: { signature }, deviceTokens: await ownerDeviceTokens(request, capability) }
              : { kind: 'oob', proof: code },
        );
        notice = 'Unfrozen. The wallet signs again, with your approval as before.';
        // The owner proved a factor here: this browser is an owner device from now on (kernel/ownerDevice.ts).
        await setOwnerDeviceCookie(kernel, reply, page.walletName, deps.secureCookie);
      } else if (decision === 'cancel-change') {
        // Any current factor of the wallet cancels one of its open changes (the kernel checks the change is this wallet's).
        const answer =
          kind === 'passkey'
            ? { kind, proof: parseProof(proof) }
            : kind === 'hwkey'
              ? { kind, proof: { signature: signature ?? '' } }
              : { ...(kind === undefined ? {} : { kind }), ...(code === undefined ? {} : { proof: code }) };
        // This browser's owner-device cookies (Path=/owner/): the answer counts on the device's own budget.
        const shown = await openPage(capability);
        const owned = shown === undefined ? [] : ownerDeviceCookieValues(request.headers.cookie, shown.walletName, deps.secureCookie);
        const cancelled = await kernel.cancelChangeFromOwnerPage(capability, onlyField(request.body, 'change'), { ...answer, deviceTokens: owned });
        await setOwnerDeviceCookie(kernel, reply, cancelled.walletName, deps.secureCookie);
        page = await kernel.openOwnerPage(capability);
        notice = 'Cancelled. The change will not take effect; your wallet’s protection stays as it was.';
      } else return sendNotice(reply, { status: 400, title: 'Bad request', text: ['The request was not understood. Nothing was changed.'] });
    } catch (error) {
      if (isCustosError(error) && error.code === 'owner_page_not_found') return sendNotice(reply, NOT_FOUND);
      const cancelling = decision === 'cancel-change';
      // A cancel's refusals are the change page's (a change id not of this wallet: not found, shown here).
      const shown =
        isCustosError(error) && (cancelling ? CHANGE_REFUSALS.has(error.code) || error.code === 'change_not_found' : UNFREEZE_REFUSALS.has(error.code));
      if (!isCustosError(error) || !shown) throw error;
      const current = await openPage(capability);
      if (current === undefined) return sendNotice(reply, NOT_FOUND);
      const text = cancelling
        ? error.code === 'change_not_found'
          ? 'There is no open change of this wallet with this id. Nothing was cancelled.'
          : changeRefusalText(error)
        : unfreezeRefusal(error);
      return show(request, reply, capability, ERROR_CODES[error.code].status, current, undefined, { text, code: error.code });
    }
    return show(request, reply, capability, 200, page, notice);
  });
}
