import { setTimeout as sleep } from 'node:timers/promises';
import { CustosError } from '@custos/kernel';

/**
 * How long SQLite itself may wait for a lock, ms (PRAGMA busy_timeout). better-sqlite3 is
 * synchronous: SQLite's busy handler sleeps on the event loop's thread, so every millisecond here
 * is a millisecond no other request is served. Kept to a few ms; longer waits are retryWhileBusy's.
 */
export const SQLITE_BUSY_TIMEOUT_MS = 5;

export interface BusyRetryOptions {
  /** Give up after this long (ms since the first attempt): the operation fails store_unavailable. */
  deadlineMs?: number;
  /** The first pause between attempts, ms; each next pause doubles, up to maxDelayMs. */
  firstDelayMs?: number;
  maxDelayMs?: number;
  /** Monotonic clock, ms (a test may pass its own). */
  now?: () => number;
}

/**
 * Runs a synchronous SQLite operation; while it fails SQLITE_BUSY (another process — `custos` on
 * the same file, a second replica — holds the write lock), tries again after an asynchronous pause
 * (setTimeout, doubling from firstDelayMs to maxDelayMs, with jitter so that two waiting processes
 * do not retry in step), so that the event loop keeps serving other requests meanwhile. Past the
 * deadline the operation fails `store_unavailable` (fail closed: nothing was done). Any other error
 * is thrown as it is, at once.
 */
export async function retryWhileBusy<T>(
  run: () => T,
  { deadlineMs = 5_000, firstDelayMs = 2, maxDelayMs = 50, now = () => performance.now() }: BusyRetryOptions = {},
): Promise<T> {
  const started = now();
  let delay = firstDelayMs;
  for (;;) {
    try {
      return run();
    } catch (error) {
      if (!isSqliteBusy(error)) throw error;
      const waited = now() - started;
      if (waited >= deadlineMs) {
        throw new CustosError('store_unavailable', `the database stayed locked by another connection for ${Math.round(waited)} ms`, {
          cause: error,
        });
      }
      const pause = Math.min(delay * (0.5 + Math.random() / 2), deadlineMs - waited);
      await sleep(Math.max(1, pause));
      delay = Math.min(delay * 2, maxDelayMs);
    }
  }
}

/** SQLITE_BUSY and its extended codes (SQLITE_BUSY_RECOVERY, _SNAPSHOT, _TIMEOUT). */
export function isSqliteBusy(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' && error.code.startsWith('SQLITE_BUSY');
}
