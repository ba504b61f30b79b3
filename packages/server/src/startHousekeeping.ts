import type { Kernel } from '@custos/kernel';
import type { Logger } from 'pino';

/** The housekeeping's period when none is given (custos serve --housekeeping-interval). */
export const DEFAULT_HOUSEKEEPING_INTERVAL_SECONDS = 3600;

/**
 * Runs the kernel's housekeeping (kernel/housekeeping.ts: finished approvals, enrolment links and
 * outbox rows past their retention deleted) every `intervalMs`: skipped while sealed or while the
 * previous run is still going; a failure is logged, never thrown (the next run tries again). Every
 * replica may run it: the deletes are idempotent.
 */
export function startHousekeeping({ kernel, intervalMs, logger }: { kernel: Kernel; intervalMs: number; logger: Logger | false }): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (running !== undefined || kernel.sealed) return;
    running = kernel
      .runHousekeeping()
      .then((deleted) => {
        if (logger !== false && Object.values(deleted).some((n) => n > 0)) logger.info({ deleted }, 'housekeeping: rows past their retention deleted');
      })
      .catch((error: unknown) => {
        if (logger !== false) logger.error({ err: error }, 'housekeeping failed; the next run tries again');
      })
      .finally(() => {
        running = undefined;
      });
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
