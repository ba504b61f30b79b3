import assert from 'node:assert/strict';
import { retryOverloaded } from '@custos/server/testing';

// What the CLI tests that talk to a served signer over real sockets share: a JSON request with a
// bearer token, the error code of an answer, and polling until a state is reached.

export interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/**
 * One JSON request (fetch); the body parsed, or `{ unparsed }` when it is not JSON. A 503
 * `overloaded` is sent again after its Retry-After, as a well-behaved client does (`custos serve`
 * sheds load by default; retryOverloaded in @custos/server/testing).
 */
export async function http(
  url: string,
  { method = 'GET', token, json, signal }: { method?: string; token?: string; json?: unknown; signal?: AbortSignal } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (json !== undefined) headers['content-type'] = 'application/json';
  const send = async (): Promise<Answer & { retryAfter: string | null }> => {
    const response = await fetch(url, {
      method,
      headers,
      ...(json === undefined ? {} : { body: JSON.stringify(json) }),
      ...(signal === undefined ? {} : { signal }),
    });
    const text = await response.text();
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { unparsed: text };
    }
    return { status: response.status, body, retryAfter: response.headers.get('retry-after') };
  };
  const { status, body } = await retryOverloaded(send, { code: errorCode, retryAfter: (answer) => answer.retryAfter });
  return { status, body };
}

export function errorCode(answer: Answer): string | undefined {
  return (answer.body.error as { code?: string } | undefined)?.code;
}

/** Polls until `done` holds (never a fixed sleep as an assertion); fails with the last value. */
export async function waitFor<T>(what: string, probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) assert.fail(`${what}: not reached within ${timeoutMs} ms; last: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
