import { isCustosError, type Kernel, type OwnerPage } from '@custos/kernel';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FORM_BODY_LIMIT, parsePostedForm } from './pageForms.js';
import type { Notice } from './pageRoutes.js';
import type { PageContext } from './renderDocument.js';
import { renderOwnerPage } from './renderOwnerPage.js';

/** What the owner page takes from pageRoutes: its page helpers, form token and checks. */
export interface OwnerPageDeps {
  kernel: Kernel;
  sendPage(reply: FastifyReply, status: number, render: (ctx: PageContext) => string): FastifyReply;
  sendNotice(reply: FastifyReply, notice: Notice): FastifyReply;
  capabilityOf(request: FastifyRequest): string | undefined;
  originAllowed(request: FastifyRequest): boolean;
  /** The form token of this page in this browser (sets the cookie, Path=/owner/, when it has none). */
  formTokenFor(request: FastifyRequest, reply: FastifyReply, capability: string): string;
  /** Whether the posted form carries this browser's token for this page. */
  formChecks(request: FastifyRequest, capability: string): boolean;
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

/**
 * The wallet owner's page (docs/freeze.md): `GET /owner/<capability>` shows the wallet's state and
 * recent activity and changes nothing (mail scanners open links); `POST` with the page's form
 * (`csrf`, `decision=freeze`) freezes the wallet — "this was not me" — with no factor. The form's
 * Origin and this browser's token for this page are checked first, as on the other pages.
 */
export function ownerPageRoutes(app: FastifyInstance, deps: OwnerPageDeps): void {
  const { kernel, sendPage, sendNotice, capabilityOf } = deps;

  async function openPage(capability: string): Promise<OwnerPage | undefined> {
    try {
      return await kernel.openOwnerPage(capability);
    } catch (error) {
      if (isCustosError(error) && error.code === 'owner_page_not_found') return undefined;
      throw error;
    }
  }

  function show(request: FastifyRequest, reply: FastifyReply, capability: string, status: number, page: OwnerPage, notice?: string): FastifyReply {
    const formToken = deps.formTokenFor(request, reply, capability);
    return sendPage(reply, status, (ctx) => renderOwnerPage(ctx, { page, formToken, ...(notice === undefined ? {} : { notice }) }));
  }

  app.get('/owner/*', { schema: { hide: true } }, async (request, reply) => {
    const capability = capabilityOf(request);
    if (capability === undefined) return sendNotice(reply, NOT_FOUND);
    const page = await openPage(capability);
    if (page === undefined) return sendNotice(reply, NOT_FOUND);
    return show(request, reply, capability, 200, page);
  });

  app.post('/owner/*', { schema: { hide: true }, bodyLimit: FORM_BODY_LIMIT }, async (request, reply) => {
    const capability = capabilityOf(request);
    if (capability === undefined) return sendNotice(reply, NOT_FOUND);
    // A form from another origin, or without this browser's token for this page, changes nothing.
    if (!deps.originAllowed(request) || !deps.formChecks(request, capability)) return sendNotice(reply, FORBIDDEN);
    const { decision } = parsePostedForm(request.body);
    if (decision !== 'freeze') return sendNotice(reply, { status: 400, title: 'Bad request', text: ['The request was not understood. Nothing was changed.'] });
    let page: OwnerPage;
    try {
      page = await kernel.freezeWalletByOwner(capability);
    } catch (error) {
      if (isCustosError(error) && error.code === 'owner_page_not_found') return sendNotice(reply, NOT_FOUND);
      throw error;
    }
    return show(request, reply, capability, 200, page, 'Frozen. Nothing can be signed for this wallet until it is unfrozen.');
  });
}
