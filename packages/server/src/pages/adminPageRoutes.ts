import { ADMIN_SESSION_TTL_MS, type CustosError, computePayloadHash, ERROR_CODES, isCustosError, type Kernel } from '@custos/kernel';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PROOF_FORM_BODY_LIMIT, parsePostedForm, parseProof } from './pageForms.js';
import type { PagePowers } from './pageHeaders.js';
import type { Notice } from './pageRoutes.js';
import {
  renderAdminDraftPage,
  renderAdminEnrolledPage,
  renderAdminEnrollmentPage,
  renderAdminListPage,
  renderAdminLoginPage,
  renderAdminProposalPage,
  renderAdminProposeForm,
} from './renderAdminPage.js';
import type { PageContext } from './renderDocument.js';

/** What the admin pages take from pageRoutes: its page helpers, form token and checks. */
export interface AdminPageDeps {
  kernel: Kernel;
  sendPage(reply: FastifyReply, status: number, render: (ctx: PageContext) => string, powers?: PagePowers): FastifyReply;
  sendNotice(reply: FastifyReply, notice: Notice): FastifyReply;
  capabilityOf(request: FastifyRequest): string | undefined;
  originAllowed(request: FastifyRequest): boolean;
  /** The form token of `capability` in this browser (sets the form cookie, Path=/admin/, when it has none). */
  formTokenFor(request: FastifyRequest, reply: FastifyReply, capability: string): string;
  /** Whether the posted form carries this browser's token for `capability`. */
  formChecks(request: FastifyRequest, capability: string): boolean;
  secureCookie: boolean;
}

/** The admin page's session cookie (kernel/quorum/adminPasskeys.ts: a MAC'd admin id and expiry; 15 minutes). */
export const ADMIN_SESSION_COOKIE = 'custos_admin';
const SESSION_VALUE = /^pk:[0-9a-f]{64}\.\d{1,16}\.[0-9a-f]{64}$/;
const PROPOSAL_ID = /^[0-9a-f]{32}$/;
/** The form-token "capabilities" of the admin pages that have no capability in their URL. */
const LOGIN_FORM = 'admin-login';
const proposalForm = (id: string) => `admin-proposal:${id}`;
/** The propose step's first form (kind, payload, time to live): it only shows a draft. */
const DRAFT_FORM = 'admin-propose-draft';
/** The draft's form: its token binds the session's admin and the draft's id, kind, payload hash and expiry. */
const proposeForm = (admin: string, f: { id: unknown; kind: unknown; payloadHash: unknown; expiresAt: unknown }) =>
  JSON.stringify(['admin-propose', admin, f.id, f.kind, f.payloadHash, String(f.expiresAt)]);
/** The largest propose form (a payload of up to 16 KiB of JSON, URL-encoded, and a passkey answer). */
const PROPOSE_FORM_BODY_LIMIT = 160 * 1024;
const ADMIN_ID = /^pk:[0-9a-f]{64}$/;

const NOT_FOUND: Notice = {
  status: 404,
  title: 'Page not found',
  text: ['There is nothing at this address.', 'Check that the link was copied whole. A link that was never made and one that is gone look the same here.'],
};
const FORBIDDEN: Notice = {
  status: 403,
  title: 'Form refused',
  text: ['This form was not sent from this signer’s own page in this browser, so it was refused. Nothing was changed.', 'Open the page again and retry there.'],
};

function sessionCookieHeader(token: string, secure: boolean): string {
  return `${ADMIN_SESSION_COOKIE}=${token}; Path=/admin/; Max-Age=${Math.floor(ADMIN_SESSION_TTL_MS / 1000)}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/** The session cookie's well-formed value, if the browser sent exactly one. */
function sessionOf(request: FastifyRequest): string | undefined {
  const values: string[] = [];
  for (const pair of (request.headers.cookie ?? '').split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim() !== ADMIN_SESSION_COOKIE) continue;
    const value = pair.slice(eq + 1).trim();
    if (SESSION_VALUE.test(value)) values.push(value);
  }
  return values.length === 1 ? values[0] : undefined;
}

/** The admin pages' refusals in plain words (the kernel's code goes in `data-code`). */
function refusalText(error: CustosError): string {
  switch (error.code) {
    case 'admin_unknown':
      return 'That passkey is not one of the admin set’s. Nothing was changed.';
    case 'admin_signature_invalid':
      return 'The passkey’s answer does not verify for this proposal (or this sign-in). Nothing was changed.';
    case 'passkey_counter_invalid':
      return 'Your passkey’s use counter went backwards: it may have been copied. Nothing was changed. Tell the other admins.';
    case 'passkey_user_not_verified':
      return 'The passkey did not confirm that it was you (PIN, fingerprint or face), which this signer requires. Nothing was changed.';
    case 'passkey_invalid':
      return 'The passkey’s answer could not be checked. Nothing was changed. Try again.';
    case 'proposal_self_approval':
      return 'You proposed this change: your own approval does not count.';
    case 'proposal_already_approved':
      return 'You approved this proposal already: an admin counts once.';
    case 'proposal_payload_mismatch':
      return 'The proposal changed since this page was shown. Nothing was approved. Load it again and read it again.';
    case 'proposal_expired':
      return 'This proposal expired: it can no longer be approved.';
    case 'proposal_not_pending':
      return 'This proposal was decided already.';
    case 'proposal_exists':
      return 'A proposal with this id exists already: this draft was proposed once. Start again for a new one.';
    case 'unauthorized':
      return 'Your sign-in has expired: sign in again. Nothing was changed.';
    case 'quorum_not_configured':
      return 'No admin set is configured on this signer. Nothing was changed.';
    case 'challenge_required':
      return 'This page is too old: load it again.';
    case 'enrollment_used':
      return 'This link was used already: nothing was registered.';
    case 'enrollment_expired':
      return 'This link has expired: nothing was registered.';
    case 'already_enrolled':
      return 'This passkey is registered as an admin passkey already.';
    case 'code_required':
      return 'Create the passkey first: press “Create a passkey”.';
    case 'invalid_input':
      return 'The passkey’s answer could not be read. Nothing was changed. Try again.';
    case 'passkeys_unavailable':
      return 'Passkeys are not available on this signer (it was started without a public URL).';
    default:
      return `Refused (${error.code}). Nothing was changed.`;
  }
}

const REFUSALS = new Set<string>([
  'admin_unknown',
  'admin_signature_invalid',
  'passkey_counter_invalid',
  'passkey_user_not_verified',
  'passkey_invalid',
  'proposal_self_approval',
  'proposal_already_approved',
  'proposal_payload_mismatch',
  'proposal_expired',
  'proposal_not_pending',
  'proposal_exists',
  'unauthorized',
  'challenge_required',
  'enrollment_used',
  'enrollment_expired',
  'already_enrolled',
  'code_required',
  'invalid_input',
  'passkeys_unavailable',
  'quorum_not_configured',
]);

function refusalOf(error: unknown): { text: string; code: string } | undefined {
  if (!isCustosError(error) || !REFUSALS.has(error.code)) return undefined;
  return { text: refusalText(error), code: error.code };
}

/**
 * The admin pages (issue 13 point 4; docs/quorum.md "The admin page"). As on the other pages, a GET
 * never changes anything, and a POST needs this browser's form token and the signer's Origin.
 *  - `/admin/enroll/<capability>`: a new admin registers a passkey (a candidate);
 *  - `/admin/`: the login (a passkey admin of the set in force), then the list of proposals;
 *  - `/admin/proposals/<id>`: one proposal in full (with a session), and its "Approve" step: the
 *    assertion's challenge is SHA-256 of this proposal's approve statement; the kernel verifies it and
 *    counts it through the same approveProposal as an Ed25519 approval.
 */
export function adminPageRoutes(app: FastifyInstance, deps: AdminPageDeps): void {
  const { kernel, sendPage, sendNotice, capabilityOf } = deps;

  async function showEnrollment(request: FastifyRequest, reply: FastifyReply, capability: string, status: number, refusal?: { text: string; code: string }) {
    let page: Awaited<ReturnType<Kernel['openAdminEnrollmentPage']>>;
    try {
      page = await kernel.openAdminEnrollmentPage(capability);
    } catch (error) {
      if (isCustosError(error) && error.code === 'enrollment_not_found') return sendNotice(reply, NOT_FOUND);
      throw error;
    }
    const formToken = page.state === 'pending' ? deps.formTokenFor(request, reply, capability) : '';
    return sendPage(reply, status, (ctx) => renderAdminEnrollmentPage(ctx, { page, formToken, ...(refusal === undefined ? {} : { refusal }) }), {
      scripts: page.state === 'pending',
    });
  }

  app.get('/admin/enroll/*', { schema: { hide: true } }, async (request, reply) => {
    const capability = capabilityOf(request);
    if (capability === undefined) return sendNotice(reply, NOT_FOUND);
    return showEnrollment(request, reply, capability, 200);
  });

  app.post('/admin/enroll/*', { schema: { hide: true }, bodyLimit: PROOF_FORM_BODY_LIMIT }, async (request, reply) => {
    const capability = capabilityOf(request);
    if (capability === undefined) return sendNotice(reply, NOT_FOUND);
    if (!deps.originAllowed(request) || !deps.formChecks(request, capability)) return sendNotice(reply, FORBIDDEN);
    try {
      const { proof } = parsePostedForm(request.body);
      const done = await kernel.completeAdminEnrollment(capability, proof === undefined || proof === '' ? undefined : parseProof(proof));
      return sendPage(reply, 200, (ctx) => renderAdminEnrolledPage(ctx, done));
    } catch (error) {
      if (isCustosError(error) && error.code === 'enrollment_not_found') return sendNotice(reply, NOT_FOUND);
      const refusal = refusalOf(error);
      if (refusal === undefined) throw error;
      return showEnrollment(request, reply, capability, ERROR_CODES[refusal.code as keyof typeof ERROR_CODES].status, refusal);
    }
  });

  async function showLogin(request: FastifyRequest, reply: FastifyReply, status: number, refusal?: { text: string; code: string }, adminId?: string) {
    const { optionsJSON, issuedAt, nonce } = await kernel.adminLoginOptions(adminId === undefined ? {} : { adminId });
    const formToken = deps.formTokenFor(request, reply, LOGIN_FORM);
    return sendPage(
      reply,
      status,
      (ctx) => renderAdminLoginPage(ctx, { optionsJSON, issuedAt, nonce, formToken, ...(refusal === undefined ? {} : { refusal }) }),
      {
        scripts: true,
      },
    );
  }

  async function showList(reply: FastifyReply, adminId: string) {
    const proposals = await kernel.adminPageProposals();
    const notices = await kernel.adminPageNotices();
    return sendPage(reply, 200, (ctx) => renderAdminListPage(ctx, { adminId, proposals, notices }));
  }

  // The list needs a session; without one, the login. (A GET: the login's challenge is a MAC, nothing is stored.)
  // The login names no credential (a discoverable passkey answers), unless an admin typed its admin id (`?admin=pk:…`).
  app.get<{ Querystring: { admin?: unknown } }>('/admin/', { schema: { hide: true } }, async (request, reply) => {
    const admin = await kernel.checkAdminSession(sessionOf(request));
    const named = typeof request.query?.admin === 'string' && ADMIN_ID.test(request.query.admin) ? request.query.admin : undefined;
    if (admin === undefined) return showLogin(request, reply, 200, undefined, named);
    return showList(reply, admin.publicKey);
  });

  app.post('/admin/login', { schema: { hide: true }, bodyLimit: PROOF_FORM_BODY_LIMIT }, async (request, reply) => {
    if (!deps.originAllowed(request) || !deps.formChecks(request, LOGIN_FORM)) return sendNotice(reply, FORBIDDEN);
    const params = new URLSearchParams(typeof request.body === 'string' ? request.body : '');
    try {
      const { proof } = parsePostedForm(request.body);
      const login = await kernel.finishAdminLogin({ issuedAt: params.get('issuedAt'), nonce: params.get('nonce'), proof: parseProof(proof) });
      void reply.header('set-cookie', sessionCookieHeader(login.token, deps.secureCookie));
      return await showList(reply, login.adminId);
    } catch (error) {
      const refusal = refusalOf(error);
      if (refusal === undefined) throw error;
      return showLogin(request, reply, ERROR_CODES[refusal.code as keyof typeof ERROR_CODES].status, refusal);
    }
  });

  async function showProposal(
    request: FastifyRequest,
    reply: FastifyReply,
    id: string,
    status: number,
    extra: { notice?: string; refusal?: { text: string; code: string } } = {},
  ) {
    let shown: Awaited<ReturnType<Kernel['adminPageProposal']>>;
    try {
      shown = await kernel.adminPageProposal(id);
    } catch (error) {
      if (isCustosError(error) && error.code === 'proposal_not_found') return sendNotice(reply, NOT_FOUND);
      throw error;
    }
    const { proposal, optionsJSON } = shown;
    const formToken = deps.formTokenFor(request, reply, proposalForm(id));
    const payloadHash = computePayloadHash(proposal.kind, proposal.payload);
    return sendPage(reply, status, (ctx) => renderAdminProposalPage(ctx, { proposal, payloadHash, optionsJSON, formToken, ...extra }), {
      scripts: proposal.state === 'pending' && optionsJSON !== undefined,
    });
  }

  // Reading a proposal needs a session (a passkey admin of the set in force).
  app.get<{ Params: { id: string } }>('/admin/proposals/:id', { schema: { hide: true } }, async (request, reply) => {
    if (!PROPOSAL_ID.test(request.params.id)) return sendNotice(reply, NOT_FOUND);
    if ((await kernel.checkAdminSession(sessionOf(request))) === undefined) return showLogin(request, reply, 401);
    return showProposal(request, reply, request.params.id, 200);
  });

  // Approving: the form token of this proposal's page, and the passkey's assertion over its statement
  // (the authority; the kernel checks it whatever the session says).
  app.post<{ Params: { id: string } }>('/admin/proposals/:id', { schema: { hide: true }, bodyLimit: PROOF_FORM_BODY_LIMIT }, async (request, reply) => {
    const id = request.params.id;
    if (!PROPOSAL_ID.test(id)) return sendNotice(reply, NOT_FOUND);
    if (!deps.originAllowed(request) || !deps.formChecks(request, proposalForm(id))) return sendNotice(reply, FORBIDDEN);
    const payloadHash = new URLSearchParams(typeof request.body === 'string' ? request.body : '').getAll('payloadHash');
    try {
      const { proof } = parsePostedForm(request.body);
      const view = await kernel.approveOnAdminPage({ id, payloadHash: payloadHash.length === 1 ? payloadHash[0] : undefined, proof: parseProof(proof) });
      return await showProposal(request, reply, id, 200, {
        notice: view.state === 'applied' ? 'Approved: the quorum is met, and the change was applied.' : 'Approved.',
      });
    } catch (error) {
      if (isCustosError(error) && error.code === 'proposal_not_found') return sendNotice(reply, NOT_FOUND);
      const refusal = refusalOf(error);
      if (refusal === undefined) throw error;
      return showProposal(request, reply, id, ERROR_CODES[refusal.code as keyof typeof ERROR_CODES].status, { refusal });
    }
  });

  // ---- proposing (a passkey admin with a session): the form, the draft in full, then the passkey ----

  function showProposeForm(
    request: FastifyRequest,
    reply: FastifyReply,
    adminId: string,
    status: number,
    extra: { kind?: string; payload?: string; ttlHours?: string; refusal?: { text: string; code: string } } = {},
  ) {
    const formToken = deps.formTokenFor(request, reply, DRAFT_FORM);
    return sendPage(reply, status, (ctx) => renderAdminProposeForm(ctx, { adminId, kinds: kernel.proposalKinds, formToken, ...extra }));
  }

  /** One posted field, when posted exactly once. */
  function field(request: FastifyRequest, name: string): string | undefined {
    const all = new URLSearchParams(typeof request.body === 'string' ? request.body : '').getAll(name);
    return all.length === 1 ? all[0] : undefined;
  }

  app.get('/admin/propose', { schema: { hide: true } }, async (request, reply) => {
    const admin = await kernel.checkAdminSession(sessionOf(request));
    if (admin === undefined) return showLogin(request, reply, 401);
    return showProposeForm(request, reply, admin.publicKey, 200);
  });

  // The draft: checked by the kernel and shown in full, with the passkey step. Writes nothing (a POST: the payload is long).
  app.post('/admin/propose/review', { schema: { hide: true }, bodyLimit: PROPOSE_FORM_BODY_LIMIT }, async (request, reply) => {
    if (!deps.originAllowed(request) || !deps.formChecks(request, DRAFT_FORM)) return sendNotice(reply, FORBIDDEN);
    const session = sessionOf(request);
    const admin = await kernel.checkAdminSession(session);
    if (admin === undefined) return showLogin(request, reply, 401);
    const kind = field(request, 'kind');
    const payload = field(request, 'payload');
    const ttlHours = field(request, 'ttlHours');
    try {
      const { draft, optionsJSON } = await kernel.draftOnAdminPage({
        session,
        kind,
        payload,
        ttlSeconds: ttlHours === undefined || ttlHours === '' ? undefined : /^[0-9]{1,4}$/.test(ttlHours) ? Number(ttlHours) * 3600 : ttlHours,
      });
      const formToken = deps.formTokenFor(request, reply, proposeForm(admin.publicKey, draft));
      return sendPage(reply, 200, (ctx) => renderAdminDraftPage(ctx, { draft, optionsJSON, formToken }), { scripts: true });
    } catch (error) {
      const refusal = refusalOf(error);
      if (refusal === undefined) throw error;
      return showProposeForm(request, reply, admin.publicKey, ERROR_CODES[refusal.code as keyof typeof ERROR_CODES].status, {
        ...(kind === undefined ? {} : { kind }),
        ...(payload === undefined ? {} : { payload }),
        ...(ttlHours === undefined ? {} : { ttlHours }),
        refusal: { ...refusal, text: refusal.code === 'invalid_input' ? `${(error as CustosError).message}. Nothing was proposed.` : refusal.text },
      });
    }
  });

  // Proposing: the draft's form token (bound to the session's admin and the draft's id, kind, payload
  // hash and expiry), and the passkey's assertion over the propose statement (the authority).
  app.post('/admin/propose', { schema: { hide: true }, bodyLimit: PROPOSE_FORM_BODY_LIMIT }, async (request, reply) => {
    if (!deps.originAllowed(request)) return sendNotice(reply, FORBIDDEN);
    const session = sessionOf(request);
    const admin = await kernel.checkAdminSession(session);
    if (admin === undefined) return showLogin(request, reply, 401);
    const posted = {
      id: field(request, 'id'),
      kind: field(request, 'kind'),
      payload: field(request, 'payload'),
      payloadHash: field(request, 'payloadHash'),
      expiresAt: field(request, 'expiresAt'),
    };
    if (!deps.formChecks(request, proposeForm(admin.publicKey, posted))) return sendNotice(reply, FORBIDDEN);
    try {
      const { proof } = parsePostedForm(request.body);
      const view = await kernel.proposeOnAdminPage({
        session,
        ...posted,
        expiresAt: /^[0-9]{1,16}$/.test(posted.expiresAt ?? '') ? Number(posted.expiresAt) : posted.expiresAt,
        proof: parseProof(proof),
      });
      return await showProposal(request, reply, view.id, 200, { notice: 'Proposed. The other admins must now approve it.' });
    } catch (error) {
      const refusal = refusalOf(error);
      if (refusal === undefined) throw error;
      return showProposeForm(request, reply, admin.publicKey, ERROR_CODES[refusal.code as keyof typeof ERROR_CODES].status, {
        ...(posted.kind === undefined ? {} : { kind: posted.kind }),
        ...(posted.payload === undefined ? {} : { payload: posted.payload }),
        refusal,
      });
    }
  });
}
