/** What is about to be signed, given to a code callback so that the app can prompt its user. */
export interface CodeRequest {
  operation: 'transaction' | 'message' | 'typedData' | 'authorization' | 'hash';
  walletName: string;
  keyIndex: number;
  /** The request about to be sent (without the code), for the prompt. */
  payload: unknown;
}

/**
 * The second-factor code: a fixed value (one signature: a code is single use), or a callback asked
 * once per signature. Undefined for a wallet without an enrolled factor.
 */
export type CodeSource = string | ((request: CodeRequest) => string | undefined | Promise<string | undefined>) | undefined;

export async function resolveCode(source: CodeSource, request: CodeRequest): Promise<string | undefined> {
  if (typeof source === 'function') return source(request);
  return source;
}
