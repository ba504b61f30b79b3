import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { recordTestSecret } from './createTestSigner.js';

export interface ReceivedMail {
  to: string;
  subject: string;
  text: string;
  html: string;
}

export interface MailServer {
  /** smtp://127.0.0.1:<port>?ignoreTLS=true (for --smtp-url / createEmailChannel). */
  url: string;
  port: number;
  received: ReceivedMail[];
  /** The next message to arrive after `count` were received (resolves at once when there are more). */
  nextMail(count?: number, timeoutMs?: number): Promise<ReceivedMail>;
  close(): Promise<void>;
}

/** The subject every admin notice starts with (delivery/renderMessage.ts, kind `quorum`). */
const ADMIN_SUBJECT_PREFIX = 'Custos admin quorum:';

/**
 * A real SMTP server in the test process (smtp-server), each message read with mailparser: what a
 * user's mail provider would receive. No TLS, no auth (127.0.0.1 only).
 */
export async function startMailServer(): Promise<MailServer> {
  const received: ReceivedMail[] = [];
  const waiters = new Set<() => void>();
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS', 'AUTH'],
    authOptional: true,
    logger: false,
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((mail: ParsedMail) => {
          // Every recipient of an owner's message is a delivery address: the scan looks for it in every log
          // and database dump. An admin's notice goes to the address the admin set holds as configuration
          // (the quorum settings row, in plaintext by design: docs/quorum.md), not to a factor's sealed one.
          if (!(mail.subject ?? '').startsWith(ADMIN_SUBJECT_PREFIX)) for (const r of session.envelope.rcptTo) recordTestSecret('delivery address', r.address);
          received.push({
            to: session.envelope.rcptTo.map((r) => r.address).join(','),
            subject: mail.subject ?? '',
            text: mail.text ?? '',
            html: typeof mail.html === 'string' ? mail.html : '',
          });
          for (const wake of waiters) wake();
          callback();
        })
        .catch((error: Error) => callback(error));
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as { port: number }).port;
  return {
    url: `smtp://127.0.0.1:${port}?ignoreTLS=true`,
    port,
    received,
    async nextMail(count = received.length, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length <= count) {
        if (Date.now() > deadline) throw new Error(`no mail arrived within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const wake = () => {
            waiters.delete(wake);
            resolve();
          };
          waiters.add(wake);
          setTimeout(wake, 200);
        });
      }
      return received[count] as ReceivedMail;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The 8-digit code of a delivered message. */
export function codeOf(text: string): string {
  const match = /\b(\d{8})\b/.exec(text);
  if (match === null) throw new Error('no 8-digit code in the message');
  return match[1] as string;
}
