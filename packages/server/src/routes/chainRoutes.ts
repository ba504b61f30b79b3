import type {} from '@fastify/swagger';
import type { Kernel } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';
import {
  authorizationResponseSchema,
  authorizationSchema,
  messageSchema,
  operationBody,
  signatureResponseSchema,
  transactionResponseSchema,
  transactionSchema,
  typedDataSchema,
} from '../chainSchemas.js';
import { commonErrorResponses, idempotencyHeaders } from '../schemas.js';
import { authenticateApiKey, idempotencyKeyOf } from './authenticate.js';

const bearer = [{ apiKey: [] }];
const CONSENT =
  'Same rules as /v1/sign/hash: a wallet with an enrolled TOTP factor signs only with a valid, unused code (±1 step, single use, throttled) or with approvalId, an approval the owner approved for exactly this operation (docs/approvals.md); the response leaves only after the decision (with its summary) is durably in the audit log.';

/**
 * The Ethereum operations. The kernel parses and validates the operation, computes the digest
 * itself, renders the summary and signs; these routes only carry JSON in and out.
 */
export async function chainRoutes(app: FastifyInstance, { kernel }: { kernel: Kernel }): Promise<void> {
  app.post<{ Body: { walletName: string; keyIndex: number; code?: string; approvalId?: string; transaction: unknown } }>(
    '/v1/sign/transaction',
    {
      schema: {
        summary: 'Sign an Ethereum transaction: legacy (EIP-155), EIP-2930, EIP-1559 or EIP-7702 (scope: sign)',
        description: `Returns the signed serialised transaction (for eth_sendRawTransaction), its hash, the signature and the summary. ${CONSENT}`,
        tags: ['sign'],
        security: bearer,
        body: operationBody('transaction', transactionSchema),
        headers: idempotencyHeaders,
        response: { 200: transactionResponseSchema, ...commonErrorResponses },
      },
    },
    async (request) => kernel.signTransaction(await authenticateApiKey(kernel, request), { ...request.body, idempotencyKey: idempotencyKeyOf(request) }),
  );

  app.post<{ Body: { walletName: string; keyIndex: number; code?: string; approvalId?: string; message: unknown } }>(
    '/v1/sign/message',
    {
      schema: {
        summary: 'Sign a message, EIP-191 personal_sign (scope: sign)',
        description: `message is {text} (its UTF-8 bytes) or {raw} (0x-hex bytes). ${CONSENT}`,
        tags: ['sign'],
        security: bearer,
        body: operationBody('message', messageSchema),
        headers: idempotencyHeaders,
        response: { 200: signatureResponseSchema, ...commonErrorResponses },
      },
    },
    async (request) => kernel.signMessage(await authenticateApiKey(kernel, request), { ...request.body, idempotencyKey: idempotencyKeyOf(request) }),
  );

  app.post<{ Body: { walletName: string; keyIndex: number; code?: string; approvalId?: string; typedData: unknown } }>(
    '/v1/sign/typed-data',
    {
      schema: {
        summary: 'Sign EIP-712 typed data (scope: sign)',
        description: `Typed data that fails EIP-712 validation is refused with the field named (typedData.types.Mail[0].type). ${CONSENT}`,
        tags: ['sign'],
        security: bearer,
        body: operationBody('typedData', typedDataSchema),
        headers: idempotencyHeaders,
        response: { 200: signatureResponseSchema, ...commonErrorResponses },
      },
    },
    async (request) => kernel.signTypedData(await authenticateApiKey(kernel, request), { ...request.body, idempotencyKey: idempotencyKeyOf(request) }),
  );

  app.post<{ Body: { walletName: string; keyIndex: number; code?: string; approvalId?: string; authorization: unknown } }>(
    '/v1/sign/authorization',
    {
      schema: {
        summary: 'Sign an EIP-7702 authorization: the account delegates control to a contract (scope: sign)',
        description: `The returned authorization goes as is into a type-4 transaction's authorizationList. chainId 0 makes it valid on every chain (flagged in the summary). ${CONSENT}`,
        tags: ['sign'],
        security: bearer,
        body: operationBody('authorization', authorizationSchema),
        headers: idempotencyHeaders,
        response: { 200: authorizationResponseSchema, ...commonErrorResponses },
      },
    },
    async (request) => kernel.signAuthorization(await authenticateApiKey(kernel, request), { ...request.body, idempotencyKey: idempotencyKeyOf(request) }),
  );
}
