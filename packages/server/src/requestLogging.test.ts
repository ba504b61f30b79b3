import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './buildApp.js';
import { buildPagesApp } from './buildPagesApp.js';
import { captureLogLines } from './testing/captureLogLines.js';
import { createTestSigner, type TestSigner } from './testing/createTestSigner.js';

// Issue 15 point 8: logs a platform team ingests as they are (ISO-8601 times, level names), a request id
// accepted from X-Request-Id (or made) and echoed, in every line of the request; the probes at debug; and
// Prometheus names as documented (no doubled `process_` prefix).

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
type Line = { level: unknown; time: unknown; requestId?: unknown; msg?: unknown; req?: { url?: string }; res?: { statusCode?: number } };

function parsed(lines: string[]): Line[] {
  return lines.map((l) => JSON.parse(l) as Line);
}

describe('request logging', () => {
  let signer: TestSigner;
  before(async () => {
    signer = await createTestSigner();
  });
  after(async () => {
    await signer.close();
  });

  describe('the API listener at level info', () => {
    let app: FastifyInstance;
    let lines: string[];
    before(async () => {
      const captured = captureLogLines('info');
      lines = captured.lines;
      app = await buildApp({ kernel: signer.kernel, logger: captured.logger });
    });
    after(async () => {
      await app.close();
    });

    it('every line has an ISO-8601 time and a level name', async () => {
      lines.length = 0;
      await app.inject({ method: 'GET', url: '/v1/keys?walletName=fmt&keyIndex=0', headers: signer.auth() });
      assert.ok(lines.length >= 2, lines.join(''));
      for (const line of parsed(lines)) {
        assert.equal(typeof line.time, 'string');
        assert.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.equal(new Date(String(line.time)).toISOString(), line.time);
        assert.ok(['trace', 'debug', 'info', 'warn', 'error', 'fatal'].includes(String(line.level)), `level ${String(line.level)}`);
      }
    });

    it("a client's X-Request-Id is echoed and is in every line of the request", async () => {
      lines.length = 0;
      const res = await app.inject({
        method: 'GET',
        url: '/v1/keys?walletName=rid&keyIndex=0',
        headers: { ...signer.auth(), 'x-request-id': 'backend-7f3a:42' },
      });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['x-request-id'], 'backend-7f3a:42');
      const own = parsed(lines);
      assert.deepEqual(
        own.map((l) => l.msg),
        ['incoming request', 'request completed'],
      );
      for (const line of own) assert.equal(line.requestId, 'backend-7f3a:42');
      assert.equal(own[1]?.res?.statusCode, 200);
    });

    it('without one (or with one that is not a plain token) a new UUID is made, echoed and logged; the bad one is not', async () => {
      for (const given of [undefined, 'a b', 'x'.repeat(129), 'id\nforged line', '<script>']) {
        lines.length = 0;
        const res = await app.inject({
          method: 'GET',
          url: '/v1/keys?walletName=rid&keyIndex=0',
          headers: { ...signer.auth(), ...(given === undefined ? {} : { 'x-request-id': given }) },
        });
        const id = String(res.headers['x-request-id']);
        assert.match(id, UUID, `for ${JSON.stringify(given)}`);
        for (const line of parsed(lines)) assert.equal(line.requestId, id);
        if (given !== undefined) assert.ok(!lines.join('').includes(given), 'the refused id is not logged');
      }
      const a = await app.inject({ method: 'GET', url: '/healthz' });
      const b = await app.inject({ method: 'GET', url: '/healthz' });
      assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id'], 'each request its own id');
    });

    it('an error answer carries the id too, and its lines have it', async () => {
      lines.length = 0;
      const res = await app.inject({
        method: 'POST',
        url: '/v1/sign/hash',
        headers: { 'x-request-id': 'err-1' },
        payload: { walletName: 'w', keyIndex: 0, hash: `0x${'11'.repeat(32)}` },
      });
      assert.equal(res.statusCode, 401);
      assert.equal(res.headers['x-request-id'], 'err-1');
      const own = parsed(lines);
      assert.ok(own.length >= 2);
      for (const line of own) assert.equal(line.requestId, 'err-1');
      const notFound = await app.inject({ method: 'GET', url: '/nowhere', headers: { 'x-request-id': 'nf-1' } });
      assert.equal(notFound.statusCode, 404);
      assert.equal(notFound.headers['x-request-id'], 'nf-1');
    });

    it('the probes are not logged at info (they are at debug)', async () => {
      lines.length = 0;
      for (const url of ['/healthz', '/readyz', '/metrics']) await app.inject({ method: 'GET', url });
      assert.deepEqual(lines, []);
    });

    it('metric names carry the custos_ prefix once (custos_process_cpu_seconds_total, not custos_process_process_…)', async () => {
      const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
      assert.match(text, /^custos_process_cpu_seconds_total /m);
      assert.match(text, /^custos_process_resident_memory_bytes /m);
      assert.match(text, /^custos_nodejs_eventloop_lag_seconds /m);
      assert.match(text, /^custos_http_requests_total\{/m);
      assert.doesNotMatch(text, /custos_process_process_|custos_process_nodejs_/);
      const unprefixed = text.split('\n').filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('custos_'));
      assert.deepEqual(unprefixed, []);
    });
  });

  it('at level debug, the probes are logged at debug', async () => {
    const captured = captureLogLines('debug');
    const app = await buildApp({ kernel: signer.kernel, logger: captured.logger });
    try {
      await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'probe-1' } });
      const own = parsed(captured.lines).filter((l) => l.requestId === 'probe-1');
      assert.deepEqual(
        own.map((l) => [l.level, l.msg]),
        [
          ['debug', 'incoming request'],
          ['debug', 'request completed'],
        ],
      );
    } finally {
      await app.close();
    }
  });

  it('the pages listener (public): its own id always (a visitor’s header is not taken), echoed and in its lines, at info', async () => {
    const captured = captureLogLines('info');
    const app = await buildPagesApp({ kernel: signer.kernel, logger: captured.logger });
    try {
      const res = await app.inject({ method: 'GET', url: '/approve/Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5', headers: { 'x-request-id': 'page-1' } });
      const id = String(res.headers['x-request-id']);
      assert.match(id, UUID);
      assert.ok(!captured.lines.join('').includes('page-1'), 'the visitor’s id is neither used nor logged');
      const own = parsed(captured.lines).filter((l) => l.requestId === id);
      assert.deepEqual(
        own.map((l) => [l.level, l.msg]),
        [
          ['info', 'incoming request'],
          ['info', 'request completed'],
        ],
      );
      assert.equal(own[0]?.req?.url, '/approve/[redacted]', 'the capability stays out of the log');
    } finally {
      await app.close();
    }
  });
});
