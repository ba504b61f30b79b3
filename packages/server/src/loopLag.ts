import { performance } from 'node:perf_hooks';

/**
 * How late the event loop runs, persistently (issue 14, point 5): a timer due every `intervalMs`
 * measures how late it fires; the lag is the smallest lateness of its last `window` firings. One
 * long turn (an unseal's key stretching, a collection of the heap) is a burst,
 * not a backlog, and does not count: only a loop late at every firing for a while does (CoDel's
 * "minimum over an interval"). A request that reaches the kernel while the loop runs late so has
 * waited about that long unread, in its socket or for its connection to be accepted, and so have
 * all the others: the work admitted takes the CPU that reading and refusing the rest needs. The
 * admission refuses while it is late (buildApp).
 */
export interface LoopLag {
  /** The lag now (ms): the smallest lateness of the last `window` firings. */
  readonly ms: number;
  stop(): void;
}

export function monitorLoopLag({ intervalMs = 20, window = 5 }: { intervalMs?: number; window?: number } = {}): LoopLag {
  let due = performance.now() + intervalMs;
  // the lateness of the last `window` firings, a ring; none late before the first
  const late = new Array<number>(window).fill(0);
  let next = 0;
  const timer = setInterval(() => {
    const at = performance.now();
    late[next] = Math.max(0, at - due);
    next = (next + 1) % window;
    due = at + intervalMs;
  }, intervalMs);
  timer.unref();
  return {
    get ms() {
      return Math.min(...late);
    },
    stop() {
      clearInterval(timer);
    },
  };
}
