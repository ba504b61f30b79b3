import type {} from '@fastify/swagger';
import type { Kernel } from '@custos/kernel';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { commonErrorResponses, walletNameSchema } from '../schemas.js';
import { authenticateApiKey } from './authenticate.js';
import { createdChangeSchema } from './changeRoutes.js';

const bearer = [{ apiKey: [] }];

const amountSchema = {
  type: 'string',
  pattern: '^(0|[1-9][0-9]{0,77})$',
  description: 'An amount in base units (wei, or the token’s smallest unit), decimal',
} as const;
const addressListSchema = { type: 'array', maxItems: 256, items: { type: 'string', pattern: '^0x[0-9a-fA-F]{40}$' } } as const;
const limitsSchema = {
  type: 'object',
  additionalProperties: { type: 'object', additionalProperties: false, properties: { perTx: amountSchema, perWindow: amountSchema } },
} as const;

/** A wallet policy (kernel/walletPolicy.ts); every field optional in an override. */
export const walletPolicySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    requiredStrength: { type: 'string', enum: ['none', 'present', 'bound'] },
    windowSeconds: { type: 'integer', minimum: 60, maximum: 31622400 },
    maxSignaturesPerWindow: { type: 'integer', minimum: 0, maximum: 1000000000 },
    native: { ...limitsSchema, description: 'Per chain id (decimal key): limits on the transactions’ maximum cost (value + gas × max fee), in wei' },
    tokens: { ...limitsSchema, description: "Per '<chainId>:<token address>': limits in the token's base units (transfer, approve, transferFrom, permits)" },
    unknownToken: { type: 'string', enum: ['deny', 'allow'] },
    destinations: { ...addressListSchema, description: 'Destination allowlist (decoded recipient, spender, operator or delegate)' },
    otherDestinations: { type: 'string', enum: ['deny', 'bound'] },
    deniedDestinations: { ...addressListSchema, description: 'Destinations always refused (deny wins over allow)' },
    contracts: {
      ...addressListSchema,
      description: 'Contracts that may receive flows the limits cannot count (7702 delegates, operators, Permit2, undecoded calls)',
    },
    rawHash: { type: 'string', enum: ['deny', 'allow'], description: 'Raw 32-byte hashes (blind) for an enrolled wallet: deny (default) or allow' },
    uncountable: {
      type: 'string',
      enum: ['bound', 'present'],
      description:
        'The consent an enrolled wallet without limits needs for flows the limits cannot count: bound (default) or present (the weaker mode); with limits always bound',
    },
  },
} as const;

const policyViewSchema = {
  type: 'object',
  required: ['walletName', 'policy', 'override', 'usage'],
  properties: {
    walletName: { type: 'string' },
    policy: { ...walletPolicySchema, description: 'The policy in force: built-in defaults, the deployment’s, the wallet’s override' },
    override: { anyOf: [walletPolicySchema, { type: 'null' }] },
    usage: {
      type: 'object',
      required: ['windowSeconds', 'since', 'signatures', 'amounts'],
      properties: {
        windowSeconds: { type: 'integer' },
        since: { type: 'integer', description: 'Start of the current window, ms since the epoch' },
        signatures: { type: 'integer', description: 'Signatures counted in the window (while the policy has limits or a signature cap)' },
        amounts: {
          type: 'object',
          additionalProperties: { type: 'string' },
          description: "Per 'native:<chainId>' or 'token:<chainId>:<address>': base units counted in the window",
        },
      },
    },
  },
} as const;

/** The wallet policy routes: the effective policy and usage (GET), and a wallet's own override (PUT; a loosening is timelocked). */
export async function policyRoutes(
  app: FastifyInstance,
  { kernel, publicBaseUrl }: { kernel: Kernel; publicBaseUrl(request: FastifyRequest): string },
): Promise<void> {
  app.get<{ Querystring: { walletName: string } }>(
    '/v1/wallets/policy',
    {
      schema: {
        summary: "A wallet's effective policy and its usage in the current window (scope: sign)",
        tags: ['wallets'],
        security: bearer,
        querystring: { type: 'object', required: ['walletName'], additionalProperties: false, properties: { walletName: walletNameSchema } },
        response: { 200: policyViewSchema, ...commonErrorResponses },
      },
    },
    async (request) => kernel.getWalletPolicy(await authenticateApiKey(kernel, request), request.query),
  );

  app.put<{ Body: { walletName: string; policy: unknown } }>(
    '/v1/wallets/policy',
    {
      schema: {
        summary: "Replace a wallet's policy override (scope: register)",
        description:
          'A change that only tightens the effective policy applies at once (200, audited policy.set). One that loosens it — or adds an allowlisted destination or contract — becomes a timelocked change policy.loosen (202, audited change.request): the response is the change with changeUrl, its page for the owner, who consents there with the strongest factor the wallet has; it takes effect after the deployment’s delay unless cancelled, and the policy in force stays until then (docs/timelock.md). A wallet with no factor has no owner to consent: its loosening is refused policy_change_timelocked (409).',
        tags: ['wallets'],
        security: bearer,
        body: {
          type: 'object',
          required: ['walletName', 'policy'],
          additionalProperties: false,
          properties: { walletName: walletNameSchema, policy: walletPolicySchema },
        },
        response: {
          200: policyViewSchema,
          202: { ...createdChangeSchema, description: 'A loosening: the timelocked change policy.loosen, with changeUrl for the owner' },
          ...commonErrorResponses,
        },
      },
    },
    async (request, reply) => {
      const result = await kernel.setWalletPolicy(await authenticateApiKey(kernel, request), request.body);
      if (!('timelocked' in result)) return reply.status(200).send(result);
      const { capability, ...created } = result.change;
      return reply.status(202).send({ ...created, changeUrl: `${publicBaseUrl(request)}/changes/${capability}` });
    },
  );
}
