import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { createLogger } from '../createLogger.js';

/** The server's logger at debug level writing into memory: the lines it wrote, for redaction tests. */
export function captureLogLines(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger({ level: 'debug', destination: sink }), lines };
}
