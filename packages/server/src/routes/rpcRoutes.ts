import type {} from '@fastify/swagger';
import { type App, CustosError, type Kernel, MAX_RPC_ACCOUNTS_PAGE } from '@custos/kernel';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { answerRpcCall, ETH_ACCOUNTS_LIMIT, toJsonRpcError } from '../rpc/answerRpcCall.js';
import type { Upstream } from '../rpc/createUpstream.js';
import { JsonRpcError, RPC_CODES } from '../rpc/JsonRpcError.js';
import { commonErrorResponses, keyIndexSchema, walletNameSchema } from '../schemas.js';
import { createApprovalWaits } from './approvalRoutes.js';
import { authenticateApiKey } from './authenticate.js';

const bearer = [{ apiKey: [] }];

/** The most calls one JSON-RPC batch may hold. */
export const MAX_RPC_BATCH = 100;
/** The largest JSON-RPC request body (bytes): a batch of transactions with calldata, typed data. */
export const RPC_BODY_LIMIT = 1024 * 1024;
/** The body of a request that is not JSON (answered -32700). */
const NOT_JSON = Object.freeze({ notJson: true });
/** The longest a method name may be. */
const MAX_METHOD_LENGTH = 128;

export interface RpcRoutesOptions {
  kernel: Kernel;
  upstream: Upstream;
  /** How long a signing call waits for the owner's decision before it answers approval_pending (ms; --rpc-wait). */
  rpcWaitMs: number;
  /** Whether `?apiKey=` is accepted instead of the Authorization header (--rpc-key-in-url). */
  keyInUrl: boolean;
  /** The origin approveUrl starts with, for this request (as for POST /v1/approvals). */
  publicBaseUrl(request: FastifyRequest): string;
  /**
   * A slot of the approvals' waiting pool (buildApp's --max-waiting) for this request, released by the
   * returned function; the request's in-flight slot is given back meanwhile. Undefined when the pool is full.
   */
  enterWaiting(request: FastifyRequest): (() => void) | undefined;
  /** Runs `work` (a call to the node) with the request out of the in-flight guard's busy count meanwhile (it keeps its slot). */
  awayWhile?<T>(request: FastifyRequest, work: () => Promise<T>): Promise<T>;
}

const rpcAccountSchema = {
  type: 'object',
  required: ['address', 'walletName', 'keyIndex', 'createdAt'],
  properties: {
    address: { type: 'string', description: '0x + 40 lowercase hex digits, derived by the kernel' },
    walletName: { type: 'string' },
    keyIndex: { type: 'integer' },
    createdAt: { type: 'integer', description: 'ms since the epoch, when it was first registered' },
  },
} as const;

const rpcErrorSchema = {
  type: 'object',
  required: ['code', 'message'],
  properties: {
    code: { type: 'integer' },
    message: { type: 'string' },
    data: { description: 'For a Custos refusal (4001, 4100, -32603): { code, details?, approvalId?, approveUrl? }; for an upstream error, its data' },
  },
} as const;
const rpcResponseSchema = {
  type: 'object',
  required: ['jsonrpc', 'id'],
  properties: {
    jsonrpc: { type: 'string', enum: ['2.0'] },
    id: { description: 'The request’s id (string, number or null)' },
    result: { description: 'The method’s result' },
    error: rpcErrorSchema,
  },
} as const;

/** A JSON-RPC request object as read: its id (undefined for a notification), or the error it earns. */
type ReadCall = { id: unknown; notification: boolean; call?: { method: string; params: unknown; raw: Record<string, unknown> }; error?: JsonRpcError };

function readCall(value: unknown): ReadCall {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { id: null, notification: false, error: new JsonRpcError(RPC_CODES.invalidRequest, 'expected a JSON-RPC request object') };
  const raw = value as Record<string, unknown>;
  const hasId = Object.hasOwn(raw, 'id');
  const id = raw.id;
  const idValid = !hasId || id === null || typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));
  const answerId = hasId && idValid ? id : null;
  if (!idValid) return { id: null, notification: false, error: new JsonRpcError(RPC_CODES.invalidRequest, 'id: expected a string, a number or null') };
  if (raw.jsonrpc !== '2.0') return { id: answerId, notification: false, error: new JsonRpcError(RPC_CODES.invalidRequest, 'jsonrpc: expected "2.0"') };
  if (typeof raw.method !== 'string' || raw.method.length === 0 || raw.method.length > MAX_METHOD_LENGTH)
    return {
      id: answerId,
      notification: false,
      error: new JsonRpcError(RPC_CODES.invalidRequest, `method: expected a string of 1–${MAX_METHOD_LENGTH} characters`),
    };
  const params = raw.params;
  if (params !== undefined && (typeof params !== 'object' || params === null))
    return { id: answerId, notification: false, error: new JsonRpcError(RPC_CODES.invalidRequest, 'params: expected an array or an object') };
  return { id: answerId, notification: !hasId, call: { method: raw.method, params, raw } };
}

/**
 * The Ethereum JSON-RPC signer (`POST /v1/rpc`, docs/json-rpc.md) and its address book
 * (`/v1/rpc/accounts`). The protocol is read here; every decision is the kernel's.
 */
export async function rpcRoutes(app: FastifyInstance, options: RpcRoutesOptions): Promise<void> {
  const { kernel, upstream, rpcWaitMs, keyInUrl, publicBaseUrl, enterWaiting, awayWhile } = options;
  const waits = createApprovalWaits(kernel, 250);
  app.addHook('preClose', async () => waits.close());
  app.addHook('onClose', async () => waits.close());
  // The body is read as text here, so that a body that is not JSON answers the JSON-RPC parse error (-32700).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(['application/json', '*'], { parseAs: 'string', bodyLimit: RPC_BODY_LIMIT }, (_request, body, done) => {
    try {
      done(null, JSON.parse(String(body)));
    } catch {
      done(null, NOT_JSON);
    }
  });

  /** The caller: Authorization: Bearer, or ?apiKey= where the deployment allows it. */
  async function caller(request: FastifyRequest<{ Querystring: { apiKey?: string } }>): Promise<App> {
    const inUrl = request.query.apiKey;
    if (inUrl === undefined) return authenticateApiKey(kernel, request);
    // refused even beside a header: a deployment that did not opt in has its keys kept out of URLs
    if (!keyInUrl)
      throw new CustosError(
        'invalid_input',
        'apiKey: an API key in the URL is accepted only when the signer runs with --rpc-key-in-url; send Authorization: Bearer',
        {
          details: { field: 'apiKey', in: 'querystring' },
        },
      );
    return request.headers.authorization === undefined ? kernel.authenticateApiKey(inUrl) : authenticateApiKey(kernel, request);
  }

  app.post<{ Querystring: { apiKey?: string }; Body: unknown }>(
    '/v1/rpc',
    {
      bodyLimit: RPC_BODY_LIMIT,
      schema: {
        summary:
          'Ethereum JSON-RPC signer: eth_accounts, eth_sign, personal_sign, eth_signTypedData_v4, eth_signTransaction, eth_sendTransaction (scope: sign)',
        description: `A JSON-RPC 2.0 request or batch (at most ${MAX_RPC_BATCH} calls), answered with HTTP 200 and JSON-RPC responses. Signing methods sign with the wallet key of the request's address in the tenant's address book (POST /v1/rpc/accounts); every other method is forwarded unchanged to the upstream node (--upstream-rpc), except personal_*, wallet_*, eth_requestAccounts, eth_sendUnsignedTransaction, eth_coinbase, eth_submitWork, eth_submitHashrate, older eth_signTypedData_* versions and the admin_, debug_, miner_, txpool_, anvil_, hardhat_, evm_, parity_, signer_, clique_, engine_, ibft_, qbft_, perm_, les_, account_, shh_ and db_ namespaces, compared without case (-32601). A wallet that needs consent answers 4100 with data { code: "approval_pending", approvalId, approveUrl } after --rpc-wait; the identical request once approved signs. Rejected: 4001; other refusals: 4100 with the Custos code in data.code. See docs/json-rpc.md.`,
        tags: ['rpc'],
        security: bearer,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { apiKey: { type: 'string', maxLength: 512, description: 'The API key, only with custos serve --rpc-key-in-url (never logged)' } },
        },
        body: {
          description: `A JSON-RPC 2.0 request object, or a batch: an array of 1–${MAX_RPC_BATCH} of them. Any JSON is taken: what is not a request is answered with a JSON-RPC error (-32600; -32700 for a body that is not JSON), never HTTP 400.`,
        },
        response: {
          200: { description: 'A JSON-RPC response, or an array of them for a batch', anyOf: [rpcResponseSchema, { type: 'array', items: rpcResponseSchema }] },
          204: { description: 'Every call of the request was a notification (no id): nothing to answer', type: 'null' },
          ...commonErrorResponses,
        },
      },
    },
    async (request, reply) => {
      const appOfKey = await caller(request);
      const body = request.body;
      if (body === NOT_JSON || body === undefined)
        return { jsonrpc: '2.0', id: null, error: new JsonRpcError(RPC_CODES.parseError, 'the body is not JSON').toJSON() };
      const callContext = context(appOfKey, request, reply);
      const answer = async (value: unknown) => {
        const read = readCall(value);
        if (read.error !== undefined) return { jsonrpc: '2.0', id: read.id, error: read.error.toJSON() };
        try {
          const result = await answerRpcCall(callContext, read.call as NonNullable<ReadCall['call']>);
          return read.notification ? undefined : { jsonrpc: '2.0', id: read.id, result: result ?? null };
        } catch (error) {
          const rpcError = toJsonRpcError(error);
          if (rpcError.code === RPC_CODES.internalError) request.log.error({ err: error }, 'JSON-RPC call failed');
          return read.notification ? undefined : { jsonrpc: '2.0', id: read.id, error: rpcError.toJSON() };
        }
      };
      if (!Array.isArray(body)) {
        const single = await answer(body);
        return single === undefined ? reply.status(204).send() : single;
      }
      if (body.length === 0 || body.length > MAX_RPC_BATCH)
        return { jsonrpc: '2.0', id: null, error: new JsonRpcError(RPC_CODES.invalidRequest, `a batch holds 1–${MAX_RPC_BATCH} calls`).toJSON() };
      // one after the other: a batch's transactions are filled (nonces) in its order
      const answers = [];
      for (const value of body) {
        const one = await answer(value);
        if (one !== undefined) answers.push(one);
      }
      return answers.length === 0 ? reply.status(204).send() : answers;
    },
  );

  function context(app: App, request: FastifyRequest, reply: FastifyReply) {
    // one --rpc-wait per HTTP request, however many calls of a batch wait in it
    const deadline = performance.now() + rpcWaitMs;
    const away = <T>(work: () => Promise<T>): Promise<T> => (awayWhile === undefined ? work() : awayWhile(request, work));
    return {
      kernel,
      app,
      upstream: {
        forward: (call: Record<string, unknown>) => away(() => upstream.forward(call)),
        call: <T = unknown>(method: string, params: unknown[]) => away(() => upstream.call<T>(method, params)),
      } satisfies Upstream,
      approveUrl: (capability: string) => `${publicBaseUrl(request)}/approve/${capability}`,
      async awaitDecision(approvalId: string) {
        const left = Math.floor(deadline - performance.now());
        const release = left > 0 ? enterWaiting(request) : undefined;
        try {
          // the waiting pool full, or the wait spent (or none configured): the state now
          if (release === undefined) return (await kernel.getApproval(app, { id: approvalId })).state;
          return (await waits.wait(app, approvalId, left, request, reply)).state;
        } finally {
          release?.();
        }
      },
    };
  }

  app.post<{ Body: { walletName: string; keyIndex: number } }>(
    '/v1/rpc/accounts',
    {
      schema: {
        summary: 'Add a wallet key’s address to the tenant’s JSON-RPC address book (scope: sign)',
        description: `The kernel derives the address; eth_accounts answers the first ${ETH_ACCOUNTS_LIMIT} addresses registered, and a signing call's from must be one of the book's. Registering an address again answers it as stored. Audited as rpc.account.add.`,
        tags: ['rpc'],
        security: bearer,
        body: {
          type: 'object',
          required: ['walletName', 'keyIndex'],
          additionalProperties: false,
          properties: { walletName: walletNameSchema, keyIndex: keyIndexSchema },
        },
        response: { 200: rpcAccountSchema, ...commonErrorResponses },
      },
    },
    async (request) => kernel.registerRpcAccount(await authenticateApiKey(kernel, request), request.body),
  );

  app.get<{ Querystring: { cursor?: string; limit?: string } }>(
    '/v1/rpc/accounts',
    {
      schema: {
        summary: 'The tenant’s JSON-RPC address book, in the order it was registered (scope: sign)',
        description: 'One page; pass nextCursor as cursor for the next (null on the last page).',
        tags: ['rpc'],
        security: bearer,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            cursor: { type: 'string', maxLength: 64, description: 'nextCursor of the previous page' },
            limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$', description: `Addresses per page, 1–${MAX_RPC_ACCOUNTS_PAGE} (default 100)` },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['accounts', 'nextCursor'],
            properties: { accounts: { type: 'array', items: rpcAccountSchema }, nextCursor: { type: ['string', 'null'] } },
          },
          ...commonErrorResponses,
        },
      },
    },
    async (request) => {
      const { cursor, limit } = request.query;
      return kernel.listRpcAccounts(await authenticateApiKey(kernel, request), {
        ...(cursor === undefined ? {} : { cursor }),
        ...(limit === undefined ? {} : { limit: Number(limit) }),
      });
    },
  );
}
