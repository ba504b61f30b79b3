import type { FastifyBaseLogger } from 'fastify';
import { createEmailChannel } from '../delivery/emailChannel.js';
import { type DeliveryLoop, startDeliveryLoop } from '../delivery/startDeliveryLoop.js';
import { captureLogLines } from './captureLogLines.js';
import { recordTestSecret, type TestSigner } from './createTestSigner.js';
import { codeOf, type MailServer, type ReceivedMail, startMailServer } from './startMailServer.js';

export interface TestDelivery {
  mail: MailServer;
  /** The sender, on a long interval: tests run it (`runOnce`) when they want what is queued sent. */
  loop: DeliveryLoop;
  /** Runs the sender once and returns the next message received, with its code (recorded as a test secret). */
  deliver(): Promise<ReceivedMail & { code: string }>;
  /** Stops the sender, then closes the channel and the mail server. */
  close(): Promise<void>;
}

/**
 * The kernel's e-mail delivery against a real SMTP server in the test process: the server
 * (startMailServer), the e-mail channel to it and the delivery loop of `signer`'s kernel on its clock.
 */
export async function startTestDelivery(
  signer: Pick<TestSigner, 'kernel' | 'clock'>,
  {
    publicUrl,
    from = 'custos@example.com',
    logger = captureLogLines().logger,
    watch = true,
  }: {
    publicUrl: string;
    from?: string;
    logger?: FastifyBaseLogger;
    /**
     * false: messages are sent only when the test runs the loop (deliver(), loop.runOnce()), never at once
     * when queued — so that a test counting what one run sends sees none of them arrive before it counts.
     */
    watch?: boolean;
  },
): Promise<TestDelivery> {
  const mail = await startMailServer();
  const email = createEmailChannel({ smtpUrl: mail.url, from });
  const loop = startDeliveryLoop({
    kernel: signer.kernel,
    channels: { email },
    publicUrl: () => publicUrl,
    logger,
    intervalMs: 3_600_000,
    now: () => signer.clock.now,
    watch,
  });
  return {
    mail,
    loop,
    async deliver() {
      const count = mail.received.length;
      await loop.runOnce();
      const message = await mail.nextMail(count);
      const code = codeOf(message.text);
      recordTestSecret('oobCode', code);
      return { ...message, code };
    },
    async close() {
      await loop.stop();
      email.close();
      await mail.close();
    },
  };
}
