import type {} from '@fastify/swagger';
import type { Kernel } from '@custos/kernel';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { commonErrorResponses, walletNameSchema } from '../schemas.js';
import { authenticateApiKey } from './authenticate.js';

const bearer = [{ apiKey: [] }];

/** POST /v1/enrollments: the link, never the factor's secret (the response schema keeps anything else out). */
export const createdEnrollmentSchema = {
  type: 'object',
  required: ['id', 'walletName', 'kind', 'expiresAt', 'enrollUrl'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', description: 'The enrolment link id: 32 lowercase hex digits (named in the audit records)' },
    walletName: { type: 'string' },
    kind: { type: 'string', enum: ['totp', 'passkey', 'hwkey', 'oob'], description: 'The factor the link enrols' },
    expiresAt: { type: 'integer', description: 'ms since the epoch: the link is refused from then on' },
    enrollUrl: {
      type: 'string',
      description:
        '<public URL>/enroll/<capability>: the enrolment page, for the wallet owner only (hand it to the owner; it is not shown again and is never logged by the signer)',
    },
  },
} as const;

export interface EnrollmentRoutesOptions {
  kernel: Kernel;
  /** The origin enrollUrl starts with, for this request (buildApp: --public-url, else http(s)://localhost:<the pages' port>). */
  publicBaseUrl(request: FastifyRequest): string;
}

/**
 * Enrolment links (scope `register`): the backend asks for a one-time link and hands it to the
 * wallet owner, who enrols the factor on the kernel's page (pages/enrollmentPageRoutes.ts). The
 * backend never sees the factor's secret. The kernel owns every rule (kernel/enrollmentLinks.ts).
 */
export async function enrollmentRoutes(app: FastifyInstance, { kernel, publicBaseUrl }: EnrollmentRoutesOptions): Promise<void> {
  app.post<{ Body: { walletName: string; kind?: 'totp' | 'passkey' | 'hwkey' | 'oob'; ttlSeconds?: number } }>(
    '/v1/enrollments',
    {
      schema: {
        summary: 'A one-time link on which the wallet owner enrols a second factor on the kernel’s page (scope: register)',
        description:
          'Returns enrollUrl, the enrolment page for the owner. kind totp (the default): the page shows the new TOTP secret (QR code) to the owner and activates the factor when the owner types a first valid code; the secret is never in this response or in any audit record. kind passkey: the owner creates a passkey on the page (it needs JavaScript); refused passkeys_unavailable when the signer runs without passkeys (its public URL is not a host name). kind hwkey: the owner pastes the card’s xpub and subpath (or a public key) and the card’s signature over the enrolment challenge the page shows; enrolled via page, its answers on the approval page count as bound (docs/hwkey.md). kind oob: the owner sets an e-mail address (or a recipient of the deployment’s webhook) on the page and types back the code sent there; refused delivery_unavailable without --smtp-url or --webhook-url; for a wallet that has an address the link changes it, with the new address’s code and a current factor’s consent on the page (its passkey, or a code sent to the current address), and the old address is told (docs/delivery.md). A newer link for the same wallet replaces a pending one (audited as enrollment.cancel). A wallet that already has a passkey gets a link on which the new factor is added only with that passkey’s consent; a wallet whose strongest factor is TOTP gets a link on which the new factor is consented with a code of its authenticator app, and then waits out the timelock’s delay as a pending factor.add change, cancellable by its owner, that also needs the admins’ quorum (with no admin set it never takes effect); a second TOTP or card is refused already_enrolled. Audited as enrollment.create; the activation as <kind>.enroll with via page. Trust on first use: whoever opens the link first enrols. See docs/enrolment-page.md.',
        tags: ['enrolment'],
        security: bearer,
        body: {
          type: 'object',
          required: ['walletName'],
          additionalProperties: false,
          properties: {
            walletName: walletNameSchema,
            kind: {
              type: 'string',
              enum: ['totp', 'passkey', 'hwkey', 'oob'],
              description:
                'The factor to enrol: totp (default), passkey (when the signer has passkeys: else passkeys_unavailable), hwkey (a TAPSIGNER-style card: the owner pastes its xpub and subpath, or a public key, and its signature over the page’s enrolment challenge), or oob — a delivery address the owner sets and confirms on the page (when the signer has a channel: else delivery_unavailable)',
            },
            ttlSeconds: { type: 'integer', minimum: 300, maximum: 604_800, description: 'How long the link can be used, seconds (default 86400)' },
          },
        },
        response: { 201: createdEnrollmentSchema, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const { capability, ...created } = await kernel.createEnrollment(await authenticateApiKey(kernel, request), request.body);
      return reply.status(201).send({ ...created, enrollUrl: `${publicBaseUrl(request)}/enroll/${capability}` });
    },
  );
}
