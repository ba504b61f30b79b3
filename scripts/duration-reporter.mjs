// A node:test reporter that scripts/test.mjs passes beside `spec` (both to stdout). For each test file
// it prints `⏱ <duration>  <file>` after the file's results and, when CUSTOS_TEST_DURATIONS_FILE is
// set, appends {file, ms, passed} as one JSON line to that file. ms is the file's wall time as the
// runner measured it (from its process's start to its end, other files running beside it).
//
// Node 20 reports each file as a test named after its path at nesting 0, whose `test:complete` event
// carries the duration and comes when the file's process ends; the file's own results (test:start,
// test:pass, test:fail) are reported file after file. A file's line is printed once both happened:
// its duration is known and the results of another file (or the end of the stream) came after its own.
import { appendFileSync } from 'node:fs';
import { relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

export default async function* durationReporter(source) {
  const out = process.env.CUSTOS_TEST_DURATIONS_FILE;
  const completed = new Map(); // file → { ms, passed }, until printed
  const shown = new Set(); // files whose results were reported and followed by another file's
  const printed = new Set();
  let current;
  const line = (file) => {
    const { ms, passed } = completed.get(file);
    completed.delete(file);
    shown.delete(file);
    printed.add(file);
    return `⏱ ${(ms / 1000).toFixed(1)} s  ${relative(root, file)}${passed ? '' : '  (FAILED)'}\n`;
  };
  for await (const event of source) {
    const { name, file, nesting, details } = event.data ?? {};
    if (file === undefined) continue;
    if (event.type === 'test:complete' && nesting === 0 && name === file) {
      const entry = { ms: Math.round(details?.duration_ms ?? 0), passed: details?.passed === true };
      if (out !== undefined && out !== '') appendFileSync(out, `${JSON.stringify({ file, ...entry })}\n`);
      completed.set(file, entry);
      if (shown.has(file)) yield line(file);
    } else if ((event.type === 'test:start' || event.type === 'test:pass' || event.type === 'test:fail') && file !== current) {
      if (current !== undefined && !printed.has(current)) {
        if (completed.has(current)) yield line(current);
        else shown.add(current);
      }
      current = file;
    }
  }
  for (const file of [...completed.keys()]) yield line(file);
}
