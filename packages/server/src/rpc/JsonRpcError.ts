/**
 * A JSON-RPC error object (JSON-RPC 2.0 §5.1; EIP-1193 and EIP-1474 codes), answered in the
 * response's `error` member. Thrown by the rpc modules; the dispatcher turns it into the answer.
 */
export class JsonRpcError extends Error {
  override readonly name = 'JsonRpcError';
  readonly code: number;
  readonly data: unknown;

  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.code = code;
    this.data = data;
  }

  toJSON(): { code: number; message: string; data?: unknown } {
    return this.data === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, data: this.data };
  }
}

/** JSON-RPC 2.0 and EIP-1193 codes the signer answers. */
export const RPC_CODES = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
  /** EIP-1193: the user rejected the request (the wallet owner rejected the approval). */
  userRejected: 4001,
  /** EIP-1193: not authorized (a Custos refusal; its code in `data.code`). */
  unauthorized: 4100,
} as const;

export const invalidParams = (message: string): JsonRpcError => new JsonRpcError(RPC_CODES.invalidParams, message);
