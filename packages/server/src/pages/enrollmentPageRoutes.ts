import { type CustosError, isCustosError, type Kernel } from '@custos/kernel';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { setOwnerDeviceCookie } from './changePageRoutes.js';
import { deviceCookieHeaders, PROOF_FORM_BODY_LIMIT, parsePostedForm, parseProof } from './pageForms.js';
import { answerPostedStep, onlyField } from './pagePost.js';
import type { PagePowers } from './pageHeaders.js';
import type { Notice } from './pageRoutes.js';
import type { PageContext } from './renderDocument.js';
import { offersPasskeyEnrollment, renderEnrolledPage, renderEnrollmentPage } from './renderEnrollmentPage.js';

/** What the enrolment page takes from pageRoutes: its page helpers, form token and checks. */
export interface EnrollmentPageDeps {
  kernel: Kernel;
  sendPage(reply: FastifyReply, status: number, render: (ctx: PageContext) => string, powers?: PagePowers): FastifyReply;
  sendNotice(reply: FastifyReply, notice: Notice): FastifyReply;
  capabilityOf(request: FastifyRequest): string | undefined;
  originAllowed(request: FastifyRequest): boolean;
  /** The form token of this page in this browser (sets the cookie, Path=/enroll/, when it has none). */
  formTokenFor(request: FastifyRequest, reply: FastifyReply, capability: string): string;
  /** Whether the posted form carries this browser's token for this page. */
  formChecks(request: FastifyRequest, capability: string): boolean;
  /** Whether cookies are set Secure (the public URL is https). */
  secureCookie: boolean;
}

const NOT_FOUND: Notice = {
  status: 404,
  title: 'Page not found',
  text: [
    'There is no enrolment link at this address.',
    'Check that the link was copied whole. A link that was never made and one that is gone look the same here.',
  ],
};
const FORBIDDEN: Notice = {
  status: 403,
  title: 'Form refused',
  text: [
    'This form was not sent from this signer’s own page in this browser, so it was refused. Nothing was enrolled.',
    'Open the link you were given again and activate there.',
  ],
};

/** Refusals of a posted code or passkey, in plain words (the page is shown again below them, or the link's state). */
function refusalText(error: CustosError, kind: string): string {
  switch (error.code) {
    case 'passkey_invalid':
      return 'The passkey could not be checked for this link. Nothing was enrolled. Press “Create a passkey” again.';
    case 'passkey_user_not_verified':
      return 'The passkey did not confirm that it was you (PIN, fingerprint or face), which this signer requires. Nothing was enrolled. Try again and confirm on your device, or use a device that can.';
    case 'passkeys_unavailable':
      return 'Passkeys are not available on this signer. Nothing was enrolled.';
    case 'passkey_counter_invalid':
      return 'This wallet’s passkey’s use counter went backwards: it may have been copied. Nothing was enrolled. Tell the operator of this signer.';
    case 'challenge_required':
      return 'The passkey did not answer this link’s confirmation. Nothing was enrolled. Press the button again.';
    case 'hwkey_invalid':
      return 'The card’s signature does not match the key you entered for this page’s challenge. Nothing was enrolled. Check the xpub and subpath, sign the challenge shown below again, and paste the new signature.';
    case 'hwkey_signature_high_s':
      return 'The signature has a high s value, which a card does not make: it was altered. Nothing was enrolled.';
    case 'code_invalid':
      return kind === 'oob'
        ? 'Wrong code. Nothing was enrolled. Type the 8 digits of the message you received.'
        : 'Wrong code. Nothing was enrolled. Check that the app shows this wallet’s new entry, and type its current code.';
    case 'code_expired':
      return 'The code expired. Nothing was enrolled. Send a new code.';
    case 'delivery_limited':
      return 'No more codes can be sent for this link. Ask the app for a new link.';
    case 'code_required':
      if (error.details.field === 'consent' && error.message.includes('authenticator app'))
        return 'Type a code from the authenticator app this wallet already uses: it confirms adding this factor. Nothing was enrolled.';
      if (error.details.field === 'consent' && kind === 'oob')
        return 'Changing the address needs the code sent to your current address (or this wallet’s passkey). Nothing was changed.';
      if (error.details.field === 'consent' && error.message.includes('current address'))
        return 'Adding a factor needs the code sent to your current address for signing codes: ask for it with the button, and type it with the rest. Nothing was enrolled.';
      if (error.details.field === 'consent') return 'This wallet already has a passkey: confirm the new factor with it. Nothing was enrolled.';
      if (kind === 'hwkey') return 'Sign the challenge shown below with the card and paste its signature. Nothing was enrolled.';
      if (kind === 'oob') return 'Set the address first and type the code sent there. Nothing was enrolled.';
      return kind === 'passkey'
        ? 'Create the passkey first: press “Create a passkey”. Nothing was enrolled.'
        : 'Type the code from your authenticator app to activate it. Nothing was enrolled.';
    case 'invalid_input': {
      const field = String(error.details.field ?? '');
      if (kind === 'hwkey')
        return `The ${field === 'xpub' ? 'xpub' : field === 'subpath' ? 'subpath' : field === 'publicKey' ? 'public key' : 'signature'} could not be used: ${error.message}. Nothing was enrolled.`;
      if (field.startsWith('consent')) return 'The confirmation of this wallet’s passkey could not be read. Nothing was enrolled. Press the button again.';
      if (field === 'address' || field === 'channel') return 'That address cannot be used. Check it and send it again.';
      if (kind === 'oob') return 'The code must be the 8 digits of the message you received. Nothing was enrolled.';
      return kind === 'passkey' || field.startsWith('proof')
        ? 'The passkey’s answer could not be read. Nothing was enrolled. Press “Create a passkey” again.'
        : 'The code must be the 6 digits shown by your authenticator app. Nothing was enrolled.';
    }
    case 'factor_throttled':
      return 'Too many wrong codes were typed for this wallet: its delivered codes are locked for now. Nothing was changed.';
    case 'code_tries_exhausted':
      return 'Too many wrong codes were typed for this change: ask the app for a new link. Nothing was changed.';
    case 'factor_required':
      return 'That passkey is not one of this wallet’s: confirm with the passkey this wallet already has. Nothing was enrolled.';
    case 'enrollment_expired':
      return 'This link has expired: nothing was enrolled. Ask the app for a new one.';
    case 'enrollment_used':
      return 'This link was already used, replaced by a newer one, or spent by wrong codes: nothing was enrolled. Ask the app for a new one.';
    case 'already_enrolled':
      return 'This wallet cannot take this factor (it has one already that only a code protects, or this passkey is registered already): nothing was enrolled.';
    default:
      return `The code was refused (${error.code}). Nothing was enrolled.`;
  }
}

/** Codes an activation may be refused with while the page itself is fine: the page is shown again, with the reason. */
const REFUSALS = new Set<string>([
  'code_invalid',
  'code_reused',
  'code_required',
  'invalid_input',
  'enrollment_expired',
  'enrollment_used',
  'already_enrolled',
  'passkey_invalid',
  'passkey_user_not_verified',
  'passkey_counter_invalid',
  'challenge_required',
  'passkeys_unavailable',
  'hwkey_invalid',
  'hwkey_signature_high_s',
  'code_expired',
  'delivery_limited',
  'factor_required',
  'factor_throttled',
  'code_tries_exhausted',
]);

/** The delivery-address step's fields (`channel`, `address`), when the form carries them (once each). */
function addressOf(body: unknown): { channel: string; address: string } | undefined {
  if (typeof body !== 'string') return undefined;
  const params = new URLSearchParams(body);
  const channel = params.getAll('channel');
  const address = params.getAll('address');
  if (address.length !== 1 || channel.length !== 1) return undefined;
  return { channel: channel[0] as string, address: address[0] as string };
}

/**
 * The enrolment page (issue 11): `GET /enroll/<capability>` shows the new factor (TOTP: QR code and
 * key) while the link is pending, `POST` with the form's code activates it. As on the approval page,
 * the unguessable capability is the authority, an unknown one is answered as a malformed one (404),
 * a GET never changes anything, and a POST needs this browser's form token and the signer's Origin.
 */
export function enrollmentPageRoutes(app: FastifyInstance, deps: EnrollmentPageDeps): void {
  const { kernel, sendPage, sendNotice, capabilityOf } = deps;

  async function openPage(capability: string) {
    try {
      return await kernel.openEnrollmentPage(capability);
    } catch (error) {
      if (isCustosError(error) && error.code === 'enrollment_not_found') return undefined;
      throw error;
    }
  }

  async function showPage(request: FastifyRequest, reply: FastifyReply, capability: string, status: number, refused?: CustosError) {
    const page = await openPage(capability);
    if (page === undefined) return sendNotice(reply, NOT_FOUND);
    const formToken = page.state === 'pending' ? deps.formTokenFor(request, reply, capability) : '';
    const refusal = refused === undefined ? {} : { refusal: refusalText(refused, page.kind), refusalCode: refused.code };
    return sendPage(reply, status, (ctx) => renderEnrollmentPage(ctx, { page, formToken, ...refusal }), { scripts: offersPasskeyEnrollment(page) });
  }

  /** How a posted step's refusal is answered (pagePost.ts): the not-found notice, or the page again with the refusal. */
  function refusalsOf(request: FastifyRequest, reply: FastifyReply, capability: string) {
    return {
      notFoundCode: 'enrollment_not_found' as const,
      refusals: REFUSALS,
      notFound: () => sendNotice(reply, NOT_FOUND),
      refused: (status: number, error: CustosError) => showPage(request, reply, capability, status, error),
    };
  }

  app.get('/enroll/*', { schema: { hide: true } }, async (request, reply) => {
    const capability = capabilityOf(request);
    if (capability === undefined) return sendNotice(reply, NOT_FOUND);
    return showPage(request, reply, capability, 200);
  });

  app.post('/enroll/*', { schema: { hide: true }, bodyLimit: PROOF_FORM_BODY_LIMIT }, async (request, reply) => {
    const capability = capabilityOf(request);
    if (capability === undefined) return sendNotice(reply, NOT_FOUND);
    // A form from another origin, or without this browser's token for this page, enrols nothing.
    if (!deps.originAllowed(request) || !deps.formChecks(request, capability)) return sendNotice(reply, FORBIDDEN);
    const { code, proof, consent, signature, xpub, subpath, publicKey } = parsePostedForm(request.body);
    const address = addressOf(request.body);
    if (onlyField(request.body, 'decision') === 'change-code') {
      // A change of address on a wallet without a passkey: the consent code goes to the current address.
      return answerPostedStep(
        async () => {
          await kernel.sendEnrollmentChangeCode(capability);
          return await showPage(request, reply, capability, 200);
        },
        refusalsOf(request, reply, capability),
      );
    }
    if (address !== undefined) {
      // Step 1 of a delivery address: the kernel seals it and sends a code to it (limited per link).
      return answerPostedStep(
        async () => {
          await kernel.setEnrollmentAddress(capability, address);
          return await showPage(request, reply, capability, 200);
        },
        refusalsOf(request, reply, capability),
      );
    }
    return answerPostedStep(
      async () => {
        // A hardware key's link posts the card's xpub and subpath (or public key) and its signature over the page's enrolment challenge.
        const page = await openPage(capability);
        if (page === undefined) return sendNotice(reply, NOT_FOUND);
        if (page.kind === 'hwkey') {
          // On a wallet that has a passkey, `consent` carries that passkey's answer, as on the other links.
          // On a TOTP-only wallet, `currentCode` (a code from its authenticator app) is the consent.
          const totpCode = page.consent?.kind === 'totp' || page.consent?.kind === 'oob' ? onlyField(request.body, 'currentCode') : undefined;
          const done = await kernel.completeEnrollment(capability, {
            proof: { xpub, subpath, publicKey, signature },
            ...(totpCode !== undefined ? { consent: totpCode } : consent === undefined ? {} : { consent: parseProof(consent, 'consent') }),
          });
          // This browser is the one the card approves in (`bound`): its device cookie, set here only.
          const token = await kernel.enrolledHwkeyDeviceToken(done.walletName);
          // Sent to the approval pages, the owner page (a card unfreezes only from this browser) and
          // the change pages (a card confirms a change only from this browser).
          if (token !== undefined) void reply.header('set-cookie', deviceCookieHeaders(done.walletName, token, { secure: deps.secureCookie }));
          await setOwnerDeviceCookie(kernel, reply, done.walletName, deps.secureCookie);
          return sendPage(reply, 200, (ctx) => renderEnrolledPage(ctx, done));
        }
        // The passkey step posts the browser's answer as JSON in `proof` (parsed and bounded here,
        // checked by the kernel); the authenticator-app form posts its `code`. On a wallet that has a
        // passkey, `consent` carries that passkey's answer to the link's confirmation challenge.
        // A change of address on a wallet without a passkey: `currentCode`, the code sent to the current address, is the consent.
        // On a TOTP-only wallet, `currentCode` is a code from its authenticator app.
        const currentCode =
          page.kind === 'oob' || page.consent?.kind === 'totp' || page.consent?.kind === 'oob' ? onlyField(request.body, 'currentCode') : undefined;
        const done = await kernel.completeEnrollment(capability, {
          proof: proof === undefined ? (code ?? '') : parseProof(proof),
          ...(currentCode !== undefined ? { consent: currentCode } : consent === undefined ? {} : { consent: parseProof(consent, 'consent') }),
        });
        // The owner enrolled (or consented) on this page: this browser is an owner device from now on (kernel/ownerDevice.ts).
        await setOwnerDeviceCookie(kernel, reply, done.walletName, deps.secureCookie);
        return sendPage(reply, 200, (ctx) => renderEnrolledPage(ctx, done));
      },
      refusalsOf(request, reply, capability),
    );
  });
}
