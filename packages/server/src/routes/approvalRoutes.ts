import type {} from '@fastify/swagger';
import type { ApprovalView, App, Kernel } from '@custos/kernel';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { approvalOperationSchema, summarySchema } from '../chainSchemas.js';
import { approvalIdSchema, commonErrorResponses, idempotencyHeaders, keyIndexSchema, walletNameSchema } from '../schemas.js';
import { authenticateApiKey, idempotencyKeyOf } from './authenticate.js';

const bearer = [{ apiKey: [] }];

/** POST /v1/approvals takes bodies up to 1 MiB (a batch of 100 transactions); every other route keeps buildApp's bodyLimit. */
export const APPROVAL_BODY_LIMIT = 1024 * 1024;

/** The long poll's longest wait (`?waitSeconds`), seconds. */
export const MAX_WAIT_SECONDS = 60;

/** The route of the long poll: buildApp counts its waiting requests in a pool of their own. */
export const APPROVAL_ROUTE = '/v1/approvals/:id';

const approvalViewProperties = {
  id: { type: 'string', description: 'The approval id: 32 lowercase hex digits' },
  walletName: { type: 'string' },
  keyIndex: { type: ['integer', 'null'], description: 'The operation’s key index; null for a batch (each item has its own)' },
  operationType: { type: 'string', enum: ['transaction', 'message', 'typedData', 'authorization', 'hash', 'batch'] },
  opHash: { type: 'string', description: 'The kernel’s hash of the canonical operation: the sign request must recompute the same' },
  summary: summarySchema,
  summaryText: { type: 'string', description: 'The summary as one line of text (what the approval page shows)' },
  requiredStrength: {
    type: 'string',
    enum: ['present', 'bound'],
    description: 'present: a TOTP code typed on the page suffices; bound: only a passkey registered on the kernel’s page',
  },
  state: {
    type: 'string',
    enum: ['pending', 'approved', 'rejected', 'expired', 'cancelled', 'consumed'],
    description: 'consumed: signed with (the identical operation signs again with the same result)',
  },
  createdAt: { type: 'integer', description: 'ms since the epoch' },
  expiresAt: { type: 'integer', description: 'ms since the epoch; a pending approval reads expired from then on' },
  decidedAt: { type: ['integer', 'null'], description: 'ms since the epoch, once approved or rejected' },
  factor: { type: ['string', 'null'], description: 'The factor kind the owner decided with (totp, passkey), once decided' },
  batch: {
    type: 'object',
    required: ['items', 'signed'],
    additionalProperties: false,
    description: 'A batch approval only: its operations in order, and which are signed (the approval is consumed when all are)',
    properties: {
      items: {
        type: 'array',
        items: {
          type: 'object',
          required: ['keyIndex', 'operationType', 'opHash', 'signed', 'auditSeq'],
          additionalProperties: false,
          properties: {
            keyIndex: { type: 'integer' },
            operationType: { type: 'string', enum: ['transaction', 'authorization'] },
            opHash: { type: 'string', description: 'The operation’s own opHash: what its sign request recomputes' },
            signed: { type: 'boolean' },
            auditSeq: { type: ['integer', 'null'], description: 'The audit record of its first signature, once signed' },
          },
        },
      },
      signed: { type: 'integer', description: 'How many of the items are signed' },
    },
  },
  delivery: {
    type: ['object', 'null'],
    description:
      'The newest message the kernel sent for this approval on the wallet’s delivery channel (oob): its status only, never its content or code; null when none (GET and resend only)',
    required: ['status', 'attempts', 'sentAt'],
    additionalProperties: false,
    properties: {
      status: {
        type: 'string',
        enum: ['queued', 'sent', 'failed', 'expired'],
        description: 'queued (waiting or being retried), sent, failed (refused for good), expired (its code died unsent)',
      },
      attempts: { type: 'integer', minimum: 0 },
      sentAt: { type: ['integer', 'null'], description: 'ms since the epoch, once sent' },
    },
  },
} as const;
const approvalViewRequired = [
  'id',
  'walletName',
  'keyIndex',
  'operationType',
  'opHash',
  'summary',
  'summaryText',
  'requiredStrength',
  'state',
  'createdAt',
  'expiresAt',
  'decidedAt',
  'factor',
] as const;

/** GET /v1/approvals/{id}, cancel: the approval as its tenant sees it. */
export const approvalViewSchema = { type: 'object', required: [...approvalViewRequired], properties: approvalViewProperties } as const;

/** POST /v1/approvals: the view plus the owner's link (which holds the page's capability; the capability is not sent apart). */
export const createdApprovalSchema = {
  type: 'object',
  required: [...approvalViewRequired, 'approveUrl'],
  properties: {
    ...approvalViewProperties,
    approveUrl: {
      type: 'string',
      description:
        '<public URL>/approve/<capability>: the approval page, for the wallet owner only (hand it to the owner; it is not shown again and is never logged by the signer)',
    },
  },
} as const;

const idParams = { type: 'object', required: ['id'], additionalProperties: false, properties: { id: approvalIdSchema } } as const;

export interface ApprovalRoutesOptions {
  kernel: Kernel;
  /** The origin approveUrl starts with, for this request (buildApp: --public-url, else http(s)://localhost:<the pages' port>). */
  publicBaseUrl(request: FastifyRequest): string;
  /** How often a waiting GET reads the approval again from the store, for decisions taken by other replicas (ms). */
  pollMs?: number;
  /** How often pending approvals past their expiry are marked expired and audited (ms). */
  sweepMs?: number;
}

/**
 * Approvals (scope `sign`): the backend asks for one operation to be approved, hands approveUrl to
 * the wallet owner, waits for the decision (long poll) and signs with `approvalId`. The kernel owns
 * every rule (tenant, strength, caps, states); these routes carry JSON, wait, and sweep expiries.
 */
export async function approvalRoutes(app: FastifyInstance, { kernel, publicBaseUrl, pollMs = 250, sweepMs = 30_000 }: ApprovalRoutesOptions): Promise<void> {
  const waits = createApprovalWaits(kernel, pollMs);
  const sweep = startExpirySweep(app, kernel, sweepMs);
  // At shutdown the waiting requests answer at once with the state they have (a restart does not hold them for a minute).
  app.addHook('preClose', async () => waits.close());
  app.addHook('onClose', async () => {
    sweep.stop();
    waits.close();
  });

  app.post<{ Body: { walletName: string; keyIndex?: number; operation: Record<string, unknown>; ttlSeconds?: number } }>(
    '/v1/approvals',
    {
      bodyLimit: APPROVAL_BODY_LIMIT,
      schema: {
        summary: 'Ask the wallet owner to approve one operation on the kernel’s page (scope: sign)',
        description:
          'Returns approveUrl, the approval page for the owner, and the approval id to wait on (GET /v1/approvals/{id}?waitSeconds=N) and to sign with (approvalId on the /v1/sign/* route of the operation; the identical operation, or approval_mismatch). A batch (operation.batch, up to 100 transactions and authorizations, no top-level keyIndex) is one approval whose opHash is SHA-256("custos.batch.v1\\0" ‖ the items\' opHashes); each item is then signed once on its own route with the approval id. Bodies up to 1 MiB (larger: 413 body_too_large). Refused consent_not_required for a wallet with no enrolled factor, too_many_approvals over the pending caps. Audited as approval.create. See docs/approvals.md.',
        tags: ['approvals'],
        security: bearer,
        body: {
          type: 'object',
          required: ['walletName', 'operation'],
          additionalProperties: false,
          properties: {
            walletName: walletNameSchema,
            keyIndex: { ...keyIndexSchema, description: 'The operation’s key index: required, except for a batch, where it must be absent' },
            operation: approvalOperationSchema,
            ttlSeconds: { type: 'integer', minimum: 60, maximum: 3600, description: 'How long the owner has to decide, seconds (default 600)' },
          },
        },
        headers: idempotencyHeaders,
        response: { 201: createdApprovalSchema, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const { capability, ...view } = await kernel.createApproval(await authenticateApiKey(kernel, request), {
        ...request.body,
        idempotencyKey: idempotencyKeyOf(request),
      });
      return reply.status(201).send({ ...view, approveUrl: `${publicBaseUrl(request)}/approve/${capability}` });
    },
  );

  app.get<{ Params: { id: string }; Querystring: { waitSeconds?: string } }>(
    APPROVAL_ROUTE,
    {
      schema: {
        summary: 'An approval and its state; with waitSeconds, waits for the owner’s decision (scope: sign)',
        description: `With waitSeconds=N (0–${MAX_WAIT_SECONDS}) the answer comes as soon as the state leaves pending — decided on any replica — or after N seconds with the state then (pending). Waiting requests are counted apart from the in-flight limit (custos serve --max-waiting; over it 503 overloaded). Another tenant's approval, or an unknown id: approval_not_found.`,
        tags: ['approvals'],
        security: bearer,
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            waitSeconds: {
              type: 'string',
              pattern: '^([0-9]|[1-5][0-9]|60)$',
              description: `Seconds to wait for a decision, 0–${MAX_WAIT_SECONDS} (decimal); default 0: answer at once`,
            },
          },
        },
        response: { 200: approvalViewSchema, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const caller = await authenticateApiKey(kernel, request);
      const { id } = request.params;
      const waitSeconds = request.query.waitSeconds === undefined ? 0 : Number(request.query.waitSeconds);
      if (waitSeconds === 0) return kernel.getApproval(caller, { id });
      return waits.wait(caller, id, waitSeconds * 1000, request, reply);
    },
  );

  app.post<{ Params: { id: string } }>(
    `${APPROVAL_ROUTE}/cancel`,
    {
      schema: {
        summary: 'Cancel a pending approval (scope: sign)',
        description:
          'The approval becomes cancelled (audited as approval.cancel) and can no longer be approved or signed with. An approval already decided keeps its state, and the answer shows it.',
        tags: ['approvals'],
        security: bearer,
        params: idParams,
        response: { 200: approvalViewSchema, ...commonErrorResponses },
      },
    },
    async (request) => kernel.cancelApproval(await authenticateApiKey(kernel, request), { id: request.params.id }),
  );

  app.post<{ Params: { id: string } }>(
    `${APPROVAL_ROUTE}/resend`,
    {
      schema: {
        summary: 'Send the approval’s delivered code again (scope: sign)',
        description:
          'For a wallet with a delivery channel (oob): a new code for the pending approval (the earlier one dies), sent without the link (the owner has it). Never resets the approval’s wrong tries; at most 3 messages per approval and the wallet’s hourly cap (delivery_limited). Audited as approval.resend.',
        tags: ['approvals'],
        security: bearer,
        params: idParams,
        response: { 200: approvalViewSchema, ...commonErrorResponses },
      },
    },
    async (request) => kernel.resendApprovalCode({ app: await authenticateApiKey(kernel, request), id: request.params.id }),
  );
}

/**
 * The long polls of this app: a waiting request reads its approval again when this process changes
 * it (kernel.watchApprovals), every `pollMs` (a decision taken on another replica is only in the
 * store), and answers when the state is no longer pending, at its deadline, when its client goes,
 * or at shutdown.
 */
export function createApprovalWaits(kernel: Kernel, pollMs: number) {
  const wakers = new Map<string, Set<() => void>>();
  let closed = false;
  const unwatch = kernel.watchApprovals((id) => {
    for (const wake of wakers.get(id) ?? []) wake();
  });
  const subscribe = (id: string, wake: () => void) => {
    const set = wakers.get(id) ?? new Set<() => void>();
    wakers.set(id, set);
    set.add(wake);
    return () => {
      set.delete(wake);
      if (set.size === 0 && wakers.get(id) === set) wakers.delete(id);
    };
  };

  return {
    async wait(caller: App, id: string, waitMs: number, request: FastifyRequest, reply: FastifyReply): Promise<ApprovalView> {
      const deadline = performance.now() + waitMs;
      let changed = false;
      let gone = false;
      let wake = () => {};
      const onChange = () => {
        changed = true;
        wake();
      };
      const unsubscribe = subscribe(id, onChange);
      const onGone = () => {
        gone = true;
        wake();
      };
      reply.raw.once('close', onGone);
      const restoreTimeout = holdSocketOpen(request, waitMs);
      try {
        for (;;) {
          // subscribed before the read: a change between the read and the sleep still wakes it
          const view = await kernel.getApproval(caller, { id });
          const left = deadline - performance.now();
          if (view.state !== 'pending' || left <= 0 || gone || closed) return view;
          if (!changed)
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, Math.min(pollMs, left));
              wake = () => {
                clearTimeout(timer);
                resolve();
              };
            });
          changed = false;
          wake = () => {};
        }
      } finally {
        unsubscribe();
        reply.raw.off('close', onGone);
        restoreTimeout();
      }
    },
    /** Every wait answers now, and none starts waiting again. */
    close() {
      if (closed) return;
      closed = true;
      unwatch();
      for (const set of wakers.values()) for (const wake of set) wake();
    },
  };
}

/**
 * A long poll sends nothing until it answers: the connection's idle timeout (createListener's
 * idleMs) is raised to cover the wait, and put back before the answer. (Node's requestTimeout
 * covers only receiving the request, which is over by then.)
 */
function holdSocketOpen(request: FastifyRequest, waitMs: number): () => void {
  const socket = request.raw.socket as { timeout?: number; setTimeout?: (ms: number) => unknown } | undefined;
  const previous = socket?.timeout;
  if (socket?.setTimeout === undefined || previous === undefined || previous === 0 || previous > waitMs + 10_000) return () => {};
  socket.setTimeout(waitMs + 10_000);
  return () => socket.setTimeout?.(previous);
}

/** Marks pending approvals past their expiry `expired` (audited) and deletes policy usage older than any window, every `sweepMs`; skipped while sealed; a failure is logged, never thrown. */
function startExpirySweep(app: FastifyInstance, kernel: Kernel, sweepMs: number): { stop(): void } {
  let running = false;
  const timer = setInterval(() => {
    if (running || kernel.sealed) return;
    running = true;
    kernel
      .expireApprovals()
      .then(async (expired) => {
        if (expired > 0) app.log.info({ expired }, 'approvals expired');
        // policy usage older than any window counts nowhere (kernel/walletPolicies.ts)
        const swept = await kernel.sweepPolicyUsage();
        if (swept > 0) app.log.info({ swept }, 'policy usage swept');
      })
      .catch((error: unknown) => app.log.error({ err: error }, 'approval expiry sweep failed; the next one tries again'))
      .finally(() => {
        running = false;
      });
  }, sweepMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
