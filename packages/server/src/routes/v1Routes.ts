import type {} from '@fastify/swagger';
import { DEFAULT_WALLET_PAGE, type Kernel, MAX_WALLET_PAGE } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';
import {
  codeSchema,
  commonErrorResponses,
  hex32Schema,
  idempotencyHeaders,
  keyIndexQuerySchema,
  keyIndexSchema,
  signApprovalIdSchema,
  walletNameSchema,
} from '../schemas.js';
import { summarySchema } from '../chainSchemas.js';
import { authenticateApiKey, idempotencyKeyOf } from './authenticate.js';

const bearer = [{ apiKey: [] }];

/** The native REST API (`/v1`). Every route: API key → scopes → kernel; schemas both ways. */
export async function v1Routes(app: FastifyInstance, { kernel }: { kernel: Kernel }): Promise<void> {
  app.post<{ Body: { walletName: string } }>(
    '/v1/totp/enroll',
    {
      schema: {
        summary: 'Enrol a TOTP factor for a wallet (scope: register)',
        description:
          'Creates the wallet if needed and returns the otpauth URI and its QR code, once. The secret is stored only encrypted. A wallet can be enrolled once.',
        tags: ['factors'],
        security: bearer,
        body: { type: 'object', required: ['walletName'], additionalProperties: false, properties: { walletName: walletNameSchema } },
        response: {
          200: {
            type: 'object',
            required: ['walletName', 'otpauthUri', 'qrSvg', 'securityObject'],
            properties: { walletName: { type: 'string' }, otpauthUri: { type: 'string' }, qrSvg: { type: 'string' }, securityObject: { type: 'string' } },
          },
          ...commonErrorResponses,
        },
      },
    },
    async (request) => kernel.enrollTotp(await authenticateApiKey(kernel, request), request.body),
  );

  app.get<{ Querystring: { walletName: string; keyIndex: string } }>(
    '/v1/keys',
    {
      schema: {
        summary: 'Public key and Ethereum address of (walletName, keyIndex) (scope: derive)',
        tags: ['keys'],
        security: bearer,
        querystring: {
          type: 'object',
          required: ['walletName', 'keyIndex'],
          additionalProperties: false,
          properties: { walletName: walletNameSchema, keyIndex: keyIndexQuerySchema },
        },
        response: {
          200: {
            type: 'object',
            required: ['walletName', 'keyIndex', 'publicKey', 'address'],
            properties: {
              walletName: { type: 'string' },
              keyIndex: { type: 'integer' },
              publicKey: { type: 'string', description: '33-byte compressed secp256k1 public key, hex' },
              address: { type: 'string', description: 'EIP-55 checksummed Ethereum address' },
            },
          },
          ...commonErrorResponses,
        },
      },
    },
    async (request) => kernel.getPublicKey(await authenticateApiKey(kernel, request), request.query),
  );

  app.get<{ Querystring: { walletName: string } }>(
    '/v1/wallets',
    {
      schema: {
        summary: 'Which factors a wallet has enrolled (scope: derive)',
        tags: ['wallets'],
        security: bearer,
        querystring: { type: 'object', required: ['walletName'], additionalProperties: false, properties: { walletName: walletNameSchema } },
        response: {
          200: {
            type: 'object',
            required: ['walletName', 'factors', 'createdAt'],
            properties: { walletName: { type: 'string' }, factors: { type: 'array', items: { type: 'string' } }, createdAt: { type: 'integer' } },
          },
          ...commonErrorResponses,
        },
      },
    },
    async (request) => kernel.getWallet(await authenticateApiKey(kernel, request), request.query),
  );

  app.get<{ Querystring: { limit?: string; cursor?: string } }>(
    '/v1/wallets/list',
    {
      schema: {
        summary: 'The tenant’s wallets, in name order, a page at a time (scope: derive)',
        description:
          'The wallets of the API key’s tenant (for a key with a wallet prefix: only those under it), in code point order of their names. Pass nextCursor as cursor for the next page; it is the last name of the page, so wallets created meanwhile appear later when their names sort after it, and none is listed twice. A wallet whose rows fail their checks (record MACs, owner) is listed as { walletName, unreadable: true } with nothing else; its own routes refuse it (record_unreadable). See docs/api-keys.md.',
        tags: ['wallets'],
        security: bearer,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'string', pattern: '^[1-9][0-9]{0,2}$', description: `Wallets per page, 1–${MAX_WALLET_PAGE} (default ${DEFAULT_WALLET_PAGE})` },
            cursor: { type: 'string', maxLength: 1024, pattern: '^[A-Za-z0-9_-]+$', description: 'The nextCursor of the page before (opaque)' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['wallets', 'nextCursor', 'more'],
            additionalProperties: false,
            properties: {
              wallets: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['walletName'],
                  additionalProperties: false,
                  description: 'A wallet: every field but unreadable; or, for a wallet whose rows fail their checks, walletName and unreadable only',
                  properties: {
                    walletName: { type: 'string' },
                    unreadable: { type: 'boolean', enum: [true], description: 'Its rows fail their checks: nothing of it is shown' },
                    createdAt: { type: 'integer' },
                    factors: { type: 'array', items: { type: 'string' }, description: 'The kinds of its factors (as GET /v1/wallets)' },
                    frozenAt: { type: ['integer', 'null'], description: 'When it was frozen (ms since the epoch), or null' },
                    lockedUntil: {
                      type: ['integer', 'null'],
                      description: 'Until when a factor’s throttle locks it (the latest, ms since the epoch), or null',
                    },
                    pendingChanges: { type: 'integer', description: 'Its timelocked changes waiting out their delay' },
                  },
                },
              },
              nextCursor: { type: ['string', 'null'], description: 'Give back as cursor for the wallets after this page (null: an empty first page)' },
              more: { type: 'boolean', description: 'More wallets followed this page when it was read' },
            },
          },
          ...commonErrorResponses,
        },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      return kernel.listWallets(await authenticateApiKey(kernel, request), {
        ...(limit === undefined ? {} : { limit: Number(limit) }),
        ...(cursor === undefined ? {} : { cursor }),
      });
    },
  );

  app.post<{ Body: { walletName: string } }>(
    '/v1/wallets/freeze',
    {
      schema: {
        summary: 'Freeze a wallet (scope: admin)',
        description:
          'An operator freezes a wallet of any tenant, at once and alone (an action that only takes power away): nothing is signed or approved for it (wallet_frozen) until the owner, with a bound factor, or an admin quorum unfreezes it. Idempotent (a frozen wallet keeps its first frozenAt). Audited as wallet.freeze. See docs/freeze.md.',
        tags: ['wallets'],
        security: bearer,
        body: { type: 'object', required: ['walletName'], additionalProperties: false, properties: { walletName: walletNameSchema } },
        response: {
          200: {
            type: 'object',
            required: ['walletName', 'frozenAt'],
            additionalProperties: false,
            properties: { walletName: { type: 'string' }, frozenAt: { type: 'integer', description: 'when the wallet was frozen, ms since the epoch' } },
          },
          ...commonErrorResponses,
        },
      },
    },
    async (request) => kernel.freezeWalletByAdmin(await authenticateApiKey(kernel, request), request.body),
  );

  app.post<{ Body: { walletName: string; keyIndex: number; hash: string; code?: string; approvalId?: string } }>(
    '/v1/sign/hash',
    {
      schema: {
        summary: 'Sign a raw 32-byte hash (scope: sign)',
        description:
          'A wallet with an enrolled TOTP factor signs only with a valid, unused code (±1 step of 30 s, single use, throttled), or with approvalId: an approval the owner approved for exactly this operation (docs/approvals.md). The response leaves only after the decision is durably in the audit log.',
        tags: ['sign'],
        security: bearer,
        body: {
          type: 'object',
          required: ['walletName', 'keyIndex', 'hash'],
          additionalProperties: false,
          properties: { walletName: walletNameSchema, keyIndex: keyIndexSchema, hash: hex32Schema, code: codeSchema, approvalId: signApprovalIdSchema },
        },
        headers: idempotencyHeaders,
        response: {
          200: {
            type: 'object',
            required: ['walletName', 'keyIndex', 'r', 's', 'recoveryId', 'signature', 'publicKey', 'address', 'opHash', 'auditSeq'],
            properties: {
              walletName: { type: 'string' },
              keyIndex: { type: 'integer' },
              r: { type: 'string', description: '32 bytes, hex' },
              s: { type: 'string', description: '32 bytes, hex, low-s' },
              recoveryId: { type: 'integer', enum: [0, 1] },
              signature: { type: 'string', description: '0x r ‖ s ‖ v (v = 27 + recoveryId)' },
              publicKey: { type: 'string' },
              address: { type: 'string' },
              summary: summarySchema,
              summaryText: { type: 'string', description: 'The summary as one line of text (a raw hash is blind: the summary can only say so)' },
              opHash: { type: 'string', description: 'The kernel’s hash of the canonical operation, as in the audit record' },
              auditSeq: { type: 'integer', description: 'Sequence number of the audit record of this signature' },
            },
          },
          ...commonErrorResponses,
        },
      },
    },
    async (request) => kernel.signHash(await authenticateApiKey(kernel, request), { ...request.body, idempotencyKey: idempotencyKeyOf(request) }),
  );
}
