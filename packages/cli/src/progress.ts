/**
 * Progress of a long command (rekey, recover, audit export, audit verify, migrate) on stderr: on a
 * terminal a bar redrawn in place with an estimate of the time left; elsewhere (a log, a pipe),
 * once the work has run `intervalMs`, a plain line every `intervalMs` or every 10 % (a quick run
 * prints nothing); with `--quiet` nothing. No dependency.
 */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface Progress {
  /** `done` units of `total` are finished (total may change: a log that grows). */
  update(done: number, total?: number): void;
  /** The work is over: the last state, and on a terminal the line ended. */
  finish(): void;
}

export interface ProgressOptions {
  stream: ProgressStream;
  label: string;
  total?: number;
  quiet?: boolean;
  now?: () => number;
  /** Non-terminal: at most one line per this many ms (besides each 10 % step). */
  intervalMs?: number;
  /** Terminal: at most one redraw per this many ms. */
  redrawMs?: number;
}

const BAR = 24;

function formatSeconds(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function createProgress({
  stream,
  label,
  total: initialTotal,
  quiet = false,
  now = Date.now,
  intervalMs = 5000,
  redrawMs = 100,
}: ProgressOptions): Progress {
  if (quiet) return { update: () => undefined, finish: () => undefined };
  const tty = stream.isTTY === true;
  const started = now();
  let total = initialTotal;
  let done = 0;
  let lastDraw = Number.NEGATIVE_INFINITY;
  let lastStep = -1;

  const estimate = (): string | undefined => {
    if (total === undefined || total <= 0 || done <= 0 || done >= total) return undefined;
    const elapsed = now() - started;
    return formatSeconds((elapsed / done) * (total - done));
  };
  const describe = (): string => {
    if (total === undefined || total <= 0) return `${label}: ${done}`;
    const pct = Math.min(100, Math.floor((done / total) * 100));
    const eta = estimate();
    return `${label}: ${done}/${total} (${pct}%)${eta === undefined ? '' : `, about ${eta} left`}`;
  };
  const drawBar = () => {
    const fraction = total === undefined || total <= 0 ? 0 : Math.min(1, done / total);
    const filled = Math.round(fraction * BAR);
    const eta = estimate();
    const text = `${label} [${'#'.repeat(filled)}${'-'.repeat(BAR - filled)}] ${Math.floor(fraction * 100)}% ${done}/${total ?? '?'}${eta === undefined ? '' : ` ETA ${eta}`}`;
    const width = stream.columns ?? 80;
    stream.write(`\r${text.slice(0, Math.max(10, width - 1))}\u001b[K`);
  };

  return {
    update(value, newTotal) {
      done = value;
      if (newTotal !== undefined) total = newTotal;
      const t = now();
      if (tty) {
        if (t - lastDraw >= redrawMs) {
          lastDraw = t;
          drawBar();
        }
        return;
      }
      // a short run prints nothing: scripts and logs of quick commands stay clean
      if (t - started < intervalMs) return;
      const step = total === undefined || total <= 0 ? -1 : Math.floor((done / total) * 10);
      if (t - lastDraw >= intervalMs || step > lastStep) {
        lastDraw = t;
        if (step > lastStep) lastStep = step;
        stream.write(`${describe()}\n`);
      }
    },
    finish() {
      const seconds = formatSeconds(now() - started);
      if (tty) {
        drawBar();
        stream.write(` done in ${seconds}\n`);
        return;
      }
      if (lastStep >= 0 || lastDraw > Number.NEGATIVE_INFINITY) stream.write(`${label}: ${done}${total === undefined ? '' : `/${total}`} done in ${seconds}\n`);
    },
  };
}
