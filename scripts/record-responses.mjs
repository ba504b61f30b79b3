// Preloaded into every test process by scripts/test.mjs (`--import`), only when CUSTOS_TEST_ARTIFACTS
// is set: every HTTP response a test receives through fetch — from a `custos serve` child, an app
// listening in the test process, a replica — is appended to <artifacts>/responses/<pid>.jsonl, one
// JSON line { via, method, path, status, body }, for scripts/scan-secrets.mjs to scan (issue 14,
// point 6). The recording is on the client side: the server has no switch that records bodies.
// Answers of app.inject are recorded by the test harness the same way (recordTestResponse in
// packages/server/src/testing/createTestSigner.ts). The same path and body are written once per
// process (a fuzzer gets the same refusal thousands of times).
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const artifacts = process.env.CUSTOS_TEST_ARTIFACTS;
if (artifacts !== undefined && artifacts !== '' && typeof globalThis.fetch === 'function') {
  const dir = join(artifacts, 'responses');
  const file = join(dir, `${process.pid}.jsonl`);
  const seen = new Set();
  const record = (method, url, status, body) => {
    let path;
    try {
      path = new URL(url).pathname;
    } catch {
      path = String(url);
    }
    const digest = createHash('sha256').update(`${method} ${path} ${status}\n`).update(body).digest('base64');
    if (seen.has(digest)) return;
    seen.add(digest);
    mkdirSync(dir, { recursive: true });
    appendFileSync(file, `${JSON.stringify({ via: 'fetch', method, path, status, body })}\n`);
  };
  const originalFetch = globalThis.fetch;
  globalThis.fetch = async function recordedFetch(input, init) {
    const response = await originalFetch(input, init);
    const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const url = input instanceof Request ? input.url : String(input);
    if (response.body !== null) {
      // read a copy: the test reads (or cancels) the original as it likes
      response
        .clone()
        .text()
        .then(
          (body) => record(method, url, response.status, body),
          () => undefined,
        );
    } else record(method, url, response.status, '');
    return response;
  };
}
