import type {} from '@fastify/swagger';
import type { Kernel } from '@custos/kernel';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { commonErrorResponses, walletNameSchema } from '../schemas.js';
import { authenticateApiKey } from './authenticate.js';

const bearer = [{ apiKey: [] }];

const changeIdSchema = { type: 'string', pattern: '^[0-9a-f]{32}$', description: 'A change id: 32 lowercase hex digits' } as const;
const CHANGE_KINDS = ['2fa.disable', 'factor.remove', 'safeAddress.set', 'policy.loosen'] as const;

const changeViewProperties = {
  id: changeIdSchema,
  walletName: { type: 'string' },
  kind: { type: 'string', description: 'What the change does: 2fa.disable, factor.remove, factor.add, delivery.change, safeAddress.set, policy.loosen' },
  description: { type: 'string', description: 'The change in one line, as the owner’s page and notices show it' },
  state: {
    type: 'string',
    enum: ['requested', 'pending', 'applied', 'cancelled', 'expired'],
    description: 'requested: waiting for the owner’s consent on the page; pending: consented, takes effect at effectiveAt unless cancelled',
  },
  createdAt: { type: 'integer', description: 'ms since the epoch' },
  expiresAt: { type: 'integer', description: 'ms since the epoch: a requested change not consented by then reads expired' },
  effectiveAt: { type: ['integer', 'null'], description: 'ms since the epoch: when a pending change takes effect' },
  decidedAt: { type: ['integer', 'null'], description: 'ms since the epoch: when it was applied or cancelled' },
  policyDiff: {
    type: 'array',
    description:
      'policy.loosen only: every field of the effective policy the change alters, old → new, computed by the kernel from the policy in force when it was asked for and the one it gives (what the owner’s page and notices show)',
    items: {
      type: 'object',
      required: ['field', 'label', 'from', 'to', 'looser'],
      additionalProperties: false,
      properties: {
        field: { type: 'string', description: 'The field’s path: rawHash, native.<chainId>.perTx, tokens.<chainId>:<address>.perWindow, destinations, …' },
        label: { type: 'string', description: 'The field in words, with its unit' },
        from: { type: 'string', description: 'The old value as text' },
        to: { type: 'string', description: 'The new value as text' },
        added: { type: 'array', items: { type: 'string' }, description: 'A list: every entry added' },
        removed: { type: 'array', items: { type: 'string' }, description: 'A list: every entry removed' },
        looser: { type: 'boolean', description: 'Whether this line allows more than before' },
      },
    },
  },
  adminApproval: {
    type: 'string',
    enum: ['waiting', 'approved'],
    description:
      'A wallet that needs the admin quorum besides its owner (TOTP only): waiting until the quorum’s wallet.change.approve is recorded, then approved. Absent when no quorum is needed',
  },
} as const;
const changeViewRequired = ['id', 'walletName', 'kind', 'description', 'state', 'createdAt', 'expiresAt', 'effectiveAt', 'decidedAt'] as const;

/** GET /v1/changes: the change as its tenant sees it (never a capability). */
export const changeViewSchema = { type: 'object', required: [...changeViewRequired], additionalProperties: false, properties: changeViewProperties } as const;

/** POST /v1/changes: the view, the strength the owner's consent needs and the owner's link. */
export const createdChangeSchema = {
  type: 'object',
  required: [...changeViewRequired, 'requiredStrength', 'changeUrl'],
  additionalProperties: false,
  properties: {
    ...changeViewProperties,
    requiredStrength: {
      type: 'string',
      enum: ['present', 'bound'],
      description: 'The strongest strength the wallet has enrolled: what the owner’s consent needs',
    },
    changeUrl: {
      type: 'string',
      description: '<public URL>/changes/<capability>: the change’s page, for the wallet owner only (hand it to the owner; it is not shown again)',
    },
  },
} as const;

const idBody = { type: 'object', required: ['id'], additionalProperties: false, properties: { id: changeIdSchema } } as const;

export interface ChangeRoutesOptions {
  kernel: Kernel;
  publicBaseUrl(request: FastifyRequest): string;
  /** How often the apply loop runs (ms; default 30 s). */
  applyMs?: number;
}

/**
 * Timelocked changes (issue 13, kernel/pendingChanges.ts): the backend asks for a change of a wallet's
 * protection and hands the returned link to the owner, who consents on the kernel's page; the change
 * takes effect after the deployment's delay unless the owner cancels it. A confirm or a cancel with
 * only the API key is refused `owner_consent_required` and audited. The apply loop runs here.
 */
export async function changeRoutes(app: FastifyInstance, { kernel, publicBaseUrl, applyMs = 30_000 }: ChangeRoutesOptions): Promise<void> {
  const loop = startApplyLoop(app, kernel, applyMs);
  app.addHook('onClose', async () => loop.stop());

  app.post<{ Body: { walletName: string; kind: (typeof CHANGE_KINDS)[number]; payload?: Record<string, unknown>; ttlSeconds?: number } }>(
    '/v1/changes',
    {
      schema: {
        summary: 'Ask for a timelocked change of a wallet’s protection; the owner consents on the kernel’s page (scope: register)',
        description:
          'Returns changeUrl, the change’s page for the owner: there the owner consents with a factor of the strongest strength the wallet has enrolled. The change then takes effect after the deployment’s delay (default 48 h, at least 1 h), announced at once on the wallet’s delivery channel, reminded 24 h and 1 h before and confirmed when it takes effect; until then the wallet’s protection is unchanged, and the owner may cancel it with any current factor. kind 2fa.disable (no payload), factor.remove ({ kind, id }), safeAddress.set ({ address }: the emergency exit’s destination), policy.loosen ({ policy }). A wallet has at most 8 open changes (changes_limited); expired and cancelled ones do not count. Audited change.request. See docs/timelock.md.',
        tags: ['timelock'],
        security: bearer,
        body: {
          type: 'object',
          required: ['walletName', 'kind'],
          additionalProperties: false,
          properties: {
            walletName: walletNameSchema,
            kind: { type: 'string', enum: [...CHANGE_KINDS] },
            payload: { type: 'object', description: 'The kind’s payload (see the description)' },
            ttlSeconds: { type: 'integer', minimum: 300, maximum: 604_800, description: 'How long the owner has to consent, seconds (default 86400)' },
          },
        },
        response: { 201: createdChangeSchema, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const { capability, ...created } = await kernel.requestChange(await authenticateApiKey(kernel, request), request.body);
      return reply.status(201).send({ ...created, changeUrl: `${publicBaseUrl(request)}/changes/${capability}` });
    },
  );

  app.get<{ Querystring: { id: string } }>(
    '/v1/changes',
    {
      schema: {
        summary: 'A timelocked change of the caller’s tenant (scope: register)',
        tags: ['timelock'],
        security: bearer,
        querystring: idBody,
        response: { 200: changeViewSchema, ...commonErrorResponses },
      },
    },
    async (request) => kernel.getChange(await authenticateApiKey(kernel, request), { id: request.query.id }),
  );

  for (const step of ['confirm', 'cancel'] as const) {
    app.post<{ Body: { id: string } }>(
      `/v1/changes/${step}`,
      {
        schema: {
          summary: `Always refused: a change is ${step === 'confirm' ? 'confirmed' : 'cancelled'} only by its owner on the kernel’s page`,
          description: `Answers owner_consent_required (HTTP 403), audited as change.${step} denied: an API key alone never ${step}s a timelocked change. Hand the owner the change’s page (changeUrl), or the owner uses the link the signer delivered.`,
          tags: ['timelock'],
          security: bearer,
          body: idBody,
          // Never answered 200: documented so that the refusal reads as a route of the API (always 403 owner_consent_required).
          response: { 200: changeViewSchema, ...commonErrorResponses },
        },
      },
      async (request) => kernel.refuseChangeByApi(await authenticateApiKey(kernel, request), { id: request.body.id }, step),
    );
  }
}

/** Applies due changes (and queues reminders) every `applyMs`; skipped while sealed; a failure is logged, never thrown. */
function startApplyLoop(app: FastifyInstance, kernel: Kernel, applyMs: number): { stop(): void } {
  let running = false;
  const timer = setInterval(() => {
    if (running || kernel.sealed) return;
    running = true;
    kernel
      .applyDueChanges()
      .then((applied) => {
        if (applied > 0) app.log.info({ applied }, 'timelocked changes applied');
      })
      .catch((error: unknown) => app.log.error({ err: error }, 'timelock apply pass failed; the next one tries again'))
      .finally(() => {
        running = false;
      });
  }, applyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
