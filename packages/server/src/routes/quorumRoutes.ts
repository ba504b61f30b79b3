import type {} from '@fastify/swagger';
import type { Kernel } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';
import { commonErrorResponses } from '../schemas.js';
import { authenticateApiKey } from './authenticate.js';

const bearer = [{ apiKey: [] }];
const proposalIdSchema = { type: 'string', pattern: '^[0-9a-f]{32}$', description: 'A proposal id: 32 lowercase hex digits, chosen by the proposer' } as const;
const signatureSchema = { type: 'string', pattern: '^[0-9a-f]{128}$', description: 'An Ed25519 signature, 128 lowercase hex digits' } as const;
/** An admin: a key-file admin's Ed25519 public key, or a passkey admin's id. */
const adminIdSchema = {
  type: 'string',
  pattern: '^(pk:)?[0-9a-f]{64}$',
  description: 'An admin: its Ed25519 public key (64 lowercase hex digits), or a passkey admin’s id (pk: and 64 lowercase hex digits)',
} as const;
const base64url = (maxLength: number) => ({ type: 'string', pattern: '^[A-Za-z0-9_-]*={0,2}$', maxLength }) as const;
/**
 * A passkey admin's WebAuthn assertion: the JSON @simplewebauthn/browser's startAuthentication returns
 * (AuthenticationResponseJSON), whose challenge is SHA-256 of the statement's bytes (docs/quorum.md).
 */
const passkeyAssertionSchema = {
  type: 'object',
  description:
    'A passkey admin’s WebAuthn assertion (AuthenticationResponseJSON, as navigator.credentials.get / @simplewebauthn/browser’s startAuthentication returns it) whose challenge is SHA-256 of the statement bytes an Ed25519 admin would sign (docs/quorum.md “What a passkey admin signs”)',
  required: ['id', 'rawId', 'type', 'response'],
  properties: {
    id: base64url(1400),
    rawId: base64url(1400),
    type: { type: 'string', enum: ['public-key'] },
    response: {
      type: 'object',
      required: ['clientDataJSON', 'authenticatorData', 'signature'],
      properties: {
        clientDataJSON: base64url(8192),
        authenticatorData: base64url(8192),
        signature: base64url(2048),
        userHandle: { type: ['string', 'null'], maxLength: 1400 },
      },
    },
    clientExtensionResults: { type: 'object' },
    authenticatorAttachment: { type: ['string', 'null'], maxLength: 32 },
  },
} as const;
/** What proves an admin's statement: an Ed25519 signature (hex) or a passkey admin's assertion. */
const adminProofSchema = {
  description: 'A key-file admin’s Ed25519 signature (hex), or a passkey admin’s WebAuthn assertion (object)',
  anyOf: [signatureSchema, passkeyAssertionSchema],
} as const;
const hashSchema = { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'SHA-256, 64 lowercase hex digits' } as const;

/** Any JSON value (a payload, a result): shown in full. */
const anyJson = { description: 'Any JSON value' } as const;

/** A passkey admin's credential (the admin set's entry; docs/quorum.md "Passkey admins"). */
const passkeyCredentialSchema = {
  type: 'object',
  description:
    'A passkey admin’s credential (absent for a key-file admin, whose publicKey is its Ed25519 key; a passkey admin’s publicKey is pk:<SHA-256 of the credential id>)',
  required: ['credentialId', 'publicKey', 'rpId', 'transports'],
  properties: {
    credentialId: { type: 'string' },
    publicKey: { type: 'string', description: 'COSE public key, base64url' },
    rpId: { type: 'string' },
    transports: { type: 'array', items: { type: 'string' } },
  },
} as const;

const adminSchema = {
  type: 'object',
  required: ['publicKey', 'name'],
  properties: {
    publicKey: { type: 'string' },
    name: { type: 'string' },
    email: { type: 'string', description: 'Where proposals are announced to this admin' },
    passkey: passkeyCredentialSchema,
  },
} as const;

const proposalSchema = {
  type: 'object',
  required: [
    'id',
    'kind',
    'payload',
    'payloadHash',
    'description',
    'proposer',
    'createdAt',
    'expiresAt',
    'state',
    'decidedAt',
    'threshold',
    'approvals',
    'result',
  ],
  properties: {
    id: { type: 'string' },
    kind: { type: 'string' },
    payload: anyJson,
    payloadHash: { type: 'string', description: 'SHA-256 over "custos.quorum.payload.v1\\0" and the canonical JSON of { kind, payload }' },
    description: { type: 'string' },
    proposer: { type: 'string' },
    createdAt: { type: 'integer' },
    expiresAt: { type: 'integer' },
    state: { type: 'string', enum: ['pending', 'applied', 'expired', 'consumed'] },
    decidedAt: { type: ['integer', 'null'] },
    threshold: { type: 'integer', description: 'M: approvals needed besides the proposer' },
    approvals: {
      type: 'array',
      items: { type: 'object', required: ['admin', 'createdAt'], properties: { admin: { type: 'string' }, createdAt: { type: 'integer' } } },
    },
    result: anyJson,
    subject: {
      type: 'object',
      description:
        'What a pending proposal approves, as the kernel stores it now (wallet.change.approve: the change — kind, wallet, state, effective time, payload, a policy.loosen’s diff; a factor’s or delivery address’s payload withheld). matches false: it is not what the proposal names, and approving is refused with refusal.code.',
      required: ['lines', 'stored', 'matches'],
      properties: {
        lines: { type: 'array', items: { type: 'string' } },
        stored: anyJson,
        matches: { type: 'boolean' },
        refusal: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
      },
    },
  },
} as const;

/** The admin quorum's proposals (`/v1/admin/proposals…`, operator scope `admin`; docs/quorum.md). */
export async function quorumRoutes(app: FastifyInstance, { kernel }: { kernel: Kernel }): Promise<void> {
  app.post<{ Body: { name?: string; ttlSeconds?: number } }>(
    '/v1/admin/passkey-links',
    {
      schema: {
        summary: 'Make a single-use admin enrolment link (scope: admin)',
        description:
          'The link opens the kernel’s admin enrolment page, where a new admin registers a passkey. The passkey is a candidate, not an admin: it joins the admin set only through custos admin bootstrap or an applied quorum.set proposal naming it. Only the link’s hash is stored. Audited as quorum.admin-link.',
        tags: ['admin'],
        security: bearer,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            name: { type: 'string', maxLength: 64, description: 'A label for people (the admin’s name)' },
            ttlSeconds: { type: 'integer', minimum: 300, maximum: 604800, description: 'How long the link works (default 24 h)' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['url', 'name', 'expiresAt'],
            properties: { url: { type: 'string', description: 'The link (shown once)' }, name: { type: 'string' }, expiresAt: { type: 'integer' } },
          },
          ...commonErrorResponses,
        },
      },
    },
    async (request) => {
      const link = await kernel.createAdminEnrollmentLink(await authenticateApiKey(kernel, request), request.body ?? {});
      return { url: `${kernel.passkeys?.origin ?? ''}/admin/enroll/${link.token}`, name: link.name, expiresAt: link.expiresAt };
    },
  );

  app.get(
    '/v1/admin/passkey-candidates',
    {
      schema: {
        summary: 'The registered admin passkeys and their admin set entries (scope: admin)',
        description: 'Each entry is what a quorum.set payload names to add that passkey admin (custos admin bootstrap takes its pk: id).',
        tags: ['admin'],
        security: bearer,
        response: {
          200: {
            type: 'object',
            required: ['candidates'],
            properties: {
              candidates: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['adminId', 'name', 'createdAt', 'inAdminSet', 'entry'],
                  properties: {
                    adminId: { type: 'string' },
                    name: { type: 'string' },
                    createdAt: { type: 'integer' },
                    inAdminSet: { type: 'boolean' },
                    entry: adminSchema,
                  },
                },
              },
            },
          },
          ...commonErrorResponses,
        },
      },
    },
    async (request) => ({ candidates: await kernel.listAdminCandidates(await authenticateApiKey(kernel, request)) }),
  );

  app.post<{ Body: { id: string; kind: string; payload: unknown; proposer: string; signature: string | Record<string, unknown>; expiresAt: number } }>(
    '/v1/admin/proposals',
    {
      schema: {
        summary: 'Propose a quorum-protected change (scope: admin)',
        description:
          'The proposer signs (custos.quorum.propose.v2, signerId, id, proposer, expiresAt, payloadHash) with its admin key — or, a passkey admin (proposer pk:…), answers a WebAuthn assertion whose challenge is SHA-256 of those bytes and posts it as signature. M other admins must approve it before it applies. An id is used once. Audited as quorum.propose.',
        tags: ['admin'],
        security: bearer,
        body: {
          type: 'object',
          required: ['id', 'kind', 'payload', 'proposer', 'signature', 'expiresAt'],
          additionalProperties: false,
          properties: {
            id: proposalIdSchema,
            kind: { type: 'string', minLength: 1, maxLength: 64 },
            payload: anyJson,
            proposer: adminIdSchema,
            signature: adminProofSchema,
            expiresAt: {
              type: 'integer',
              minimum: 0,
              maximum: 9007199254740991,
              description: 'When it expires (ms since the epoch; 60 s to 30 days from now), signed by the proposer',
            },
          },
        },
        response: { 200: proposalSchema, ...commonErrorResponses },
      },
    },
    async (request) => kernel.proposeChange(await authenticateApiKey(kernel, request), request.body),
  );

  app.get<{ Querystring: { limit?: string } }>(
    '/v1/admin/proposals',
    {
      schema: {
        summary: 'The admin set and the newest proposals (scope: admin)',
        tags: ['admin'],
        security: bearer,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'string', pattern: '^[1-9][0-9]{0,2}$', description: 'At most this many (1–200, default 50)' } },
        },
        response: {
          200: {
            type: 'object',
            required: ['quorum', 'proposals'],
            properties: {
              quorum: {
                type: ['object', 'null'],
                required: ['threshold', 'admins'],
                properties: { threshold: { type: 'integer' }, admins: { type: 'array', items: adminSchema } },
              },
              proposals: { type: 'array', items: proposalSchema },
            },
          },
          ...commonErrorResponses,
        },
      },
    },
    async (request) =>
      kernel.listProposals(await authenticateApiKey(kernel, request), request.query.limit === undefined ? {} : { limit: Number(request.query.limit) }),
  );

  app.get<{ Querystring: { limit?: string; before?: string } }>(
    '/v1/admin/notices',
    {
      schema: {
        summary: 'What every admin was told, newest first, in full (scope: admin)',
        description:
          'Each freeze, unfreeze, proposal, applied proposal and change waiting for the quorum that the admins were told of by e-mail, with its full text (an e-mail is cut at 1000 characters and says so), read from the audit log (admin.notice records). untoldAdmins: admins of the set in force without an e-mail address, told nothing.',
        tags: ['admin'],
        security: bearer,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'string', pattern: '^[1-9][0-9]{0,2}$', description: 'At most this many (1–200, default 50)' },
            before: { type: 'string', pattern: '^[1-9][0-9]{0,15}$', description: 'Only notices older than this seq (the next page)' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['notices', 'untoldAdmins'],
            additionalProperties: false,
            properties: {
              notices: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['seq', 'ts', 'event', 'text', 'told', 'untold', 'complete'],
                  additionalProperties: false,
                  properties: {
                    seq: { type: 'integer', description: 'The seq of its admin.notice audit record' },
                    ts: { type: 'integer', description: 'ms since the epoch' },
                    event: { type: 'string', description: 'freeze, unfreeze, proposal, proposal.applied or change' },
                    text: { type: 'string', description: 'The full text' },
                    told: { type: 'integer', description: 'E-mails queued' },
                    untold: { type: 'integer', description: 'Admins without an address, told nothing' },
                    complete: { type: 'boolean', description: 'False when a part of the text is missing from the log' },
                  },
                },
              },
              untoldAdmins: { type: 'array', items: { type: 'string' } },
            },
          },
          ...commonErrorResponses,
        },
      },
    },
    async (request) =>
      kernel.listAdminNotices(await authenticateApiKey(kernel, request), {
        ...(request.query.limit === undefined ? {} : { limit: Number(request.query.limit) }),
        ...(request.query.before === undefined ? {} : { before: Number(request.query.before) }),
      }),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/admin/proposals/:id',
    {
      schema: {
        summary: 'One proposal in full, with the approvals that count (scope: admin)',
        tags: ['admin'],
        security: bearer,
        params: { type: 'object', required: ['id'], properties: { id: proposalIdSchema } },
        response: { 200: proposalSchema, ...commonErrorResponses },
      },
    },
    async (request) => kernel.getProposal(await authenticateApiKey(kernel, request), request.params),
  );

  app.post<{ Params: { id: string }; Body: { admin: string; payloadHash: string; signature: string | Record<string, unknown> } }>(
    '/v1/admin/proposals/:id/approvals',
    {
      schema: {
        summary: 'Approve a proposal (scope: admin)',
        description:
          'The admin signs (custos.quorum.approve.v2, signerId, id, proposer, expiresAt, payloadHash) over the payload hash it computed from the payload it was shown — a passkey admin (admin pk:…) posts, as signature, its WebAuthn assertion whose challenge is SHA-256 of those bytes. The proposer’s approval does not count; an admin counts once; the approval that meets the threshold applies the change. Audited as quorum.approve (and quorum.apply).',
        tags: ['admin'],
        security: bearer,
        params: { type: 'object', required: ['id'], properties: { id: proposalIdSchema } },
        body: {
          type: 'object',
          required: ['admin', 'payloadHash', 'signature'],
          additionalProperties: false,
          properties: { admin: adminIdSchema, payloadHash: hashSchema, signature: adminProofSchema },
        },
        response: { 200: proposalSchema, ...commonErrorResponses },
      },
    },
    async (request) => kernel.approveProposal(await authenticateApiKey(kernel, request), { id: request.params.id, ...request.body }),
  );
}
