import type {} from '@fastify/swagger';
import { type Kernel, MAX_KEY_LIFETIME_SECONDS } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';
import { commonErrorResponses, walletNameSchema } from '../schemas.js';
import { authenticateApiKey } from './authenticate.js';

const bearer = [{ apiKey: [] }];

const apiKeySchema = {
  type: 'object',
  required: ['id', 'name', 'tenant', 'scopes', 'createdAt', 'revokedAt', 'expiresAt', 'walletPrefix', 'lastUsedAt'],
  additionalProperties: false,
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    tenant: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string' } },
    createdAt: { type: 'integer' },
    revokedAt: { type: ['integer', 'null'] },
    expiresAt: { type: ['integer', 'null'], description: 'when the key stops working (ms since the epoch); null: never' },
    walletPrefix: { type: ['string', 'null'], description: 'the key reaches only its tenant’s wallets whose names start with this; null: all of them' },
    lastUsedAt: { type: ['integer', 'null'], description: 'its last authentication (ms), recorded at most once a minute' },
  },
} as const;

/** API keys over the API (operator scope `admin`; docs/api-keys.md). */
export async function apiKeyRoutes(app: FastifyInstance, { kernel }: { kernel: Kernel }): Promise<void> {
  app.get(
    '/v1/apikeys',
    {
      schema: {
        summary: 'Every API key: tenant, scopes, expiry, wallet prefix, last use (scope: admin)',
        description: 'Never a secret: the token was shown once, at creation, and only its hash is stored.',
        tags: ['apikeys'],
        security: bearer,
        response: {
          200: { type: 'object', required: ['apiKeys'], additionalProperties: false, properties: { apiKeys: { type: 'array', items: apiKeySchema } } },
          ...commonErrorResponses,
        },
      },
    },
    async (request) => ({ apiKeys: await kernel.listApiKeys(await authenticateApiKey(kernel, request)) }),
  );

  app.post<{ Body: { name: string; scopes: string[]; tenant?: string; expiresInSeconds?: number; walletPrefix?: string } }>(
    '/v1/apikeys',
    {
      schema: {
        summary: 'Create an API key; its token is returned once (scope: admin)',
        description:
          'Under an admin quorum a key with the sign or admin scope is refused quorum_required: it is made only by an applied apikey.create proposal (custos admin propose), whose token the proposer generated locally. A wallet prefix confines the key to the wallets of its tenant whose names start with it (exactly: case and Unicode as given). Audited apikey.create.',
        tags: ['apikeys'],
        security: bearer,
        body: {
          type: 'object',
          required: ['name', 'scopes'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 128 },
            scopes: { type: 'array', minItems: 1, maxItems: 4, items: { type: 'string', enum: ['register', 'derive', 'sign', 'admin'] } },
            tenant: { type: 'string', minLength: 1, maxLength: 64 },
            expiresInSeconds: { type: 'integer', minimum: 60, maximum: MAX_KEY_LIFETIME_SECONDS },
            walletPrefix: walletNameSchema,
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['token', 'apiKey'],
            additionalProperties: false,
            properties: { token: { type: 'string', description: 'the API key, shown once' }, apiKey: apiKeySchema },
          },
          ...commonErrorResponses,
        },
      },
    },
    async (request) => {
      const { token, key } = await kernel.createApiKey(await authenticateApiKey(kernel, request), request.body);
      return { token, apiKey: key };
    },
  );

  app.delete<{ Querystring: { id: string } }>(
    '/v1/apikeys',
    {
      schema: {
        summary: 'Revoke an API key (scope: admin)',
        description: 'Its sessions and pending approvals go with it. Audited apikey.revoke.',
        tags: ['apikeys'],
        security: bearer,
        querystring: { type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string', pattern: '^[0-9a-f]{16}$' } } },
        response: {
          200: {
            type: 'object',
            required: ['id', 'revokedAt'],
            additionalProperties: false,
            properties: { id: { type: 'string' }, revokedAt: { type: 'integer' } },
          },
          ...commonErrorResponses,
        },
      },
    },
    async (request) => kernel.revokeApiKey(await authenticateApiKey(kernel, request), request.query),
  );
}
