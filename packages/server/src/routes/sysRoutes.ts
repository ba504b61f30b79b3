import type {} from '@fastify/swagger';
import { CustosError, type Kernel } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';
import { commonErrorResponses } from '../schemas.js';

const statusSchema = {
  type: 'object',
  required: ['sealed', 'signerId', 'version', 'derivation'],
  properties: {
    sealed: { type: 'boolean' },
    signerId: { type: ['string', 'null'] },
    version: { type: 'string' },
    derivation: { type: ['string', 'null'] },
  },
} as const;

/** Status (no auth) and unseal: the only routes served while sealed. */
export async function sysRoutes(app: FastifyInstance, { kernel }: { kernel: Kernel }): Promise<void> {
  app.get(
    '/v1/sys/status',
    { schema: { summary: 'Seal state and identity of the signer (no auth)', tags: ['sys'], response: { 200: statusSchema } } },
    async () => kernel.status(),
  );

  app.post<{ Body: { passphrase: string } }>(
    '/v1/sys/unseal',
    {
      schema: {
        summary: 'Unseal with the passphrase',
        tags: ['sys'],
        body: {
          type: 'object',
          required: ['passphrase'],
          additionalProperties: false,
          properties: { passphrase: { type: 'string', minLength: 1, maxLength: 1024 } },
        },
        response: { 200: statusSchema, ...commonErrorResponses },
      },
    },
    async (request) => {
      if (!kernel.status().sealed) throw new CustosError('already_unsealed', 'the signer is already unsealed');
      const passphrase = new Uint8Array(Buffer.from(request.body.passphrase, 'utf8'));
      try {
        await kernel.unseal(passphrase);
      } finally {
        passphrase.fill(0);
      }
      return kernel.status();
    },
  );
}
