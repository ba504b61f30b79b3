/**
 * System errors that prove no byte of the request left this machine, by the call that failed: the
 * TCP connect was refused or had no route (nothing was connected, so nothing was written), or the
 * host name did not resolve. The same codes from any other call (a `write` or `read` after the
 * connection was up) prove nothing: the request may have been sent, so they are not here.
 */
const NEVER_SENT: Record<string, ReadonlySet<string>> = {
  connect: new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH']),
  getaddrinfo: new Set(['ENOTFOUND', 'EAI_AGAIN']),
};

/**
 * Whether a failed `fetch` provably never sent its request (so even a sign may be retried). Looks at
 * the system error in `error.cause` (undici's "fetch failed" TypeError); an AggregateError of a
 * multi-address connect (happy eyeballs) counts only if every attempt failed that way.
 */
export function wasNeverSent(error: unknown): boolean {
  const cause = (error as { cause?: unknown } | null)?.cause;
  if (cause instanceof AggregateError) return cause.errors.length > 0 && cause.errors.every(isNeverSentSystemError);
  return isNeverSentSystemError(cause);
}

function isNeverSentSystemError(value: unknown): boolean {
  const { code, syscall } = (value ?? {}) as { code?: unknown; syscall?: unknown };
  if (typeof code !== 'string' || typeof syscall !== 'string') return false;
  return Object.hasOwn(NEVER_SENT, syscall) && NEVER_SENT[syscall]?.has(code) === true;
}
