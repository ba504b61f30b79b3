import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { createLogger } from '../createLogger.js';

/** The server's logger (at debug level unless told) writing into memory: the lines it wrote, for redaction and log-format tests. */
export function captureLogLines(level = 'debug'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger({ level, destination: sink }), lines };
}
