import type {} from '@fastify/swagger';
import type { Kernel } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';
import { commonErrorResponses } from '../schemas.js';
import { authenticateApiKey } from './authenticate.js';

const bearer = [{ apiKey: [] }];

interface AuditQuerystring {
  cursor?: string;
  limit?: string;
  walletName?: string;
  appId?: string;
  action?: string;
  decision?: string;
  opHash?: string;
  since?: string;
  until?: string;
}

const auditRecordSchema = {
  type: 'object',
  required: ['seq', 'ts', 'appId', 'walletName', 'action', 'opHash', 'decision', 'reason', 'detail', 'prevHash', 'hash'],
  additionalProperties: false,
  properties: {
    seq: { type: 'integer', description: 'Position in the one hash chain' },
    ts: { type: 'integer', description: 'ms since the epoch, server clock' },
    appId: { type: ['string', 'null'], description: 'The API key id that asked; null for the operator (CLI) and the kernel itself' },
    walletName: { type: ['string', 'null'] },
    action: { type: 'string', description: 'sign.transaction, totp.enroll, apikey.create, sys.init, …' },
    opHash: { type: ['string', 'null'], description: 'Hex SHA-256 of the canonical operation (signing decisions)' },
    decision: { type: 'string', enum: ['allowed', 'denied'] },
    reason: { type: ['string', 'null'], description: 'The error code of a denial' },
    detail: { type: 'object', additionalProperties: true, description: 'Non-secret context' },
    prevHash: { type: 'string' },
    hash: { type: 'string' },
  },
} as const;

/** GET /v1/audit: the operator's filtered, paged read of the audit log (kernel/listAudit.ts, docs/audit.md). */
export async function auditRoutes(app: FastifyInstance, { kernel }: { kernel: Kernel }): Promise<void> {
  app.get<{ Querystring: AuditQuerystring }>(
    '/v1/audit',
    {
      schema: {
        summary: 'The audit log, filtered, oldest first, a page at a time (scope: admin, operator tenant)',
        description:
          'Records with seq after the cursor that match every filter given. Give nextCursor back as cursor for the next page; it is stable while records are appended, so polling with the last nextCursor follows the log. Reading is not itself audited (a refusal is: audit.read, denied).',
        tags: ['admin'],
        security: bearer,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            cursor: { type: 'string', maxLength: 16, description: 'The nextCursor of the page before (opaque)' },
            limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$', description: 'At most this many (1–1000, default 100)' },
            walletName: { type: 'string', maxLength: 1024, description: 'Only this wallet' },
            appId: { type: 'string', maxLength: 128, description: 'Only what this API key id asked' },
            action: { type: 'string', maxLength: 64, description: 'Only this action (e.g. sign.transaction), or every action under a prefix (sign.*)' },
            decision: { type: 'string', enum: ['allowed', 'denied'], description: 'Only this decision' },
            opHash: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'Only this operation hash' },
            since: { type: 'string', pattern: '^[0-9]{1,15}$', description: 'Only records at or after this time (ms since the epoch)' },
            until: { type: 'string', pattern: '^[0-9]{1,15}$', description: 'Only records before this time (ms since the epoch)' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['records', 'nextCursor', 'more'],
            additionalProperties: false,
            properties: {
              records: { type: 'array', items: auditRecordSchema },
              nextCursor: { type: 'string', description: 'Give back as cursor for the records after this page' },
              more: { type: 'boolean', description: 'The page is full: more records may match now' },
            },
          },
          ...commonErrorResponses,
        },
      },
    },
    async (request) => {
      const { limit, since, until, ...strings } = request.query;
      return kernel.listAudit(await authenticateApiKey(kernel, request), {
        ...strings,
        ...(limit === undefined ? {} : { limit: Number(limit) }),
        ...(since === undefined ? {} : { since: Number(since) }),
        ...(until === undefined ? {} : { until: Number(until) }),
      });
    },
  );
}
