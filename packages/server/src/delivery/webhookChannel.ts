import { createHmac } from 'node:crypto';
import type { DeliveryMessage, DeliveryResult } from '@custos/kernel';
import type { RenderedMessage } from './renderMessage.js';

const WEBHOOK_TIMEOUT_MS = 10_000;

/** The signature header of a webhook body: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "t.body")>` (verifyWebhookSignature in the SDK checks it). */
export function signWebhookBody(secret: Uint8Array, body: string, nowSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${nowSeconds}.${body}`).digest('hex');
  return `t=${nowSeconds},v1=${mac}`;
}

export interface WebhookChannel {
  readonly timeoutMs: number;
  send(message: DeliveryMessage, rendered: RenderedMessage): Promise<DeliveryResult>;
}

/**
 * The signed webhook (`--webhook-url`, set by the operator for the whole deployment; the secret from
 * a file): one POST of JSON per message, signed; a 2xx answer is delivered, a 4xx other than 408 and
 * 429 is refused for good, anything else (5xx, timeout, refused connection) is retried with back-off.
 */
export function createWebhookChannel({
  url: urlOf,
  secret,
  now = Date.now,
}: {
  /** The URL, or how to find the one in force at each send (the deployment settings': Kernel.webhookUrlInForce; null: none). */
  url: string | (() => Promise<string | null>);
  secret: Uint8Array;
  now?: () => number;
}): WebhookChannel {
  const key = new Uint8Array(secret);
  return {
    timeoutMs: WEBHOOK_TIMEOUT_MS,
    async send(_message, rendered) {
      const body = JSON.stringify(rendered.fields);
      let url: string | null;
      try {
        url = typeof urlOf === 'string' ? urlOf : await urlOf();
      } catch (error) {
        return { ok: false, permanent: false, reason: `webhook url ${(error as { code?: string }).code ?? 'unavailable'}` };
      }
      if (url === null) return { ok: false, permanent: true, reason: 'no webhook URL in force (deployment settings)' };
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-custos-signature': signWebhookBody(key, body, Math.floor(now() / 1000)) },
          body,
          redirect: 'error',
          signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
        });
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) return { ok: true };
        const permanent = response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429;
        return { ok: false, permanent, reason: `webhook http ${response.status}` };
      } catch (error) {
        return { ok: false, permanent: false, reason: `webhook ${(error as { name?: string }).name ?? 'error'}` };
      }
    },
  };
}
