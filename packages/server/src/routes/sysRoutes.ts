import type {} from '@fastify/swagger';
import { CustosError, type Kernel } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';
import { commonErrorResponses } from '../schemas.js';
import { authenticateApiKey } from './authenticate.js';

const progressSchema = {
  type: 'object',
  required: ['submitted', 'threshold'],
  properties: { submitted: { type: 'integer' }, threshold: { type: 'integer' } },
} as const;

const statusProperties = {
  sealed: { type: 'boolean' },
  signerId: { type: ['string', 'null'] },
  version: { type: 'string' },
  derivation: { type: ['string', 'null'] },
  unsealer: {
    type: ['object', 'null'],
    description: 'How the signer unseals: passphrase, shamir (threshold of shares, progress while sealed) or pkcs11',
    required: ['type'],
    properties: {
      type: { type: 'string', enum: ['passphrase', 'shamir', 'pkcs11'] },
      threshold: { type: 'integer' },
      shares: { type: 'integer' },
      progress: progressSchema,
    },
  },
} as const;

const statusSchema = { type: 'object', required: ['sealed', 'signerId', 'version', 'derivation', 'unsealer'], properties: statusProperties } as const;

/** A share file: its text as written by init/rekey, or the same JSON object. */
const shareSchema = {
  anyOf: [
    { type: 'string', minLength: 1, maxLength: 4096 },
    { type: 'object', maxProperties: 16 },
  ],
  description: 'Shamir: one operator share file (its text, or its JSON object)',
} as const;

/**
 * Status (no auth), unseal and unseal reset (served while sealed; the credential is the
 * authentication), and seal on demand (API key with the `admin` scope).
 */
export async function sysRoutes(app: FastifyInstance, { kernel }: { kernel: Kernel }): Promise<void> {
  app.get(
    '/v1/sys/status',
    { schema: { summary: 'Seal state, unsealer and identity of the signer (no auth)', tags: ['sys'], response: { 200: statusSchema } } },
    async () => kernel.status(),
  );

  app.post<{ Body: { passphrase?: string; share?: string | Record<string, unknown> } }>(
    '/v1/sys/unseal',
    {
      schema: {
        summary: 'Unseal: the passphrase, or one Shamir share per call',
        description:
          'Passphrase signer: {"passphrase"} unseals. Shamir signer: {"share"} submits one operator share; until the threshold is reached the answer is {"sealed": true, "progress": {submitted, threshold}}; the share that reaches it unseals (or fails unseal_failed and discards the pending shares).',
        tags: ['sys'],
        body: {
          type: 'object',
          required: [],
          additionalProperties: false,
          // exactly one of the two (a missing passphrase is named as such)
          oneOf: [{ required: ['passphrase'] }, { required: ['share'] }],
          properties: { passphrase: { type: 'string', minLength: 1, maxLength: 1024 }, share: shareSchema },
        },
        response: {
          200: { type: 'object', required: statusSchema.required, properties: { ...statusProperties, progress: progressSchema } },
          ...commonErrorResponses,
        },
      },
    },
    async (request) => {
      if (!kernel.status().sealed) throw new CustosError('already_unsealed', 'the signer is already unsealed');
      const { passphrase: text, share } = request.body;
      if (share !== undefined) {
        const progress = await kernel.submitUnsealShare(typeof share === 'string' ? share : JSON.stringify(share));
        // The server log records each accepted share (never the share itself).
        request.log.info({ event: 'sys.unseal.share', progress: progress.progress, sealed: progress.sealed }, 'unseal share accepted');
        return { ...kernel.status(), progress: progress.progress };
      }
      if (text === undefined) throw new CustosError('invalid_input', 'body: expected passphrase or share', { details: { field: 'body' } });
      const passphrase = new Uint8Array(Buffer.from(text, 'utf8'));
      try {
        await kernel.unseal(passphrase);
      } finally {
        passphrase.fill(0);
      }
      return kernel.status();
    },
  );

  app.post(
    '/v1/sys/unseal/reset',
    {
      schema: {
        summary: 'Discard the Shamir shares submitted so far (no auth, like unseal)',
        tags: ['sys'],
        response: { 200: { type: 'object', required: ['discarded'], properties: { discarded: { type: 'integer' } } }, ...commonErrorResponses },
      },
    },
    async (request) => {
      if (!kernel.status().sealed) throw new CustosError('already_unsealed', 'the signer is already unsealed');
      const result = kernel.resetUnseal();
      // Unauthenticated by design (the signer is sealed): the server log keeps who and when.
      request.log.warn({ event: 'sys.unseal.reset', discarded: result.discarded, remoteAddress: request.ip }, 'unseal progress reset');
      return result;
    },
  );

  app.post(
    '/v1/sys/seal',
    {
      schema: {
        summary: 'Seal now: wipe the key material from memory (scope: admin)',
        description: 'Requests in flight either finish with their audit record or fail 503 sealed. Audited as sys.seal.',
        tags: ['sys'],
        security: [{ apiKey: [] }],
        response: { 200: statusSchema, ...commonErrorResponses },
      },
    },
    async (request) => kernel.sealOnDemand(await authenticateApiKey(kernel, request)),
  );
}
