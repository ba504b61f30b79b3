import { CustosError } from '@custos/kernel';
import { JsonRpcError } from './JsonRpcError.js';

/** The Ethereum node behind the signer (`--upstream-rpc`): what it forwards to, and where it fills transactions from. */
export interface Upstream {
  /** Sends one JSON-RPC request object as is; the node's response object as is. */
  forward(request: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** One call; its result, or the node's error thrown as a JsonRpcError (passed through to the client). */
  call<T = unknown>(method: string, params: unknown[]): Promise<T>;
}

/** How long the node may take to answer one call (ms). */
const UPSTREAM_TIMEOUT_MS = 30_000;
/** The largest answer read from the node (bytes): a log query may be big, not unbounded. */
const MAX_UPSTREAM_ANSWER_BYTES = 16 * 1024 * 1024;

const unavailable = (message: string, cause?: unknown) => new CustosError('upstream_unavailable', message, cause === undefined ? {} : { cause });

/** The upstream of `--upstream-rpc URL`, or one that refuses every call `upstream_unavailable` when none is configured. */
export function createUpstream(url: string | undefined, { timeoutMs = UPSTREAM_TIMEOUT_MS }: { timeoutMs?: number } = {}): Upstream {
  let nextId = 1;
  const post = async (body: unknown): Promise<Record<string, unknown>> => {
    if (url === undefined) throw unavailable('this signer has no upstream node (custos serve --upstream-rpc URL): only signing methods are served');
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'error',
      });
    } catch (error) {
      throw unavailable('the upstream node did not answer', error);
    }
    const text = await response.text().catch((error: unknown) => {
      throw unavailable('the upstream node’s answer was cut off', error);
    });
    if (text.length > MAX_UPSTREAM_ANSWER_BYTES) throw unavailable('the upstream node’s answer is too large');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw unavailable(`the upstream node answered HTTP ${response.status} without a JSON-RPC response`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw unavailable(`the upstream node answered HTTP ${response.status} without a JSON-RPC response`);
    return parsed as Record<string, unknown>;
  };
  return {
    forward: post,
    async call<T>(method: string, params: unknown[]): Promise<T> {
      const answer = await post({ jsonrpc: '2.0', id: nextId++, method, params });
      const error = answer.error as { code?: unknown; message?: unknown; data?: unknown } | undefined;
      if (error !== undefined && error !== null) {
        const code = typeof error.code === 'number' && Number.isInteger(error.code) ? error.code : -32603;
        throw new JsonRpcError(code, typeof error.message === 'string' ? error.message : `the upstream node refused ${method}`, error.data);
      }
      if (!('result' in answer)) throw unavailable(`the upstream node answered ${method} without a result`);
      return answer.result as T;
    },
  };
}
