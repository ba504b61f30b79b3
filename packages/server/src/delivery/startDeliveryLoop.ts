import { CustosError, type DeliveryMessage, type DeliveryResult, type Kernel } from '@custos/kernel';
import type { FastifyBaseLogger } from 'fastify';
import type { EmailChannel } from './emailChannel.js';
import { renderMessage } from './renderMessage.js';
import type { WebhookChannel } from './webhookChannel.js';

export interface DeliveryChannels {
  email?: EmailChannel;
  webhook?: WebhookChannel;
}

export interface DeliveryLoop {
  /** Claims and sends what is due now (the loop calls it on its timer and when a message is queued). */
  runOnce(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * The sender: after a unit that queued a message commits (kernel.watchDeliveries) and every
 * `intervalMs`, it claims the due messages (a lease, so that one replica sends each), hands each to
 * its channel and writes the result back. It runs beside the request path, never in it: a slow or
 * dead mail server delays only the next message, never a signature. Sealed: it waits. The log names
 * the message id, channel and result — never the address or the code.
 */
export function startDeliveryLoop({
  kernel,
  channels,
  publicUrl,
  logger,
  intervalMs = 1_000,
  batch = 16,
  now = Date.now,
  leaseMs,
  watch = true,
}: {
  kernel: Kernel;
  channels: DeliveryChannels;
  publicUrl: () => string;
  logger: FastifyBaseLogger;
  intervalMs?: number;
  batch?: number;
  now?: () => number;
  /** How long a claim holds its messages (default: the slowest channel's timeout, four times over, plus 5 s: an SMTP conversation has several steps). */
  leaseMs?: number;
  /** Whether a message queued by this kernel wakes the loop at once (default); tests that count what each runOnce sends turn it off. */
  watch?: boolean;
}): DeliveryLoop {
  const lease = leaseMs ?? 4 * Math.max(channels.email?.timeoutMs ?? 0, channels.webhook?.timeoutMs ?? 0) + 5_000;
  let running: Promise<number> | undefined;
  let again = false;
  let stopped = false;

  const deliver = async (message: DeliveryMessage): Promise<DeliveryResult> => {
    const channel = channels[message.channel];
    if (channel === undefined) return { ok: false, permanent: true, reason: `no ${message.channel} channel on this server` };
    return channel.send(message, renderMessage(message, { publicUrl: publicUrl(), now: now() }));
  };

  const cycle = async (): Promise<number> => {
    let sent = 0;
    for (;;) {
      let claimed: DeliveryMessage[];
      try {
        claimed = await kernel.claimDeliveries({ limit: batch, leaseMs: lease });
      } catch (error) {
        if (!(error instanceof CustosError && error.code === 'sealed')) logger.warn({ err: { code: (error as CustosError).code } }, 'delivery: claim failed');
        return sent;
      }
      if (claimed.length === 0) return sent;
      await Promise.all(
        claimed.map(async (message) => {
          const result = await deliver(message);
          logger.info(
            { delivery: { id: message.id, channel: message.channel, kind: message.kind, ok: result.ok, ...(result.ok ? {} : { reason: result.reason }) } },
            'delivery',
          );
          if (result.ok) sent += 1;
          try {
            await kernel.settleDelivery(message, result);
          } catch (error) {
            // The lease runs out and the message is claimed again: at least once, never lost.
            logger.warn({ err: { code: (error as CustosError).code }, delivery: { id: message.id } }, 'delivery: result not written');
          }
        }),
      );
      if (stopped || claimed.length < batch) return sent;
    }
  };

  const runOnce = (): Promise<number> => {
    if (running !== undefined) {
      again = true;
      return running;
    }
    running = (async () => {
      let total = 0;
      do {
        again = false;
        total += await cycle();
      } while (again && !stopped);
      return total;
    })().finally(() => {
      running = undefined;
    });
    return running;
  };

  const timer = setInterval(() => void runOnce(), intervalMs);
  timer.unref();
  const unwatch = watch
    ? kernel.watchDeliveries(() => {
        if (!stopped) setImmediate(() => void runOnce());
      })
    : () => undefined;
  return {
    runOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      unwatch();
      await running;
    },
  };
}
