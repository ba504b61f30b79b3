import { type App, type ApprovalState, CustosError, type Kernel, type RpcAccount, rpcRequestKey } from '@custos/kernel';
import type { Upstream } from './createUpstream.js';
import { fillTransaction, readRpcTransaction } from './fillTransaction.js';
import { invalidParams, JsonRpcError, RPC_CODES } from './JsonRpcError.js';

/**
 * One JSON-RPC call of `POST /v1/rpc`: the signing methods go through the kernel's sign path with
 * the wallet and key index of the caller's address book; every other method is forwarded to the
 * upstream node unchanged, except the account, signing and node-administration methods a signer
 * must not pass on (-32601). A wallet that needs consent gets an approval (found again by the
 * identical request), waited for up to --rpc-wait.
 */

export interface RpcCallContext {
  kernel: Kernel;
  app: App;
  upstream: Upstream;
  /** Waits up to --rpc-wait (in the approvals' waiting pool) for the approval to leave pending; its state then. */
  awaitDecision(approvalId: string): Promise<ApprovalState>;
  /** The owner's link of a new approval (the capability is shown once: in the first answer). */
  approveUrl(capability: string): string;
}

/** How many addresses `eth_accounts` answers (the first ones registered); GET /v1/rpc/accounts pages through all. */
export const ETH_ACCOUNTS_LIMIT = 100;

/**
 * Namespaces of accounts, signing, node administration and test-node control: never forwarded
 * (parity_/signer_: Parity's account and signer namespaces; clique_/engine_: consensus control).
 */
const REFUSED_PREFIXES = [
  'personal_',
  'wallet_',
  'admin_',
  'debug_',
  'miner_',
  'txpool_',
  'anvil_',
  'hardhat_',
  'evm_',
  'parity_',
  'signer_',
  'clique_',
  'engine_',
  'ibft_',
  'qbft_',
  'perm_',
  'les_',
  'account_',
  'shh_',
  'db_',
  'eth_signTypedData_',
].map((prefix) => prefix.toLowerCase());
/**
 * eth_ methods that would act with the node's own accounts (anvil and hardhat send an unsigned
 * transaction from any `from`; eth_coinbase names the node's account) or drive mining: never forwarded.
 */
const REFUSED_METHODS = new Set(
  ['eth_requestAccounts', 'eth_sendUnsignedTransaction', 'eth_coinbase', 'eth_submitWork', 'eth_submitHashrate'].map((m) => m.toLowerCase()),
);
/** Methods answered here (signing and accounts), before the refusals (personal_sign, eth_signTypedData_v4). */
const SIGNING_METHODS = new Set([
  'eth_accounts',
  'eth_sign',
  'personal_sign',
  'eth_signTypedData',
  'eth_signTypedData_v4',
  'eth_signTransaction',
  'eth_sendTransaction',
]);
/** The signing methods in lower case: another spelling of one is refused, never forwarded. */
const SIGNING_METHODS_LOWER = new Set([...SIGNING_METHODS].map((m) => m.toLowerCase()));

/** Whether a method is refused -32601 (not served here, and never forwarded). */
export function isRefusedMethod(method: string): boolean {
  if (SIGNING_METHODS.has(method)) return false;
  // Compared without case: a node that resolved names loosely must not get `ETH_SIGN` or `Personal_…`.
  const lower = method.toLowerCase();
  return SIGNING_METHODS_LOWER.has(lower) || REFUSED_METHODS.has(lower) || REFUSED_PREFIXES.some((prefix) => lower.startsWith(prefix));
}

type OperationKind = 'transaction' | 'message' | 'typedData';
const HEX_BYTES = /^0x([0-9a-fA-F]{2})*$/;

/** Answers one well-formed call: its result, or a JsonRpcError / CustosError thrown (the caller maps it). */
export async function answerRpcCall(ctx: RpcCallContext, request: { method: string; params: unknown; raw: Record<string, unknown> }): Promise<unknown> {
  const { method } = request;
  const params = request.params ?? [];
  if (!SIGNING_METHODS.has(method)) {
    if (isRefusedMethod(method)) throw new JsonRpcError(RPC_CODES.methodNotFound, `${method} is not served by this signer`);
    await ctx.kernel.authorizeRpcForward(ctx.app, { method });
    return forwarded(await ctx.upstream.forward(request.raw));
  }
  if (method === 'eth_accounts') {
    const { accounts } = await ctx.kernel.listRpcAccounts(ctx.app, { limit: ETH_ACCOUNTS_LIMIT });
    return accounts.map((a) => a.address);
  }
  if (!Array.isArray(params)) throw invalidParams('params: expected an array');
  switch (method) {
    case 'eth_sign': {
      // [address, data] — geth and Web3Signer: the EIP-191 personal message of data, never a raw hash
      const [address, data] = params;
      if (typeof data !== 'string' || !HEX_BYTES.test(data)) throw invalidParams('params[1]: expected 0x-hex bytes (the message)');
      const result = await signWithConsent(ctx, method, params, address, 'message', async () => ({ raw: data }));
      return (result as { signature: string }).signature;
    }
    case 'personal_sign': {
      // [data, address]: data as 0x-hex bytes, or else a text signed as its UTF-8 bytes
      const [data, address] = params;
      if (typeof data !== 'string') throw invalidParams('params[0]: expected the message, 0x-hex bytes or text');
      const message = HEX_BYTES.test(data) ? { raw: data } : { text: data };
      const result = await signWithConsent(ctx, method, params, address, 'message', async () => message);
      return (result as { signature: string }).signature;
    }
    case 'eth_signTypedData':
    case 'eth_signTypedData_v4': {
      const [address, typedData] = params;
      const parsed = readTypedData(typedData);
      const result = await signWithConsent(ctx, method, params, address, 'typedData', async () => parsed);
      return (result as { signature: string }).signature;
    }
    case 'eth_signTransaction':
    case 'eth_sendTransaction': {
      const tx = readRpcTransaction(params[0]);
      const result = await signWithConsent(ctx, method, params, tx.from, 'transaction', () => fillTransaction(tx, ctx.upstream));
      const raw = (result as { serializedTransaction: string }).serializedTransaction;
      if (method === 'eth_signTransaction') return raw;
      // Custos relays the transaction it signed on this request only: never on its own initiative
      return ctx.upstream.call('eth_sendRawTransaction', [raw]);
    }
    default:
      throw new JsonRpcError(RPC_CODES.methodNotFound, `${method} is not served by this signer`);
  }
}

/** The upstream's answer to a forwarded call: its result, or its error passed through. */
function forwarded(answer: Record<string, unknown>): unknown {
  const error = answer.error as { code?: unknown; message?: unknown; data?: unknown } | undefined | null;
  if (error !== undefined && error !== null) {
    const code = typeof error.code === 'number' && Number.isInteger(error.code) ? error.code : RPC_CODES.internalError;
    throw new JsonRpcError(code, typeof error.message === 'string' ? error.message : 'the upstream node refused the call', error.data);
  }
  if (!('result' in answer)) throw new CustosError('upstream_unavailable', 'the upstream node answered without a result');
  return answer.result;
}

function readTypedData(value: unknown): unknown {
  if (typeof value === 'string') {
    try {
      return JSON.parse(value) as unknown;
    } catch {
      throw invalidParams('params[1]: expected EIP-712 typed data (an object, or its JSON text)');
    }
  }
  if (typeof value !== 'object' || value === null) throw invalidParams('params[1]: expected EIP-712 typed data (an object, or its JSON text)');
  return value;
}

/** The kernel's sign route of an operation kind. */
function sign(ctx: RpcCallContext, kind: OperationKind, account: RpcAccount, operation: unknown, approvalId?: string): Promise<unknown> {
  const request = { walletName: account.walletName, keyIndex: account.keyIndex, ...(approvalId === undefined ? {} : { approvalId }) };
  if (kind === 'transaction') return ctx.kernel.signTransaction(ctx.app, { ...request, transaction: operation });
  if (kind === 'message') return ctx.kernel.signMessage(ctx.app, { ...request, message: operation });
  return ctx.kernel.signTypedData(ctx.app, { ...request, typedData: operation });
}

const isCode = (error: unknown, ...codes: string[]): error is CustosError => error instanceof CustosError && codes.includes(error.code);

/**
 * Signs for `from` of the caller's address book. A wallet that needs consent: the approval of the
 * identical request (tenant, method, params as sent) is found again, with the operation as it was
 * filled then; else a new approval is made for the operation `build` fills now. Waits up to
 * --rpc-wait for the owner, then answers 4100 approval_pending (4001 when rejected).
 */
async function signWithConsent(
  ctx: RpcCallContext,
  method: string,
  params: unknown[],
  from: unknown,
  kind: OperationKind,
  build: () => Promise<unknown>,
): Promise<unknown> {
  const account = await ctx.kernel.resolveRpcAccount(ctx.app, { address: from });
  const requestKey = rpcRequestKey(method, params);
  const stored = await ctx.kernel.findRpcRequest(ctx.app, { requestKey });
  if (stored !== undefined) {
    const settled = await signApproved(ctx, kind, account, stored.operation, stored.approvalId, requestKey, undefined);
    if (settled !== undefined) return settled.result;
    // expired, cancelled or gone: the identical request asks the owner again
  }
  const operation = await build();
  try {
    return await sign(ctx, kind, account, operation);
  } catch (error) {
    if (!isCode(error, 'code_required', 'consent_too_weak')) throw error;
  }
  const { capability, id } = await ctx.kernel.createApproval(ctx.app, {
    walletName: account.walletName,
    keyIndex: account.keyIndex,
    operation: { [kind]: operation },
  });
  await ctx.kernel.rememberRpcRequest(ctx.app, { requestKey, approvalId: id, operation });
  const settled = await signApproved(ctx, kind, account, operation, id, requestKey, ctx.approveUrl(capability));
  if (settled !== undefined) return settled.result;
  throw new CustosError('approval_expired', 'the approval expired before it was decided');
}

/**
 * Signs with an approval once it is approved, waiting up to --rpc-wait while it is pending: the
 * result; or the refusal thrown (4001 when rejected, approval_pending with its id and link); or
 * undefined when the approval can no longer be used (expired, cancelled), its request forgotten.
 */
async function signApproved(
  ctx: RpcCallContext,
  kind: OperationKind,
  account: RpcAccount,
  operation: unknown,
  approvalId: string,
  requestKey: string,
  approveUrl: string | undefined,
): Promise<{ result: unknown } | undefined> {
  let waited = false;
  for (;;) {
    try {
      const result = await sign(ctx, kind, account, operation, approvalId);
      await ctx.kernel.forgetRpcRequest(ctx.app, { requestKey, approvalId });
      return { result };
    } catch (error) {
      if (isCode(error, 'approval_rejected')) {
        await ctx.kernel.forgetRpcRequest(ctx.app, { requestKey, approvalId });
        throw new JsonRpcError(RPC_CODES.userRejected, 'the wallet owner rejected the request', { code: 'approval_rejected', approvalId });
      }
      if (isCode(error, 'approval_expired', 'approval_cancelled', 'approval_not_found')) {
        await ctx.kernel.forgetRpcRequest(ctx.app, { requestKey, approvalId });
        return undefined;
      }
      if (!isCode(error, 'approval_pending')) throw error;
      if (waited || (await ctx.awaitDecision(approvalId)) === 'pending') {
        const data = { code: 'approval_pending', approvalId, ...(approveUrl === undefined ? {} : { approveUrl }) };
        throw new JsonRpcError(
          RPC_CODES.unauthorized,
          approveUrl === undefined
            ? 'waiting for the wallet owner’s approval (its link was in the first answer); send the identical request again once approved'
            : 'the wallet owner must approve this request at approveUrl; send the identical request again once approved',
          data,
        );
      }
      waited = true;
    }
  }
}

/** A refusal as the JSON-RPC error a client gets: 4001 rejected, 4100 with the Custos code in data, -32603 for a failure of the signer. */
export function toJsonRpcError(error: unknown): JsonRpcError {
  if (error instanceof JsonRpcError) return error;
  if (error instanceof CustosError) {
    const details = Object.keys(error.details).length === 0 ? {} : { details: error.details };
    const data = { code: error.code, ...details };
    if (error.code === 'approval_rejected') return new JsonRpcError(RPC_CODES.userRejected, error.message, data);
    if (error.status >= 500) return new JsonRpcError(RPC_CODES.internalError, error.message, data);
    return new JsonRpcError(RPC_CODES.unauthorized, error.message, data);
  }
  return new JsonRpcError(RPC_CODES.internalError, 'internal failure; nothing was signed', { code: 'internal' });
}
