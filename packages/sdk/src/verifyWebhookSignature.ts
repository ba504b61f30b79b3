import { createHmac, timingSafeEqual } from 'node:crypto';

/** Why a webhook delivery was refused by verifyWebhookSignature. */
export type WebhookSignatureFailure = 'malformed' | 'stale' | 'mismatch';

export class WebhookSignatureError extends Error {
  constructor(
    readonly reason: WebhookSignatureFailure,
    message: string,
  ) {
    super(message);
    this.name = 'WebhookSignatureError';
  }
}

const HEADER = /^t=(\d{1,12}),v1=([0-9a-f]{64})$/;

/**
 * Checks a Custos webhook delivery before trusting it (the receiver of `--webhook-url`): the
 * `X-Custos-Signature` header `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` must
 * be well formed, `t` within `toleranceSeconds` (default 300) of `now`, and the MAC must be the
 * one of this exact body under the shared secret (compared in constant time). A body replayed with
 * another `t` fails the MAC; an old one fails the tolerance — a receiver that also remembers the
 * message `id` it saw within the tolerance refuses every replay.
 *
 * Pass the body exactly as received (the raw bytes or text, before any JSON parsing). Throws a
 * WebhookSignatureError (`reason`: malformed, stale, mismatch); returns the timestamp when valid.
 */
export function verifyWebhookSignature(
  secret: Uint8Array | string,
  header: string | undefined | null,
  body: Uint8Array | string,
  { toleranceSeconds = 300, now = Date.now() }: { toleranceSeconds?: number; now?: number } = {},
): { timestamp: number } {
  if (typeof header !== 'string') throw new WebhookSignatureError('malformed', 'the X-Custos-Signature header is missing');
  const match = HEADER.exec(header.trim());
  if (match === null) throw new WebhookSignatureError('malformed', 'the X-Custos-Signature header is not t=<unix seconds>,v1=<64 hex digits>');
  const timestamp = Number(match[1]);
  if (Math.abs(Math.floor(now / 1000) - timestamp) > toleranceSeconds)
    throw new WebhookSignatureError('stale', `the signature's timestamp is more than ${toleranceSeconds} s away from now`);
  const key = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
  if (key.length === 0) throw new WebhookSignatureError('malformed', 'the secret is empty');
  const expected = createHmac('sha256', key)
    .update(`${timestamp}.`)
    .update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body)
    .digest();
  if (!timingSafeEqual(expected, Buffer.from(match[2] as string, 'hex'))) throw new WebhookSignatureError('mismatch', 'the signature does not match the body');
  return { timestamp };
}
