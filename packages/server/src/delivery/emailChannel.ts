import type { DeliveryMessage, DeliveryResult } from '@custos/kernel';
import nodemailer from 'nodemailer';
import type { RenderedMessage } from './renderMessage.js';

/** How long one SMTP conversation may take (a slow server is retried later, never waited on by a signature). */
const SMTP_TIMEOUT_MS = 15_000;

export interface EmailChannel {
  /** The longest one message may take (ms): the sender's lease is longer. */
  readonly timeoutMs: number;
  send(message: DeliveryMessage, rendered: RenderedMessage): Promise<DeliveryResult>;
  close(): void;
}

/** SMTP reply codes 5xx are permanent (the address is refused); everything else is retried. */
function isPermanent(error: unknown): boolean {
  const code = (error as { responseCode?: unknown }).responseCode;
  return typeof code === 'number' && code >= 500 && code < 600;
}

/** A short reason without the message (no code can be in it: only the server's reply code and nodemailer's error code). */
function reasonOf(error: unknown): string {
  const { code, responseCode } = error as { code?: unknown; responseCode?: unknown };
  return `smtp ${typeof responseCode === 'number' ? responseCode : ''} ${typeof code === 'string' ? code : 'error'}`.replace(/\s+/g, ' ').trim();
}

/** E-mail over SMTP with nodemailer (`--smtp-url`, `--mail-from`): plain text and HTML bodies. */
/** `--smtp-url`: smtp://[user:pass@]host[:port] or smtps://… (`?ignoreTLS=true` for a local relay without STARTTLS, `?requireTLS=true` to insist on it, `?timeout=SECONDS` for a server's silence, default 15). */
export function createEmailChannel({ smtpUrl, from, timeoutMs: given }: { smtpUrl: string; from: string; timeoutMs?: number }): EmailChannel {
  const url = new URL(smtpUrl);
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new Error('--smtp-url: expected smtp://host[:port] or smtps://host[:port]');
  // ?timeout=SECONDS (1–120): how long a silent server is waited for, per step of the conversation.
  const param = url.searchParams.get('timeout');
  if (param !== null && !/^[0-9]{1,3}$/.test(param)) throw new Error('--smtp-url: timeout= expects 1 to 120 seconds');
  const timeoutMs = given ?? (param === null ? SMTP_TIMEOUT_MS : Math.min(120, Math.max(1, Number(param))) * 1000);
  const transport = nodemailer.createTransport({
    host: url.hostname,
    port: url.port === '' ? (url.protocol === 'smtps:' ? 465 : 587) : Number(url.port),
    secure: url.protocol === 'smtps:',
    ...(url.username === '' ? {} : { auth: { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } }),
    // A local test server or a relay without TLS: STARTTLS when offered, never required unless ?requireTLS=true.
    requireTLS: url.searchParams.get('requireTLS') === 'true',
    ignoreTLS: url.searchParams.get('ignoreTLS') === 'true',
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    logger: false,
    debug: false,
  });
  return {
    timeoutMs,
    async send(message, rendered) {
      try {
        await transport.sendMail({ from, to: message.address, subject: rendered.subject, text: rendered.text, html: rendered.html });
        return { ok: true };
      } catch (error) {
        return { ok: false, permanent: isPermanent(error), reason: reasonOf(error) };
      }
    },
    close() {
      transport.close();
    },
  };
}
